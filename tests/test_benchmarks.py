"""The benchmark scripts run and write what they promise; how fast anything is, is never tested.

Each script runs in ``--quick`` mode (tiny shapes) with the fewest repeats it accepts, into a
temporary results directory, and must write JSON with the machine, the settings, one record per
contender and the per-pair ratios, and a Markdown table.
"""

import argparse
import importlib
import json
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

from lorakit import LoRALinear
from lorakit.bench import Ratio
from lorakit.precision import current_precision

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# One thread: tiny tensors gain nothing from more, and on a busy machine every parallel op would
# wait for a descheduled thread. The fixture gives the session its thread count back.
QUICK = ["--quick", "--repeats", "5", "--warmup", "1", "--device", "cpu", "--threads", "1"]
VERDICTS = {"yes", "within spread", "no"}
BENCHMARKS_RUN = ("layer", "train_step", "inference", "notebooks", "offline_profile",
                  "offline_rates", "t4_plan", "environments")
SCRIPTS = ("common", *BENCHMARKS_RUN, "readme")


@pytest.fixture
def scripts(monkeypatch):
    """The benchmarks/ directory importable, as it is when a script runs (``from common ...``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield {name: importlib.import_module(name) for name in SCRIPTS}
    torch.set_num_threads(threads)


def written(results_dir: Path, name: str) -> tuple[dict, str]:
    payload = json.loads((results_dir / f"{name}.json").read_text())
    markdown = (results_dir / f"{name}.md").read_text()
    assert payload["benchmark"] == name
    assert payload["command"].startswith(f".venv/bin/python benchmarks/{name}.py")
    machine = payload["machine"]
    assert {"cpu", "cpu_cores", "gpu", "device", "precision", "date"} <= set(machine)
    assert {"torch", "transformers", "peft"} <= set(machine["versions"])
    # A script runs in the precision lorakit.train.run trains in on its device.
    assert machine["precision"] == current_precision(machine["device"])
    assert machine["cpu"] in markdown and machine["versions"]["peft"] in markdown
    assert re.search(r"^\|(-{3,}:?\|)+$", markdown, re.MULTILINE), "a Markdown table"
    return payload, markdown


def check_timing_records(records: list[dict], contenders: set[str], repeats: int = 5) -> None:
    assert {r["contender"] for r in records} == contenders
    for r in records:
        assert r["repeats"] == repeats
        assert 0 < r["min_s"] <= r["q1_s"] <= r["median_s"] <= r["q3_s"] <= r["max_s"]


def check_comparison(c: dict, rounds: int = 5) -> None:
    assert c["ratio_min"] <= c["ratio_q1"] <= c["ratio"] <= c["ratio_q3"] <= c["ratio_max"]
    assert c["ratio_min"] > 0 and c["rounds"] == rounds
    if c.get("target"):
        assert c["verdict"] in VERDICTS


def test_layer_benchmark_writes_json_and_markdown(scripts, tmp_path):
    results = scripts["layer"].main([*QUICK, "--results-dir", str(tmp_path)])
    payload, markdown = written(tmp_path, "layer")
    assert payload["records"] == results["records"]
    layer_records = [r for r in payload["records"] if r["kind"] == "forward+backward"]
    check_timing_records(layer_records, {"lorakit", "peft", "frozen", "trainable"})
    check_timing_records([r for r in payload["records"] if r["kind"] == "inference"],
                         {"base", "lorakit merged", "base again"}, repeats=41)
    check_timing_records([r for r in payload["records"] if r["kind"] == "inference, unmerged"],
                         {"base", "lorakit unmerged"})
    assert {r["dropout"] for r in layer_records} == {0.0, 0.1}
    for c in payload["comparisons"]:
        check_comparison(c, rounds=41 if c["kind"] == "inference" else 5)
    targeted = {(c["kind"], c["a"], c["b"]) for c in payload["comparisons"] if c["target"]}
    assert targeted == {("forward+backward", "lorakit", "peft"),
                        ("inference", "lorakit merged", "base")}
    vs_peft = [c for c in payload["comparisons"] if c["b"] == "peft" and c["a"] == "lorakit"]
    for c in vs_peft:  # the same matrix products; lorakit fuses B's product with the add
        assert 0 < c["gflop_a"] <= c["gflop_b"], "the scaling multiplies r columns, not out"
        assert c["ops_difference"] == {name: c["ops_a"].get(name, 0) - c["ops_b"].get(name, 0)
                                       for name in c["ops_difference"]}
        assert c["ops_difference"]["aten::addmm"] > 0 and c["ops_difference"]["aten::add"] < 0
    assert set(payload["targets"].values()) <= VERDICTS
    assert "lorakit / PEFT [IQR]" in markdown and "base again / base [IQR]" in markdown


def test_peft_layer_computes_what_lorakit_computes(scripts):
    layer = scripts["layer"]
    generator = torch.Generator().manual_seed(0)
    ours = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4)
    layer.randomize_B(ours, generator)
    theirs = layer.peft_linear(ours.base, ours)
    x = torch.randn(3, 6, generator=generator)
    torch.testing.assert_close(theirs(x), ours(x))


def test_train_step_benchmark_writes_json_and_markdown(scripts, tmp_path):
    scripts["train_step"].main([*QUICK, "--results-dir", str(tmp_path)])
    payload, markdown = written(tmp_path, "train_step")
    records = {r["contender"]: r for r in payload["records"]}
    check_timing_records(payload["records"], {"head", "lora", "peft", "full"})
    trainable = {m: r["trainable_params"] for m, r in records.items()}
    assert trainable["lora"] == trainable["peft"]
    assert trainable["head"] < trainable["lora"] < trainable["full"] == records["full"][
        "total_params"]
    for r in records.values():
        assert r["optimizer_state_bytes"] == 2 * 4 * r["trainable_params"]  # AdamW, fp32
        assert r["step_peak_mb"] > 0 and r["memory_kind"] == "cpu-tensors"
        assert r["samples_per_s"] == pytest.approx(r["batch"] / r["median_s"])
        assert all(r[f"{phase}_s"] > 0 for phase in ("forward", "backward", "optimizer"))
    assert "### Where a step's time goes" in markdown
    assert records["head"]["optimizer_state_lora_bytes"] == 0
    assert records["lora"]["optimizer_state_lora_bytes"] > 0
    assert records["lora"]["optimizer_state_pre_classifier_bytes"] == records["head"][
        "optimizer_state_pre_classifier_bytes"] > 0
    timing = [c for c in payload["comparisons"] if "measure" not in c]
    for c in timing:
        check_comparison(c)
    assert {(c["a"], c["b"]) for c in timing if c["target"]} == {("lora", "peft"),
                                                                  ("lora", "full")}
    (vs_peft,) = [c for c in timing if c["b"] == "peft"]
    assert 0 < vs_peft["gflop_a"] <= vs_peft["gflop_b"]
    assert vs_peft["ops_difference"]["aten::addmm"] > 0
    (state,) = [c for c in payload["comparisons"] if c.get("measure")]
    assert state["ratio"] == pytest.approx(
        records["lora"]["optimizer_state_bytes"] / records["full"]["optimizer_state_bytes"])
    assert state["lora_only_ratio"] < state["without_pre_classifier_ratio"] < state["ratio"]
    assert set(payload["targets"]) == {"lora_vs_peft_at_most_1", "lora_vs_full_at_most_0.8",
                                       "lora_optimizer_state_at_most_1pct_of_full"}
    assert "samples/s" in markdown and "lora / full optimizer state" in markdown


def test_inference_benchmark_writes_json_and_markdown(scripts, tmp_path):
    scripts["inference"].main([*QUICK, "--results-dir", str(tmp_path)])
    payload, markdown = written(tmp_path, "inference")
    check_timing_records([r for r in payload["records"] if r["batch"] == 1],
                         {"base", "lorakit merged", "lorakit unmerged", "peft unmerged",
                          "base again"})
    for c in payload["comparisons"]:
        check_comparison(c)
    for gaps in payload["agreement"]:  # the models compared compute the same function
        assert gaps["merged_vs_unmerged"] < 1e-4
        assert gaps["lorakit_vs_peft_unmerged"] < 1e-4
        assert gaps["merged_vs_base"] > 0  # the adapter is not zero
    assert set(payload["targets"].values()) <= VERDICTS
    assert "≤ 1.01?" in markdown


def test_notebooks_benchmark_times_each_notebook_and_the_test_command(scripts, tmp_path,
                                                                      monkeypatch):
    notebooks = scripts["notebooks"]
    # A fast stand-in for `pytest --nbmake NB` (a kernel start takes seconds): same bookkeeping.
    monkeypatch.setattr(notebooks, "nbmake_command",
                        lambda nb: [sys.executable, "-c", f"assert {'bad' not in nb.name}"])
    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    results = notebooks.main(["--notebooks", str(good), str(bad), "--with-test-command",
                              "--test-command", "true", "--results-dir", str(tmp_path / "out")])
    payload, markdown = written(tmp_path / "out", "notebooks")
    assert [r["notebook"] for r in payload["records"]] == ["01_good.ipynb", "02_bad.ipynb"]
    assert [r["passed"] for r in payload["records"]] == [True, False]
    assert all(r["median_s"] > 0 and r["runs"] == 1 for r in payload["records"])
    assert payload["test_command"]["command"] == "true" and payload["test_command"]["passed"]
    assert payload["targets"] == {"test_command_under_10_min": "yes"}
    assert notebooks.failures(results) == ["02_bad.ipynb"]
    assert "01_good.ipynb" in markdown and "under 10 min?" in markdown


def test_offline_profile_benchmark_summarises_each_method_over_seeds(scripts, tmp_path):
    results = scripts["offline_profile"].main(
        ["--quick", "--seeds", "2", "--tasks", "emotion", "--methods", "head,lora",
         "--results-dir", str(tmp_path)])
    payload = json.loads((tmp_path / "offline_profile.json").read_text())
    markdown = (tmp_path / "offline_profile.md").read_text()
    assert payload["records"] == results["records"] and payload["profile"] == "tiny"
    assert [(r["method"], r["seed"]) for r in payload["records"]] == [
        ("head", 0), ("head", 1), ("lora", 0), ("lora", 1)]
    for row in payload["summary"]:
        group = [r["accuracy"] for r in payload["records"] if r["method"] == row["method"]]
        assert row["seeds"] == 2 and row["accuracy_mean"] == pytest.approx(sum(group) / 2)
        assert row["accuracy_min"] == min(group) and row["accuracy_max"] == max(group)
    assert payload["machine"]["precision"] == payload["records"][0]["precision"]
    assert "not IMDB or Emotion results" in markdown
    assert re.search(r"^\|(-{3,}:?\|)+$", markdown, re.MULTILINE), "a Markdown table"


def test_offline_rates_benchmark_chooses_the_head_rate_first_then_each_methods(scripts,
                                                                               tmp_path):
    module = scripts["offline_rates"]
    results = module.main(["--quick", "--tasks", "emotion", "--methods", "lora,head_lr",
                           "--seeds", "2", "--results-dir", str(tmp_path)])
    payload, markdown = written(tmp_path, "offline_rates")
    assert payload["records"] == results["records"] and payload["profile"] == "tiny"
    assert [r["method"] for r in payload["records"]] == ["head_lr", "lora"]  # head first
    head_lr = payload["chosen"]["emotion/head_lr"]["lr"]
    lora = payload["records"][1]
    assert lora["head_lr"] == head_lr and lora["seeds"] == 2
    assert len(lora["validation_macro_f1_by_seed"]) == 2
    assert "not IMDB or Emotion results" in markdown and "← chosen" in markdown


def test_t4_plan_writes_each_notebooks_counted_work_and_its_t4_minutes(scripts, tmp_path):
    results = scripts["t4_plan"].main(["--quick", "--results-dir", str(tmp_path)])
    payload, markdown = written(tmp_path, "t4_plan")
    algebra, loops = payload["records"]
    assert algebra["notebook"] == "01_lora_math.ipynb" and algebra["t4_minutes"] == 0
    assert loops["notebook"] == "02_lora_from_scratch.ipynb" and loops["steps"] > 0
    assert loops["t4_minutes"] > 0 and payload["series_t4_minutes"] > 0
    # Plain loops are no runs another notebook could keep: both counts are one.
    assert loops["t4_minutes_in_series"] == pytest.approx(loops["t4_minutes"])
    assert payload["records"] == results["records"] and "No T4 has run" in markdown


def test_environments_records_each_choice_and_compares_two_environments(scripts, tmp_path,
                                                                          monkeypatch):
    module = scripts["environments"]
    # main() points the notebooks' kernel at the tiny profile and a fresh runs directory through
    # the environment; monkeypatch gives the session its own values back afterwards.
    monkeypatch.setenv("LORAKIT_PROFILE", "tiny")
    monkeypatch.setenv("LORAKIT_RUNS_DIR", str(tmp_path / "unused"))
    results = module.main(["--quick", "--results-dir", str(tmp_path)])
    payload = json.loads((tmp_path / "environments-latest.json").read_text())
    assert payload["choices"] == results["choices"]
    (sentences,) = payload["choices"].values()  # --quick executes notebook 05 alone
    assert sentences and all(sentence.startswith("On validation") for sentence in sentences)
    assert payload["scores"] and all(0 <= score <= 1 for score in payload["scores"].values())
    assert "not Emotion results" in (tmp_path / "environments-latest.md").read_text()

    same = module.compare(payload, payload)
    assert same["same_choices"] and same["largest_difference"] == 0
    run = next(iter(payload["scores"]))
    other = {**payload, "scores": {**payload["scores"], run: payload["scores"][run] - 0.25},
             "choices": {"05_emotion_training": ["On validation macro-F1, the best is r = 99 "
                                                 "(99.0%); every other candidate is worse, so "
                                                 "r = 99 is chosen."]}}
    changed = module.compare(other, payload)
    assert not changed["same_choices"] and changed["largest_in"] == run
    assert changed["largest_difference"] == pytest.approx(0.25)


def test_what_was_chosen_is_read_from_each_kind_of_choice_sentence(scripts):
    sentences = {"05": ["On validation macro-F1, the best is r=8 (91.9%); the rule cannot tell "
                        "r=32 apart from it. The best is also the cheapest of those (408,198 "
                        "trainable parameters), so r=8 is chosen.",
                        "On validation macro-F1, the best is LoRA (91.9%); the rule cannot tell "
                        "IA³ apart from it. The cheapest of those, IA³ (163,974 trainable "
                        "parameters), is chosen for being the cheapest.",
                        "best on validation: LoRA 0.003, full fine-tuning 0.0002: 15 times apart",
                        "the challenger: LoRA+"]}
    assert scripts["environments"].chosen(sentences) == {
        "05": ["r=8", "IA³", "LoRA 0.003, full fine-tuning 0.0002", "LoRA+"]}


def test_the_readme_states_the_spread_across_environments_that_was_measured():
    results = json.loads((BENCHMARKS / "results" / "environments-colab.json").read_text())
    measured = results["comparison"]
    readme = " ".join((BENCHMARKS.parent / "README.md").read_text().split())
    points = round(100 * measured["largest_difference"])
    assert f"up to {points} points apart" in readme
    assert ("chose differently" in readme) == (not measured["same_choices"])


def test_fewer_than_five_repeats_are_refused(scripts, capsys):
    for name in ("layer", "train_step", "inference"):
        with pytest.raises(SystemExit):
            scripts[name].main(["--quick", "--repeats", "4"])
        assert "below the minimum of 5" in capsys.readouterr().err


@pytest.mark.parametrize("name", BENCHMARKS_RUN)
def test_each_script_runs_as_a_command(scripts, name, monkeypatch, capsys):
    # As `.venv/bin/python benchmarks/NAME.py --help` runs it, in this process (imports cached).
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / f"{name}.py"), "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: benchmarks/{name}.py")
    assert "--results-dir" in usage and "--quick" in usage and "--repeats" in usage


def test_a_group_keeps_each_contenders_timings_and_the_comparisons_made(scripts):
    common = scripts["common"]
    calls = []
    contenders = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    group = common.Group.timed(contenders, argparse.Namespace(repeats=5, warmup=2), {"shape": "x"})
    assert len(calls) == 3 * (2 + 5)
    assert [(r["contender"], r["shape"], r["repeats"]) for r in group.records()] == [
        ("A", "x", 5), ("B", "x", 5), ("C", "x", 5)]
    compared = group.compare("A", "B", limit=1.0)
    assert group.comparison("A", "B") is compared and compared.labels == {"shape": "x"}
    record = compared.record()
    assert (record["shape"], record["a"], record["b"], record["target"]) == ("x", "A", "B",
                                                                            "<= 1.00")
    assert record["verdict"] == compared.verdict and record["rounds"] == 5
    with pytest.raises(KeyError, match="no comparison B / A"):
        group.comparison("B", "A")


def test_a_verdict_says_whether_the_ratio_or_its_spread_meets_the_target(scripts):
    common = scripts["common"]

    def verdict(ratio: float, q1: float, limit: float | None = 1.0) -> str | None:
        measured = Ratio("A", "B", ratio, q1, ratio, q1, ratio, rounds=5)
        return common.Comparison({}, measured, limit).verdict

    assert [verdict(0.99, 0.9), verdict(1.02, 0.98), verdict(1.05, 1.02)] == [
        "yes", "within spread", "no"]
    assert verdict(0.5, 0.5, limit=None) is None
    assert "verdict" not in common.Comparison({}, Ratio("A", "B", 1, 1, 1, 1, 1, 5)).record()
    comparisons = [common.Comparison({}, Ratio("A", "B", r, q1, r, q1, r, 5), 1.0)
                   for r, q1 in ((0.9, 0.8), (1.02, 0.98))]
    assert common.all_hold(comparisons[:1]) == "yes"
    assert common.all_hold(comparisons) == "within spread"


def test_phased_step_trains_and_times_each_call(scripts):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    batch = {"input": torch.randn(8, 4)}

    class WithLoss(torch.nn.Module):  # a model whose output has .loss, like Hugging Face's
        def forward(self, input):
            return type("Output", (), {"loss": model(input).square().mean()})

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = scripts["train_step"].PhasedStep(WithLoss(), batch, optimizer, "cpu", "fp32")
    losses = [step().item() for _ in range(3)]
    assert losses[2] < losses[0], "three SGD steps on a convex loss lower it"
    assert len(step.seconds) == 3 and all(len(t) == 3 for t in step.seconds)
    medians = step.phase_medians(last=2)
    assert set(medians) == {"forward_s", "backward_s", "optimizer_s"}
    assert medians["forward_s"] == pytest.approx(sum(t[0] for t in step.seconds[1:]) / 2)
    assert model.weight.grad is None, "the step zeroes the gradients (set to None)"


def test_benchmarks_readme_shows_the_latest_results(scripts):
    readme = scripts["readme"]
    text = readme.README.read_text()
    for name in readme.RESULTS:
        assert (readme.RESULTS_DIR / f"{name}.md").exists(), f"no results for {name} yet"
    assert readme.with_latest_results(text, readme.latest_results()) == text, (
        "benchmarks/README.md is behind benchmarks/results/: run "
        ".venv/bin/python benchmarks/readme.py")


def test_readme_copy_needs_its_markers(scripts):
    readme = scripts["readme"]
    marked = f"# B\n{readme.BEGIN}\nold\n{readme.END}\nafter\n"
    assert readme.with_latest_results(marked, "new") == (
        f"# B\n{readme.BEGIN}\n\nnew\n\n{readme.END}\nafter\n")
    with pytest.raises(ValueError, match="needs exactly one"):
        readme.with_latest_results("# B\nno markers\n", "new")


def test_readme_script_help_writes_nothing(scripts, capsys, monkeypatch):
    monkeypatch.setattr(scripts["readme"], "README", Path("/nonexistent/README.md"))
    with pytest.raises(SystemExit) as exit_info:
        scripts["readme"].main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: benchmarks/readme.py")
