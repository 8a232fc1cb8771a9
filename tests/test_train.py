"""One run end to end in the tiny profile: the run directory, its numbers, its adapter."""

import json
import mmap
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from peft import PeftModel
from sklearn.metrics import accuracy_score, f1_score
from transformers import set_seed

from lorakit.inference import predict_logits
from lorakit.measure import PROC_CLEAR_REFS, peak_memory_mb, reset_peak_memory
from lorakit.models import load_base
from lorakit.peft_format import load_peft_adapter
from lorakit.precision import choose_precision, current_precision
from lorakit.run_files import saved_bytes
from lorakit.train import default_run_name, run, run_each, run_settings

RUN_FILES = {"config.json", "metrics.json", "log_history.csv", "predictions.csv"}
FAST = {"profile": "tiny", "epochs": 1, "max_train": 64, "max_eval": 32, "max_length": 64}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One quick tiny-profile run of every method on emotion, shared by the tests below."""
    out = tmp_path_factory.mktemp("runs")
    return {m: run("emotion", m, r=4, alpha=8, output_dir=out, **FAST)
            for m in ("lora", "peft", "full", "head")}


@pytest.mark.parametrize("method", ["lora", "peft", "full", "head"])
def test_run_directory_is_complete(runs, method):
    result = runs[method]
    files = {p.name for p in result.run_dir.iterdir()}
    assert RUN_FILES <= files
    assert ("adapter" in files) == (method in ("lora", "peft"))
    assert not (result.run_dir / "checkpoints").exists()
    assert not list(result.run_dir.parent.glob("*.incomplete"))
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["method"] == method and config["profile"] == "tiny"
    assert config["precision"] == current_precision() and config["world_size"] == 1
    assert {"torch", "transformers", "peft", "datasets"} <= set(config["versions"])
    log = pd.read_csv(result.run_dir / "log_history.csv")
    assert "loss" in log.columns and log["loss"].notna().any()


def test_saved_bytes_count_what_rebuilds_each_run_beside_the_base(runs):
    for method in ("lora", "peft"):
        adapter = runs[method].run_dir / "adapter"
        expected = sum(p.stat().st_size for p in adapter.iterdir())
        assert saved_bytes(runs[method].run_dir) == expected > 0
    head = runs["head"].run_dir / "head.safetensors"
    assert saved_bytes(runs["head"].run_dir) == head.stat().st_size > 0
    assert saved_bytes(runs["full"].run_dir) == 0  # full fine-tuning saves no weights


@pytest.mark.parametrize("method", ["lora", "peft", "full", "head"])
def test_metrics_match_scikit_learn_on_the_predictions(runs, method):
    run_dir = runs[method].run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    table = pd.read_csv(run_dir / "predictions.csv")
    assert len(table) == metrics["eval_examples"] == 32
    assert metrics["accuracy"] == pytest.approx(accuracy_score(table.label, table.prediction))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(table.label_id, table.prediction_id, average="macro",
                 labels=range(6), zero_division=0)
    )
    probabilities = table.filter(like="prob_").to_numpy()
    assert probabilities.shape == (32, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert metrics["peak_memory_mb"] > 0 and metrics["train_seconds"] > 0


def test_trainable_counts_per_method(runs):
    counts = {m: r.metrics["trainable_parameters"] for m, r in runs.items()}
    assert counts["head"] < counts["lora"] == counts["peft"] < counts["full"]
    assert counts["full"] == runs["full"].metrics["total_parameters"]


def _plain_name(name: str) -> str:
    """A lorakit or PEFT parameter name → the base model's name for the same weight."""
    for wrapper in ("base_model.model.", ".base_layer", ".modules_to_save.default",
                    ".original_module"):
        name = name.replace(wrapper, "")
    return name.replace(".base.", ".")


def test_only_the_expected_parameters_changed(runs):
    set_seed(0)  # run() seeds before it loads the base model, whose new head is random
    base, _ = load_base("emotion", "tiny")
    original = dict(base.named_parameters())
    for method in ("lora", "peft", "head"):
        changed = set()
        for name, param in runs[method].model.named_parameters():
            plain = _plain_name(name)
            if plain not in original:
                assert "lora_" in name, f"{method}: unexpected parameter {name}"
                continue
            if not torch.equal(param.detach().cpu(), original[plain]):  # run() may use CUDA
                changed.add(plain)
                assert param.requires_grad, f"{method}: frozen parameter {name} changed"
        assert {"classifier.weight", "pre_classifier.weight"} <= changed, method
        assert all(n.startswith(("classifier", "pre_classifier")) for n in changed), method


def _logits_of(model, tokenizer, texts):
    return predict_logits(model, tokenizer, texts, max_length=64)


def test_lora_adapter_reloads_to_identical_predictions(runs):
    result = runs["lora"]
    texts = list(result.predictions.text)
    base, tokenizer = load_base("emotion", "tiny")
    reloaded = load_peft_adapter(base, result.run_dir / "adapter")
    np.testing.assert_array_equal(
        _logits_of(reloaded, tokenizer, texts).argmax(1), result.predictions.prediction_id
    )
    np.testing.assert_allclose(
        _logits_of(reloaded, tokenizer, texts), _logits_of(result.model, tokenizer, texts),
        atol=1e-5,
    )


def test_peft_adapter_reloads_to_identical_predictions(runs):
    result = runs["peft"]
    texts = list(result.predictions.text)
    base, tokenizer = load_base("emotion", "tiny")
    reloaded = PeftModel.from_pretrained(base, result.run_dir / "adapter")
    np.testing.assert_array_equal(
        _logits_of(reloaded, tokenizer, texts).argmax(1), result.predictions.prediction_id
    )


def test_existing_run_is_not_overwritten(runs):
    result = runs["head"]
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        run("emotion", "head", output_dir=result.run_dir.parent.parent, **FAST)


def test_epochs_zero_evaluates_without_training(tmp_path):
    result = run("imdb", "head", output_dir=tmp_path, **(FAST | {"epochs": 0}))
    assert result.metrics["train_seconds"] == 0.0
    assert pd.read_csv(result.run_dir / "log_history.csv").empty, "a header, no rows"
    assert len(result.predictions) == 32


@pytest.mark.parametrize(
    "device, capability, bf16_units, expected",
    [("cuda", (7, 5), False, "fp16"), ("cuda", (8, 0), False, "bf16"),
     ("cuda", (9, 0), False, "bf16"), ("cpu", None, False, "fp32"), ("cpu", None, True, "bf16")],
)
def test_precision_follows_the_hardware(device, capability, bf16_units, expected):
    assert choose_precision(device, capability, bf16_matrix_units=bf16_units) == expected


def test_run_names():
    assert default_run_name("lora", 8, 16, 0) == "lora-r8-a16-seed0"
    assert default_run_name("full", 8, 16, 3) == "full-seed3"


@pytest.mark.skipif(torch.cuda.is_available() or not PROC_CLEAR_REFS.exists(),
                    reason="the per-run CPU peak needs Linux's /proc/self/clear_refs and no CUDA")
def test_cpu_peak_memory_restarts_with_each_run():
    kind = reset_peak_memory()
    assert kind == "cpu-rss-run"
    before = peak_memory_mb(kind)
    # 200 MB of fresh pages, every one written: an anonymous mapping, not malloc, which could
    # reuse memory that earlier tests freed and that is still resident
    block = mmap.mmap(-1, 200 * 2**20)
    np.frombuffer(block, dtype=np.uint8)[:] = 1
    during = peak_memory_mb(kind)
    block.close()
    assert during > before + 190
    assert reset_peak_memory() == kind and peak_memory_mb(kind) < during - 150


def test_runs_record_the_per_run_peak_here(runs):
    expected = "cuda" if torch.cuda.is_available() else (
        "cpu-rss-run" if PROC_CLEAR_REFS.exists() else "cpu-rss")
    assert {r.metrics["peak_memory_kind"] for r in runs.values()} == {expected}


WITHOUT_RESOURCE = """
import builtins, math, sys, types

real_import = builtins.__import__


def import_as_on_windows(name, globals=None, *args, **kwargs):
    # lorakit's own `import resource` fails, as on Windows; libraries import as usual
    if name == "resource" and (globals or {}).get("__name__", "").startswith("lorakit"):
        raise ModuleNotFoundError("No module named 'resource'", name="resource")
    return real_import(name, globals, *args, **kwargs)


builtins.__import__ = import_as_on_windows
import lorakit.bench, lorakit.cli, lorakit.measure, lorakit.train

windows_psutil = types.SimpleNamespace(Process=lambda: types.SimpleNamespace(
    memory_info=lambda: types.SimpleNamespace(peak_wset=123 * 2**20)))
sys.modules["psutil"] = windows_psutil
with_psutil = lorakit.measure.peak_memory_mb("cpu-rss")
sys.modules["psutil"] = None
without_psutil = lorakit.measure.peak_memory_mb("cpu-rss")
print(with_psutil, math.isnan(without_psutil))
"""


def test_lorakit_imports_and_measures_without_the_resource_module():
    done = subprocess.run([sys.executable, "-c", WITHOUT_RESOURCE], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["123.0", "True"], "psutil's peak, else NaN; never an error"


@pytest.mark.parametrize("progress", [True, False])
def test_progress_is_a_bar_or_nothing(progress, tmp_path, capfd):
    # notebooks set transformers' logging to errors, which by default swaps the Trainer's bar
    # for a dictionary printed at every log step
    transformers.utils.logging.set_verbosity_error()
    try:
        run("emotion", "head", output_dir=tmp_path, progress=progress, **FAST)
    finally:
        transformers.utils.logging.set_verbosity_warning()
    printed = capfd.readouterr()
    if progress:  # in a terminal, tqdm (in Jupyter, a widget that prints no log lines)
        assert "it/s]" in printed.err or "s/it]" in printed.err
    else:
        assert printed.out + printed.err == ""


@pytest.mark.parametrize("method", ["lora", "full"])
def test_metrics_hold_the_last_validation_pass_and_the_run_time(runs, method):
    result = runs[method]
    evaluations = result.log_history.dropna(subset=["eval_accuracy"]).sort_values("epoch")
    assert len(evaluations) == 1  # one epoch, one validation pass
    last = evaluations.iloc[-1]
    assert result.metrics["validation_accuracy"] == pytest.approx(last["eval_accuracy"])
    assert result.metrics["validation_macro_f1"] == pytest.approx(last["eval_macro_f1"])
    assert result.metrics["validation_loss"] == pytest.approx(last["eval_loss"])
    assert result.metrics["run_seconds"] > result.metrics["train_seconds"] > 0
    assert result.log_history.equals(pd.read_csv(result.run_dir / "log_history.csv"))


def test_reuse_returns_the_finished_run_of_the_same_settings(runs):
    trained = runs["lora"]
    output_dir = trained.run_dir.parent.parent
    before = (trained.run_dir / "metrics.json").stat().st_mtime_ns
    again = run("emotion", "lora", r=4, alpha=8, output_dir=output_dir, reuse=True, **FAST)
    assert again.reused and again.model is None and again.run_dir == trained.run_dir
    assert again.metrics == json.loads((trained.run_dir / "metrics.json").read_text())
    assert again.predictions["prediction_id"].tolist() == (
        trained.predictions["prediction_id"].tolist())
    assert (trained.run_dir / "metrics.json").stat().st_mtime_ns == before, "nothing rewritten"


def test_reuse_does_not_take_a_run_of_other_settings(runs):
    output_dir = runs["head"].run_dir.parent.parent
    other = FAST | {"max_train": 48}  # same run name, other data: not the same run
    with pytest.raises(FileExistsError, match=r"has other max_train; pass overwrite=True"):
        run("emotion", "head", r=4, alpha=8, output_dir=output_dir, reuse=True, **other)


def test_every_lora_dropout_default_is_the_same():
    import inspect

    from lorakit import cli
    from lorakit.lora import LoRALinear, inject_lora
    from lorakit.models import prepare_model
    from lorakit.train import RunSettings

    defaults = {function.__qualname__: inspect.signature(function).parameters["dropout"].default
                for function in (LoRALinear.__init__, inject_lora, prepare_model)}
    defaults["RunSettings.dropout"] = RunSettings.__dataclass_fields__["dropout"].default
    defaults["lorakit train --dropout"] = cli.build_parser().parse_args(
        ["train", "--task", "emotion"]).dropout
    assert set(defaults.values()) == {0.0}, defaults


def test_full_and_head_record_no_lora_settings_so_any_rank_finds_the_same_run():
    from lorakit.train import run_settings

    for method in ("full", "head"):
        chosen = run_settings("emotion", method, r=32, alpha=32, rslora=True, profile="tiny")
        assert (chosen.r, chosen.alpha, chosen.rslora, chosen.targets) == (None, None, False, ())
        assert chosen == run_settings("emotion", method, profile="tiny")  # r=8, α=16 defaults
        assert chosen.run_name == f"{method}-seed0"


def test_both_splits_are_predicted_and_the_validation_scores_come_from_them(runs):
    for method, result in runs.items():
        validation = result.validation_predictions
        assert len(validation) == result.metrics["validation_examples"] == 32, method
        assert result.metrics["validation_accuracy"] == pytest.approx(
            (validation["label_id"] == validation["prediction_id"]).mean())
        assert not validation["text"].isin(result.predictions["text"]).all()  # another split


@pytest.mark.parametrize("method", ["lora", "loraplus", "full"])
def test_the_head_trains_at_its_own_rate_in_every_method(method, monkeypatch, tmp_path):
    from lorakit import train

    seen = {}
    real = train.give_head_its_rate

    def recording(optimizer, head, head_lr):
        real(optimizer, head, head_lr)
        seen["groups"] = [(group["lr"], {id(p) for p in group["params"]})
                          for group in optimizer.param_groups]
        seen["head"] = head

    monkeypatch.setattr(train, "give_head_its_rate", recording)
    result = run("emotion", method, r=4, alpha=8, lr=2e-4, head_lr=7e-3, keep_model=False,
                 output_dir=tmp_path, progress=False, **FAST)
    assert result.config["head_lr"] == 7e-3 and result.config["lr"] == 2e-4
    head_rates = {lr for lr, ids in seen["groups"] if ids & seen["head"]}
    assert head_rates == {7e-3}, "every head parameter, and only the head, at head_lr"
    assert all(not ids & seen["head"] for lr, ids in seen["groups"] if lr != 7e-3)
    assert any(lr == 2e-4 for lr, _ in seen["groups"])  # the method's own parameters
    assert sum(len(ids & seen["head"]) for _, ids in seen["groups"]) == len(seen["head"]) > 0


def test_head_only_training_has_one_rate(tmp_path):
    result = run("emotion", "head", lr=3e-3, output_dir=tmp_path, progress=False, **FAST)
    assert result.config["lr"] == result.config["head_lr"] == 3e-3


def test_a_run_can_let_its_model_go(tmp_path):
    result = run("emotion", "lora", r=4, alpha=8, output_dir=tmp_path, keep_model=False,
                 progress=False, **FAST)
    assert result.model is None and result.tokenizer is None
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_a_runs_name_says_what_it_changes_so_other_settings_never_share_a_directory():
    from lorakit.train import run_settings

    lr = run_settings("emotion", profile="tiny").lr
    assert run_settings("emotion", profile="tiny").run_name == "lora-r8-a16-seed0"
    assert run_settings("emotion", lr=lr, profile="tiny").run_name == "lora-r8-a16-seed0"
    assert run_settings("emotion", lr=lr / 3, profile="tiny", seed=2).run_name == (
        f"lora-r8-a16-lr{lr / 3:g}-seed2")
    assert run_settings("emotion", r=32, rslora=True, profile="tiny").run_name == (
        "lora-r32-a16-rs-seed0")
    assert run_settings("emotion", targets=("q_lin", "v_lin"), profile="tiny").run_name == (
        "lora-r8-a16-q_lin+v_lin-seed0")
    assert run_settings("emotion", "full", head_lr=0.5, profile="tiny").run_name == (
        "full-head0.5-seed0")
    assert run_settings("emotion", "ia3", profile="tiny").run_name == "ia3-seed0"


def test_settings_changed_are_named_anew_unless_a_name_is_given():
    from lorakit.train import run_settings

    first = run_settings("emotion", profile="tiny")
    assert run_settings(first).run_name == first.run_name  # completed again: unchanged
    assert run_settings(first, seed=2).run_name == "lora-r8-a16-seed2"
    assert run_settings(first, seed=2, run_name="mine").run_name == "mine"


def test_run_each_keeps_the_grid_shape_under_one_bar(runs, capfd):
    output_dir = runs["lora"].run_dir.parent.parent
    grid = {"one": run_settings("emotion", "head", **FAST),
            "seeds": [run_settings("emotion", "lora", r=4, alpha=8, **FAST)] * 2, "none": []}
    capfd.readouterr()
    results = run_each(grid, output_dir=output_dir, reuse=True)
    assert results["one"].run_dir == runs["head"].run_dir and results["none"] == []
    assert [r.run_dir for r in results["seeds"]] == [runs["lora"].run_dir] * 2
    printed = capfd.readouterr()
    assert "runs:" in printed.err and "eval_loss" not in printed.out + printed.err
    assert printed.out == "3 runs: 0 trained, 3 read back from disk\n"
