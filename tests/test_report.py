"""Tests for lorakit.report: hand-written run directories → one sorted, formatted results table."""

import json
import math

import pandas as pd
import pytest

from lorakit.report import find_runs, load_run, report, to_markdown


def write_run(runs_dir, task, name, config, metrics):
    path = runs_dir / task / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"task": task, "run_name": name, **config}))
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


LORA_CONFIG = {
    "method": "lora", "profile": "full", "model": "distilbert-base-uncased", "r": 8, "alpha": 16,
    "targets": ["q_lin", "v_lin", "lin1", "lin2"], "dropout": 0.1, "epochs": 2, "lr": 5e-4,
    "seed": 0, "max_length": 256, "batch_size": 32, "precision": "fp16", "device": "cuda",
    "world_size": 1, "versions": {"torch": "2.13.0", "transformers": "5.23.0"},
}
LORA_METRICS = {
    "accuracy": 0.912345, "macro_f1": 0.91, "per_class_f1": {"neg": 0.91, "pos": 0.91},
    "trainable_parameters": 1_108_994, "total_parameters": 67_471_106,
    "trainable_percent": 1.6436, "train_seconds": 1234.56, "train_samples_per_second": 40.49,
    "peak_memory_mb": 2345.6, "peak_memory_kind": "cuda", "eval_examples": 25_000,
}


@pytest.fixture
def runs_dir(tmp_path):
    """Three runs: imdb full and lora (written in the wrong order), emotion head with gaps."""
    runs = tmp_path / "runs"
    write_run(runs, "imdb", "lora-r8", LORA_CONFIG, LORA_METRICS)
    write_run(
        runs, "imdb", "full",
        {**LORA_CONFIG, "method": "full", "r": None, "alpha": None},
        {**LORA_METRICS, "accuracy": 0.93, "macro_f1": 0.9299, "trainable_parameters": 66_955_010,
         "trainable_percent": 100.0, "peak_memory_mb": 5120.4},
    )
    # an older run: no profile, r, alpha, timing or memory recorded
    write_run(runs, "emotion", "head", {"method": "head"}, {"accuracy": 0.5, "macro_f1": 0.25})
    (runs / "imdb" / "unfinished").mkdir()
    (runs / "imdb" / "unfinished" / "config.json").write_text("{}")
    return runs


def test_find_runs_lists_directories_with_both_files_sorted(runs_dir):
    assert [p.relative_to(runs_dir).as_posix() for p in find_runs(runs_dir)] == [
        "emotion/head", "imdb/full", "imdb/lora-r8",
    ]


def test_find_runs_ignores_runs_nested_deeper(runs_dir):
    write_run(runs_dir / "03_peft_comparison", "emotion", "lora", LORA_CONFIG, LORA_METRICS)
    assert len(find_runs(runs_dir)) == 3
    assert [p.name for p in find_runs(runs_dir / "imdb")] == ["full", "lora-r8"]


def test_find_runs_is_empty_for_a_directory_that_does_not_exist(tmp_path):
    assert find_runs(tmp_path / "nowhere") == []


def test_load_run_merges_config_and_metrics_and_adds_the_path(runs_dir):
    run = load_run(runs_dir / "imdb" / "lora-r8")

    assert run["run_dir"] == runs_dir / "imdb" / "lora-r8"
    assert run["r"] == 8 and run["accuracy"] == 0.912345
    assert run["versions"] == {"torch": "2.13.0", "transformers": "5.23.0"}


def test_load_run_names_a_broken_json_file(runs_dir):
    (runs_dir / "imdb" / "full" / "metrics.json").write_text("{not json")

    with pytest.raises(ValueError, match=r"full/metrics\.json is not valid JSON"):
        load_run(runs_dir / "imdb" / "full")


def test_report_has_one_row_per_run_sorted_by_task_method_and_rank(runs_dir):
    table = report(runs_dir, write=False)

    assert table[["task", "run", "method"]].values.tolist() == [
        ["emotion", "head", "head"], ["imdb", "lora-r8", "lora"], ["imdb", "full", "full"],
    ]
    assert list(table.columns) == [
        "task", "run", "method", "profile", "r", "alpha", "trainable_parameters",
        "trainable_percent", "train_seconds", "samples_per_second", "peak_memory_mb",
        "peak_memory_kind", "accuracy", "macro_f1",
    ]
    lora = table.iloc[1]
    assert lora["r"] == 8 and lora["alpha"] == 16
    assert lora["trainable_parameters"] == 1_108_994
    assert lora["samples_per_second"] == pytest.approx(40.49)
    assert lora["accuracy"] == pytest.approx(0.912345)


def test_report_leaves_missing_keys_empty(runs_dir):
    head = report(runs_dir, write=False).iloc[0]

    assert head["profile"] is None
    for column in ("r", "alpha", "trainable_parameters", "train_seconds", "peak_memory_mb"):
        assert pd.isna(head[column]), column
    assert head["macro_f1"] == 0.25


def test_report_orders_methods_head_lora_peft_full_then_others_and_ranks_ascending(tmp_path):
    runs = tmp_path / "runs"
    for name, method, r in [
        ("z", "baseline", None), ("f", "full", None), ("p", "peft", 8), ("l16", "lora", 16),
        ("l4", "lora", 4), ("h", "head", None),
    ]:
        write_run(runs, "emotion", name, {"method": method, "r": r}, {"accuracy": 0.5})

    table = report(runs, write=False)

    assert table["run"].tolist() == ["h", "l4", "l16", "p", "f", "z"]


def test_report_writes_results_csv_and_md(runs_dir):
    table = report(runs_dir)

    written = pd.read_csv(runs_dir / "results.csv")
    assert written["run"].tolist() == table["run"].tolist()
    assert written["trainable_parameters"].tolist()[1:] == [1_108_994, 66_955_010]
    assert (runs_dir / "results.md").read_text() == to_markdown(table, source=str(runs_dir))


def test_markdown_formats_percentages_counts_seconds_and_memory(runs_dir):
    text = to_markdown(report(runs_dir, write=False))
    lines = text.splitlines()

    assert lines[0] == "# LoRA fine-tuning results"
    header = next(line for line in lines if line.startswith("| task"))
    for name in ("trainable params", "of total", "train time (s)", "peak memory (MB)", "macro-F1"):
        assert name in header
    lora_row = next(line for line in lines if "lora-r8" in line)
    cells = [cell.strip() for cell in lora_row.strip("|").split("|")]
    assert cells == [
        "imdb", "lora-r8", "lora", "full", "8", "16", "1,108,994", "1.64%", "1,234.6", "40.5",
        "2,346", "91.23%", "91.00%",
    ]
    head_row = next(line for line in lines if "| emotion" in line)
    assert "50.00%" in head_row and "25.00%" in head_row and "—" in head_row
    assert "Peak memory: `cuda` is the peak GPU memory allocated by PyTorch" in text


def test_markdown_title_can_be_left_out_to_nest_under_another_heading(runs_dir):
    text = to_markdown(report(runs_dir, write=False), title=None, source="build/runs")

    assert text.startswith("3 runs under `build/runs`; accuracy and macro-F1")
    assert "#" not in text


def test_markdown_rows_line_up_in_the_raw_text(runs_dir):
    lines = [ln for ln in to_markdown(report(runs_dir, write=False)).splitlines() if ln[:1] == "|"]

    assert len(lines) == 2 + 3
    assert len({len(line) for line in lines}) == 1
    assert lines[1].startswith("|------") and lines[1].endswith(":|")


@pytest.mark.parametrize("profile", ["offline", "tiny"])
def test_markdown_says_numbers_on_the_samples_are_not_real_results(runs_dir, profile):
    table = report(runs_dir, write=False)
    table.loc[1, "profile"] = profile

    assert f"`{profile}`" in to_markdown(table)
    assert "are not IMDB or Emotion results" in to_markdown(table)
    assert "not IMDB or Emotion results" not in to_markdown(table.drop(index=1))


def test_markdown_shows_the_memory_kind_when_runs_measured_memory_differently(runs_dir):
    table = report(runs_dir, write=False)
    table.loc[2, "peak_memory_kind"] = "cpu-rss"

    text = to_markdown(table)

    assert "peak memory kind" in text and "`cpu-rss` is the peak resident memory" in text


def test_markdown_shows_tiny_trainable_percentages_without_scientific_notation():
    table = pd.DataFrame({"trainable_percent": [0.000924, 100.0, math.nan]})

    rows = to_markdown(table).splitlines()[-3:]

    assert [row.strip("| ") for row in rows] == ["0.000924%", "100%", "—"]


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_report_on_an_empty_or_missing_directory_says_how_to_make_a_run(tmp_path, make):
    runs = tmp_path / "runs"
    make(runs)

    with pytest.raises(ValueError, match=r"no run directories were found under .*runs") as error:
        report(runs)
    assert "lorakit train" in str(error.value)
    assert not (runs / "results.csv").exists()
