"""The files of a run directory, named once: ``lorakit.train`` writes them, ``report`` and
``analysis`` read them::

    runs/<task>/<run-name>/
      config.json        everything needed to repeat the run (library versions, device included)
      metrics.json       test accuracy, macro-F1, per-class F1, validation scores, parameters,
                         time, throughput, memory
      log_history.csv    the Trainer's log, for training curves
      predictions.csv    the test split: text, label, prediction, per-class probabilities,
                         per-example loss
      validation_predictions.csv   the same for the validation split, which choices are made on
      adapter/           every adapter method (LoRA, its variants, VeRA, IA³): PEFT's format,
                         adapter_model.safetensors + adapter_config.json
      head.safetensors   head-only runs: the trained head's tensors

While a run trains it lives in ``<run-name>.incomplete/``, so a failed run never looks finished. A
run that diverged (its loss became NaN) holds config.json, metrics.json (``"diverged": true``, no
scores) and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

CONFIG = "config.json"
METRICS = "metrics.json"
LOG_HISTORY = "log_history.csv"
PREDICTIONS = "predictions.csv"
VALIDATION_PREDICTIONS = "validation_predictions.csv"
ADAPTER = "adapter"
HEAD = "head.safetensors"
INCOMPLETE_SUFFIX = ".incomplete"


def run_directories(output_dir, task: str, run_name: str, resume: bool,
                    overwrite: bool) -> tuple[Path, Path]:
    """``(final, working)``: where the run ends up and where it lives while it trains.

    Raises FileExistsError, naming the flag that allows it, when ``final`` exists without
    ``overwrite`` or an interrupted run is in ``working`` without ``resume`` or ``overwrite``.
    """
    final = Path(output_dir) / task / run_name
    working = final.with_name(final.name + INCOMPLETE_SUFFIX)
    if final.exists() and not overwrite:
        raise FileExistsError(
            f"run directory {final} already exists; pass overwrite=True (--overwrite) to replace "
            "it, or choose another run_name / output_dir"
        )
    if working.exists() and not (resume or overwrite):
        raise FileExistsError(
            f"an interrupted run is in {working}; pass resume=True (--resume) to continue it from "
            "its last checkpoint, or overwrite=True (--overwrite) to start again"
        )
    return final, working


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented JSON with a final newline (config.json, metrics.json)."""
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_log_history(run_dir: Path, log_history: list[dict]) -> None:
    """The Trainer's log as log_history.csv; a run of 0 epochs gets the header alone."""
    log = pd.DataFrame(log_history, columns=None if log_history else ["epoch", "step", "loss"])
    log.to_csv(run_dir / LOG_HISTORY, index=False)


def read_log_history(run_dir) -> pd.DataFrame:
    """A run's log_history.csv: one row per log step or evaluation (``plots.training_curves``)."""
    return pd.read_csv(Path(run_dir) / LOG_HISTORY)


def saved_bytes(run_dir) -> int:
    """Bytes a run saved to rebuild its trained model beside the unchanged base: the files of
    ``adapter/`` (adapter methods) or ``head.safetensors`` (head-only); 0 when it saved none
    (full fine-tuning keeps its weights in memory only: the whole model is what it changed)."""
    run_dir = Path(run_dir)
    adapter = [path for path in (run_dir / ADAPTER).rglob("*") if path.is_file()]
    head = run_dir / HEAD
    return sum(path.stat().st_size for path in adapter) + (head.stat().st_size
                                                           if head.is_file() else 0)
