"""Reproducible runs, and resuming a run whose process was killed after its first checkpoint."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from lorakit.train import CheckedTrainer, NonFiniteLossError, run

SETTINGS = {"profile": "tiny", "epochs": 4, "max_length": 48, "max_eval": 40}


def test_same_seed_same_metrics_and_predictions(tmp_path):
    first = run("emotion", "lora", output_dir=tmp_path / "a", **SETTINGS)
    second = run("emotion", "lora", output_dir=tmp_path / "b", **SETTINGS)
    for key in ("accuracy", "macro_f1", "test_loss", "per_class_f1"):
        assert first.metrics[key] == second.metrics[key], key
    pd.testing.assert_frame_equal(first.predictions, second.predictions)


def _wait_for_first_checkpoint(process, checkpoints, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [c for c in checkpoints.glob("checkpoint-*") if (c / "trainer_state.json").exists()]
        if done:
            time.sleep(0.2)  # let the checkpoint's last file land
            return done[0]
        if process.poll() is not None:
            pytest.fail(f"training ended before it could be interrupted:\n{process.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def test_killed_run_resumes_to_the_same_result(tmp_path):
    reference = run("emotion", "lora", output_dir=tmp_path / "reference", **SETTINGS)

    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "lorakit", "train", "--task", "emotion", "--method", "lora",
               "--profile", "tiny", "--epochs", "4", "--max-length", "48", "--max-eval", "40",
               "--output-dir", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    work_dir = out / "emotion" / "lora-r8-a16-seed0.incomplete"
    _wait_for_first_checkpoint(process, work_dir / "checkpoints")
    process.kill()
    process.wait()
    last = max((work_dir / "checkpoints").glob("checkpoint-*"), key=lambda c: int(c.name[11:]))
    assert not (out / "emotion" / "lora-r8-a16-seed0").exists(), "a killed run is not complete"

    with pytest.raises(FileExistsError, match="pass resume=True"):
        run("emotion", "lora", output_dir=out, **SETTINGS)
    resumed = run("emotion", "lora", output_dir=out, resume=True, **SETTINGS)
    log = pd.read_csv(resumed.run_dir / "log_history.csv")
    assert log["epoch"].max() == pytest.approx(4.0)
    config = json.loads((resumed.run_dir / "config.json").read_text())
    assert config["resumed_from"] == last.name, "training went on from the last checkpoint"
    assert resumed.metrics["accuracy"] == reference.metrics["accuracy"]
    np.testing.assert_allclose(resumed.predictions.filter(like="prob_").to_numpy(),
                               reference.predictions.filter(like="prob_").to_numpy(), atol=1e-5)


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    steps = {"count": 0}
    compute_loss = CheckedTrainer.compute_loss

    def loss_that_turns_nan(self, *args, **kwargs):
        loss = compute_loss(self, *args, **kwargs)
        steps["count"] += self.model.training
        return loss * float("nan") if steps["count"] > 40 else loss

    monkeypatch.setattr(CheckedTrainer, "compute_loss", loss_that_turns_nan)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 41 \(epoch 1\.3\d.*"
                                                 r"checkpoint-30.*try a lower learning rate"):
        run("emotion", "lora", output_dir=tmp_path, **SETTINGS)
    work_dir = tmp_path / "emotion" / "lora-r8-a16-seed0.incomplete"
    assert (work_dir / "checkpoints" / "checkpoint-30" / "trainer_state.json").is_file()
    assert not (tmp_path / "emotion" / "lora-r8-a16-seed0").exists()


def test_a_diverged_run_is_recorded_when_asked_and_found_again(tmp_path, monkeypatch):
    compute_loss = CheckedTrainer.compute_loss

    def nan_from_the_start(self, *args, **kwargs):
        return compute_loss(self, *args, **kwargs) * float("nan")

    monkeypatch.setattr(CheckedTrainer, "compute_loss", nan_from_the_start)
    result = run("emotion", "lora", output_dir=tmp_path, diverged="record", **SETTINGS)
    assert result.diverged and result.model is None and result.predictions.empty
    assert result.metrics["diverged"] and result.metrics["diverged_at_step"] == 1
    assert result.metrics["validation_macro_f1"] is None
    assert sorted(p.name for p in result.run_dir.iterdir()) == ["config.json", "metrics.json"]
    again = run("emotion", "lora", output_dir=tmp_path, diverged="record", reuse=True,
                **SETTINGS)
    assert again.reused and again.diverged  # a grid that runs again does not retrain it
