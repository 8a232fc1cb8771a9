"""One training run: ``transformers.Trainer`` plus a run directory that records everything.

    settings = run_settings("emotion", "lora", r=8, alpha=16)  # checked, completed from the profile
    result = run(settings)                      # the same as run("emotion", "lora", r=8, alpha=16)

A run does what the standard PEFT recipe does (a ``LoraConfig``, ``Trainer.train``,
``save_pretrained``; notebook 03 writes that recipe out), and beyond it: it checks every setting
before it loads anything (``run_settings``); trains the task's new head at its own learning rate,
the same for every method (``head_lr``), so that a method's ``lr`` is the rate of what the method
trains; stops at the first NaN or infinite loss, or records the run as diverged; predicts the
validation and test splits in order and writes both; and keeps everything in one directory
(``lorakit.run_files`` names its files). While a run trains it lives in ``<run-name>.incomplete/``
with a checkpoint per epoch, so that ``resume=True`` continues it after a disconnect and a failed
run never looks finished; ``reuse=True`` returns a finished run of the same settings instead of
training it again.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from lorakit.data import load_task, tokenize_task
from lorakit.measure import peak_memory_mb, reset_peak_memory
from lorakit.methods import get_method
from lorakit.metrics import classification_metrics, prediction_table, trainer_compute_metrics
from lorakit.models import (
    DEFAULT_TARGETS,
    LORAPLUS_RATIO,
    check_fits_model,
    head_parameter_ids,
    load_base,
    prepare_model,
)
from lorakit.peft_format import save_peft_adapter
from lorakit.precision import current_precision, device_description
from lorakit.profiles import resolve_profile, runs_dir
from lorakit.ranges import check_run_settings
from lorakit.run_files import (
    ADAPTER,
    CONFIG,
    HEAD,
    METRICS,
    PREDICTIONS,
    VALIDATION_PREDICTIONS,
    read_log_history,
    run_directories,
    write_json,
    write_log_history,
)
from lorakit.variants import loraplus_parameter_groups

WEIGHT_DECAY = 0.01
RECIPE_FIELDS = ("max_train", "max_eval", "max_length", "epochs", "batch_size", "warmup_fraction")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite at ``step``; the run stopped there."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run computes; ``config.json`` starts with these fields.

    Build one with ``run_settings``, which checks it and completes it from the profile: until
    then a None means "the profile's value". A setting the method does not use is recorded as
    None (``lorakit.methods``: the rank and α of IA³, full fine-tuning and head-only; VeRA's α).

    - ``task``: ``"imdb"`` or ``"emotion"``; ``method``: one of ``lorakit.methods.METHODS``.
    - ``run_name``: the run directory's name, by default e.g. ``lora-r8-a16-seed0``.
    - ``profile``: ``offline``, ``quick``, ``full``, ``tiny``; ``model``: a Hub id or a local
      directory instead of the profile's model.
    - ``r``, ``alpha``, ``targets``, ``dropout``, ``rslora``: LoRA's (``lorakit.lora``); VeRA
      uses ``r``, ``targets`` and ``dropout``.
    - ``lr``: the learning rate of what the method trains (A and B; every weight for ``full``;
      the head for ``head``); ``head_lr``: the new head's, the same for every method compared.
    - ``seed``: the head's and LoRA's initialisation, the data order, dropout.
    - ``max_train``, ``max_eval``, ``max_length``, ``epochs``, ``batch_size``,
      ``warmup_fraction``: the profile's recipe for the task (``epochs=0`` only evaluates).
    - ``data_files``, ``text_column``, ``label_column``: local data (``lorakit.data.load_task``).
    """

    task: str
    method: str = "lora"
    run_name: str | None = None
    profile: str | None = None
    model: str | None = None
    r: int | None = 8
    alpha: float | None = 16
    targets: tuple[str, ...] = DEFAULT_TARGETS
    dropout: float = 0.0
    rslora: bool = False
    lr: float | None = None
    head_lr: float | None = None
    seed: int = 0
    max_train: int | None = None
    max_eval: int | None = None
    max_length: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    warmup_fraction: float | None = None
    data_files: dict[str, str] | None = None
    text_column: str | None = None
    label_column: str | None = None

    def record(self) -> dict:
        """The fields as config.json holds them (lists for tuples)."""
        return json.loads(json.dumps(asdict(self)))


def run_settings(task: str | RunSettings, method: str | None = None, **changes) -> RunSettings:
    """A run's settings, checked and completed from the profile; nothing is loaded or written.

    ``run_settings("emotion", "lora", r=4)`` starts from ``RunSettings``' defaults;
    ``run_settings(settings, seed=1)`` from ``settings``. A bad value is a one-line TypeError or
    ValueError (``lorakit.ranges``); so is a name that is not a field of ``RunSettings``.
    """
    requested = _requested(task, method, changes)
    profile = resolve_profile(requested.profile)
    uses = get_method(requested.method).records
    check_run_settings(**{name: getattr(requested, name) for name in (
        "r", "alpha", "dropout", "epochs", "lr", "head_lr", "batch_size", "max_length",
        "max_train", "max_eval", "seed")})
    recipe = profile.recipe(requested.task, **{name: getattr(requested, name)
                                               for name in RECIPE_FIELDS})
    lr, head_lr = _rates(requested, recipe)
    r = requested.r if "r" in uses else None
    alpha = requested.alpha if "alpha" in uses else None
    targets = get_method(requested.method).own_targets or (
        requested.targets if "targets" in uses else ())
    return replace(
        requested, profile=profile.name, model=requested.model or profile.model, r=r,
        alpha=alpha, targets=tuple(targets), rslora=requested.rslora and "rslora" in uses,
        dropout=requested.dropout if "dropout" in uses else 0.0, lr=lr, head_lr=head_lr,
        run_name=requested.run_name or _run_name(requested, r, alpha, recipe),
        data_files={k: str(v) for k, v in (requested.data_files or {}).items()} or None,
        **{name: getattr(recipe, name) for name in RECIPE_FIELDS})


def _requested(task: str | RunSettings, method: str | None, changes: dict) -> RunSettings:
    """The settings asked for, not yet checked: ``task`` changed, or built from the defaults."""
    fields = [f.name for f in dataclasses.fields(RunSettings)]
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise TypeError(f"{unknown} are not run settings; a run's settings are: "
                        f"{', '.join(fields)}")
    if isinstance(task, RunSettings):
        if changes or (method and method != task.method):  # another run: named anew
            changes = {"run_name": None} | changes
        return replace(task, **changes, method=method or task.method)
    return RunSettings(task=task, method=method or "lora", **changes)


def _rates(requested: RunSettings, recipe) -> tuple[float, float]:
    """``(lr, head_lr)``: the method's rate and the head's, the profile's recipe's unless given.
    For head-only training the two are one: what the method trains is the head."""
    rates = recipe.learning_rates
    if requested.method == "head":
        rate = requested.lr or requested.head_lr or rates["head"]
        return rate, rate
    return requested.lr or rates[requested.method], requested.head_lr or recipe.head_lr


def _run_name(requested: RunSettings, r: int | None, alpha: float | None, recipe) -> str:
    """``default_run_name``, with what the settings change from the profile's and lorakit's
    defaults before the seed, so that two runs of other settings never share a directory:
    e.g. ``lora-r8-a16-lr0.001-seed0``, ``lora-r32-a16-rs-seed0``,
    ``lora-r8-a16-q_lin+v_lin-seed1``."""
    method = get_method(requested.method)
    uses = method.records
    changes = []
    if requested.lr is not None and requested.lr != recipe.learning_rates.get(method.name):
        changes.append(f"lr{requested.lr:g}")
    if (requested.head_lr is not None and method.name != "head"
            and requested.head_lr != recipe.head_lr):
        changes.append(f"head{requested.head_lr:g}")
    if requested.rslora and "rslora" in uses:
        changes.append("rs")
    if "targets" in uses and method.own_targets is None and tuple(
            requested.targets) != DEFAULT_TARGETS:
        changes.append("+".join(requested.targets))
    if requested.dropout and "dropout" in uses:
        changes.append(f"drop{requested.dropout:g}")
    name = default_run_name(method.name, r, alpha, requested.seed)
    return name.replace(f"-seed{requested.seed}",
                        "".join(f"-{change}" for change in changes) + f"-seed{requested.seed}")


def default_run_name(method: str, r: int | None, alpha: float | None, seed: int) -> str:
    """E.g. ``lora-r8-a16-seed0``, ``vera-r256-seed0``; ``full-seed0`` for methods without a
    rank."""
    records = get_method(method).records
    if "alpha" in records:
        return f"{method}-r{r}-a{alpha:g}-seed{seed}"
    return f"{method}{f'-r{r}' if 'r' in records else ''}-seed{seed}"


@dataclass
class RunResult:
    """What ``run`` returns: where it wrote, what it measured, and the trained model.

    ``model`` and ``tokenizer`` are None for a run found on disk (``reused``; load its adapter
    with ``lorakit.peft_format.load_peft_adapter``) and for a run made with
    ``keep_model=False``. A ``diverged`` run has no scores and no predictions.
    """

    run_dir: Path
    config: dict
    metrics: dict
    predictions: pd.DataFrame
    model: torch.nn.Module | None
    tokenizer: object
    reused: bool = False
    diverged: bool = False

    @property
    def log_history(self) -> pd.DataFrame:
        """The Trainer's log (``run_files.LOG_HISTORY``), for ``plots.training_curves``."""
        return read_log_history(self.run_dir)

    @property
    def validation_predictions(self) -> pd.DataFrame:
        """The validation split's predictions, one row per example, as ``predictions`` holds
        the test split's: what the series chooses on."""
        return pd.read_csv(self.run_dir / VALIDATION_PREDICTIONS)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on."""
    import accelerate
    import datasets
    import peft
    import transformers

    import lorakit

    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__,
        "datasets": datasets.__version__, "accelerate": accelerate.__version__,
        "lorakit": lorakit.__version__,
    }


def finished_run(settings: RunSettings, output_dir=None) -> Path | None:
    """The directory of a finished run made with exactly ``settings`` (``run_settings``), in
    the precision this machine trains in, under ``output_dir`` (default
    ``profiles.runs_dir()``), or None: another profile's or settings' run of the same name does
    not count. Data files and a local model directory are compared by path, not by content."""
    settings = run_settings(settings)
    run_dir = Path(runs_dir() if output_dir is None else output_dir) / settings.task
    run_dir = run_dir / settings.run_name
    return run_dir if _differences(settings, run_dir) == [] else None


def _differences(settings: RunSettings, run_dir: Path) -> list[str] | None:
    """The settings in which the finished run in ``run_dir`` differs; None if there is none."""
    if not (run_dir / CONFIG).is_file() or not (run_dir / METRICS).is_file():
        return None
    config = json.loads((run_dir / CONFIG).read_text())
    wanted = settings.record() | {"precision": current_precision()}
    return [key for key, value in wanted.items() if config.get(key) != value]


def read_run(run_dir) -> RunResult:
    """A finished run read back from its directory, as a ``RunResult`` without a model."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / METRICS).read_text())
    predictions = (pd.read_csv(run_dir / PREDICTIONS) if (run_dir / PREDICTIONS).is_file()
                   else pd.DataFrame())
    return RunResult(run_dir, json.loads((run_dir / CONFIG).read_text()), metrics, predictions,
                     model=None, tokenizer=None, reused=True,
                     diverged=bool(metrics.get("diverged")))


def run(settings: RunSettings | str, method: str | None = None, *, output_dir=None,
        reuse: bool = False, resume: bool = False, overwrite: bool = False,
        progress: bool = True, keep_model: bool = True, diverged: str = "raise",
        **changes) -> RunResult:
    """Fine-tune as ``settings`` say (``RunSettings``) and write the run directory.

    ``run("emotion", "lora", r=4)`` builds the settings with ``run_settings`` first; every
    setting is checked before any work, and a bad one writes nothing. The controls:

    - ``output_dir``: where ``<task>/<run-name>/`` goes; default ``profiles.runs_dir()``.
    - ``reuse``: return the finished run of the same settings if there is one (its result has
      no model) instead of training again; a run of that name with other settings is a
      FileExistsError unless ``overwrite``.
    - ``resume``: continue an interrupted run from its last epoch checkpoint.
    - ``overwrite``: replace an existing run directory.
    - ``progress``: the Trainer's progress bar (a widget in Jupyter and Colab); False trains
      silently, for notebooks that make many short runs. The log is written either way.
    - ``keep_model``: False lets the trained model go (``result.model`` is None), for
      notebooks that make many runs and keep their numbers only.
    - ``diverged``: ``"raise"`` stops with ``NonFiniteLossError`` at the first NaN or infinite
      loss; ``"record"`` writes the run as diverged and returns it, so that a grid goes on.
    """
    started = time.perf_counter()
    if diverged not in ("raise", "record"):
        raise ValueError(f"diverged={diverged!r}; choose 'raise' or 'record'")
    settings = run_settings(settings, method, **changes)
    output_dir = runs_dir() if output_dir is None else Path(output_dir)
    if reuse and (found := _reusable(settings, output_dir, overwrite)) is not None:
        return found
    final_dir, work_dir = run_directories(output_dir, settings.task, settings.run_name, resume,
                                          overwrite)
    set_seed(settings.seed)
    data, tokenized, model, tokenizer = _data_and_model(settings)
    trainer, state, checkpoint = _trainer_for(settings, model, tokenizer, tokenized,
                                              (final_dir, work_dir), resume, overwrite,
                                              progress)
    try:
        outcome = _train_and_predict(trainer, tokenized, settings.epochs, checkpoint)
    except NonFiniteLossError as error:
        if diverged == "raise":
            raise
        return _diverged(settings, data, error, state, (final_dir, work_dir), started)
    # Mixed precision wrapped the model's forward in autocast, in place: the model we return
    # must compute in fp32 again, like any model a reader loads.
    model = trainer.accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    tables = {split: prediction_table(data[split]["text"], data[split]["label"], output,
                                      data["train"].features["label"].names)
              for split, output in outcome["logits"].items()}
    config = _config(settings, data, state, checkpoint)
    metrics = _metrics(tables, trainer, model, outcome, started)
    if state.is_main_process:
        _write_run(work_dir, model, config, metrics, tables, trainer.state.log_history)
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
        work_dir.rename(final_dir)
    state.wait_for_everyone()
    if not keep_model:
        model = tokenizer = None
        _release(trainer)
    return RunResult(final_dir, config, metrics, tables["test"], model, tokenizer)


def run_each(grid: Mapping[object, RunSettings | Sequence[RunSettings]], **options
             ) -> dict[object, RunResult | list[RunResult]]:
    """``run`` for every setting of a grid, under one progress bar over the runs.

    ``grid`` maps a name to one ``RunSettings`` or to a list of them (one per seed); the result
    has the same keys and shapes. ``options`` go to every ``run`` (``reuse``, ``keep_model``,
    ``diverged``...); each run trains without its own bar and epoch table, so that a grid of
    fourteen runs shows one bar while it trains and leaves one line, not fourteen tables.
    """
    flat = [(key, s) for key, value in grid.items()
            for s in ([value] if isinstance(value, RunSettings) else value)]
    results: dict[object, list[RunResult]] = {key: [] for key in grid}
    with tqdm(flat, desc="runs", unit="run", leave=False) as bar:
        for key, settings in bar:
            bar.set_postfix_str(settings.run_name)
            results[key].append(run(settings, progress=False, **options))
    reused = sum(result.reused for runs in results.values() for result in runs)
    print(f"{len(flat)} runs: {len(flat) - reused} trained, {reused} read back from disk")
    return {key: results[key][0] if isinstance(value, RunSettings) else results[key]
            for key, value in grid.items()}


def _reusable(settings: RunSettings, output_dir: Path, overwrite: bool) -> RunResult | None:
    """The finished run of ``settings`` under ``output_dir``, or None when there is none (or
    another one of that name, which ``overwrite`` allows to replace)."""
    run_dir = output_dir / settings.task / settings.run_name
    differences = _differences(settings, run_dir)
    if differences == []:
        return read_run(run_dir)
    if differences and not overwrite:
        raise FileExistsError(
            f"reuse=True: the run in {run_dir} has other {', '.join(differences)}; pass "
            "overwrite=True to train it again in its place")
    return None


def _data_and_model(settings: RunSettings):
    """The task's splits, tokenized too, the model prepared for the method, and its tokenizer.

    Refuses a rank the target layers cannot hold, or more tokens than the model has positions,
    before anything is written.
    """
    data = load_task(settings.task, settings.profile, data_files=settings.data_files,
                     text_column=settings.text_column, label_column=settings.label_column,
                     seed=settings.seed, max_train=settings.max_train,
                     max_eval=settings.max_eval)
    base, tokenizer = load_base(settings.task, settings.profile, settings.model)
    lora_rank = settings.r if get_method(settings.method).lora_family else None
    check_fits_model(base, settings.targets, lora_rank, settings.max_length)
    model = prepare_model(base, settings.method, settings.r, settings.alpha, settings.targets,
                          settings.dropout, settings.rslora)
    return data, tokenize_task(data, tokenizer, settings.max_length), model, tokenizer


def _trainer_for(settings: RunSettings, model, tokenizer, tokenized, directories, resume: bool,
                 overwrite: bool, progress: bool):
    """``(trainer, process state, checkpoint to resume from or None)``, the working directory
    claimed."""
    final_dir, work_dir = directories
    args = _training_arguments(work_dir, settings, current_precision(),
                               len(tokenized["train"]), progress)
    state = _claim_work_dir(final_dir, work_dir, overwrite, resume)
    trainer = CheckedTrainer(
        model=model, args=args, train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"], data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=trainer_compute_metrics, processing_class=tokenizer,
        optimizers=(_loraplus_optimizer(model, settings), None), head_lr=settings.head_lr)
    if not progress:  # without a bar the Trainer prints every log line instead: nothing at all
        trainer.remove_callback(PrinterCallback)
    resumable = resume and Path(args.output_dir).is_dir()
    return trainer, state, get_last_checkpoint(args.output_dir) if resumable else None


class CheckedTrainer(Trainer):
    """``transformers.Trainer`` that trains the head at ``head_lr`` and stops at the first step
    whose loss is NaN or infinite (training on after that only spends time: every later weight
    update is NaN too)."""

    def __init__(self, *args, head_lr: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_lr = head_lr

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.head_lr is not None:
            give_head_its_rate(optimizer, head_parameter_ids(model or self.model), self.head_lr)
        return optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            checkpoint = get_last_checkpoint(self.args.output_dir)
            step = self.state.global_step + 1
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {step} "
                f"(epoch {self.state.epoch:.2f}, learning rate {self.args.learning_rate:g}); "
                f"last good checkpoint: {checkpoint or 'none yet'}; try a lower learning rate "
                "(--lr), a smaller alpha, or fp32 instead of fp16", step)
        return loss


def give_head_its_rate(optimizer: torch.optim.Optimizer, head: set[int], head_lr: float) -> None:
    """Move the parameters whose ``id`` is in ``head`` out of every group of ``optimizer`` into
    groups of their own at ``head_lr``, keeping each group's other options (its weight decay).
    Call it before the first step: the moved parameters have no optimizer state yet."""
    for group in list(optimizer.param_groups):
        moved = [p for p in group["params"] if id(p) in head]
        if moved:
            group["params"] = [p for p in group["params"] if id(p) not in head]
            options = {key: value for key, value in group.items() if key != "params"}
            optimizer.add_param_group({**options, "params": moved, "lr": head_lr})
    optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]


def _loraplus_optimizer(model, settings: RunSettings) -> torch.optim.Optimizer | None:
    """LoRA+'s AdamW (B at ``LORAPLUS_RATIO`` times A's rate); None: the Trainer's own AdamW."""
    if settings.method != "loraplus":
        return None
    groups = loraplus_parameter_groups(model, settings.lr, LORAPLUS_RATIO, WEIGHT_DECAY)
    return torch.optim.AdamW(groups, lr=settings.lr)


def _train_and_predict(trainer: Trainer, tokenized, epochs: float,
                       checkpoint: str | None) -> dict:
    """Train (unless ``epochs`` is 0), then predict validation and test in their own order.

    Returns the Trainer's ``train_metrics`` (zeros for 0 epochs), the peak memory of the
    whole run and the ``logits`` of each split. transformers' bars for saving and loading stay
    off; the Trainer's own show or not as ``run``'s ``progress`` says."""
    train_metrics = {"train_runtime": 0.0, "train_samples_per_second": 0.0}
    memory_kind = reset_peak_memory()
    with _transformers_progress_bars_off():  # "Writing model shards" at each checkpoint...
        if epochs > 0:
            train_metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
        logits = {split: _predict_in_order(trainer, tokenized[split])
                  for split in ("validation", "test")}
    return {"train_metrics": train_metrics, "logits": logits,
            "memory": {"peak_memory_mb": float(peak_memory_mb(memory_kind)),
                       "peak_memory_kind": memory_kind}}


def _metrics(tables: dict[str, pd.DataFrame], trainer: Trainer, model, outcome: dict,
             started: float) -> dict:
    """metrics.json: test scores, validation scores, parameters, speed, memory, time."""
    names = _label_names(tables["test"])
    test, validation = (classification_metrics(tables[split]["label_id"],
                                               tables[split]["prediction_id"], names)
                        for split in ("test", "validation"))
    train_metrics = outcome["train_metrics"]
    return (test | {"test_loss": float(tables["test"]["loss"].mean()),
                    "validation_accuracy": validation["accuracy"],
                    "validation_macro_f1": validation["macro_f1"],
                    "validation_loss": float(tables["validation"]["loss"].mean())}
            | _parameter_counts(model)
            | {"train_seconds": float(train_metrics["train_runtime"]),
               "train_samples_per_second": float(train_metrics["train_samples_per_second"]),
               "eval_examples": len(tables["test"]),
               "validation_examples": len(tables["validation"])}
            | outcome["memory"] | {"run_seconds": time.perf_counter() - started})


def _label_names(table: pd.DataFrame) -> list[str]:
    """The label names of a prediction table, in label-id order (from its prob_ columns)."""
    return [column.removeprefix("prob_") for column in table.columns
            if column.startswith("prob_")]


def _config(settings: RunSettings, data, state: PartialState, checkpoint: str | None) -> dict:
    """config.json: the settings, then what the run found (sizes, labels, device, versions)."""
    return settings.record() | {
        "examples": {split: len(data[split]) for split in data},
        "label_names": data["train"].features["label"].names, "precision": current_precision(),
        "device": device_description(), "world_size": state.num_processes,
        "versions": library_versions(),
        "resumed_from": Path(checkpoint).name if checkpoint else None,
    }


def _diverged(settings: RunSettings, data, error: NonFiniteLossError, state: PartialState,
              directories, started: float) -> RunResult:
    """Write the run as diverged (config, the log so far, metrics without scores) and return it."""
    final_dir, work_dir = directories
    config = _config(settings, data, state, None)
    metrics = {"diverged": True, "diverged_at_step": error.step, "error": str(error),
               "accuracy": None, "macro_f1": None, "validation_accuracy": None,
               "validation_macro_f1": None, "run_seconds": time.perf_counter() - started}
    if state.is_main_process:
        write_json(work_dir / CONFIG, config)
        write_json(work_dir / METRICS, metrics)
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
        shutil.rmtree(final_dir, ignore_errors=True)
        work_dir.rename(final_dir)
    state.wait_for_everyone()
    return RunResult(final_dir, config, metrics, pd.DataFrame(), None, None, diverged=True)


def _release(trainer: Trainer) -> None:
    """Let a finished run's model and optimizer go, and the GPU memory they held."""
    trainer.model = trainer.model_wrapped = trainer.optimizer = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _claim_work_dir(final_dir: Path, work_dir: Path, overwrite: bool,
                    resume: bool) -> PartialState:
    """Create the working directory (clearing what ``overwrite`` replaces) on the main process.

    Call after ``TrainingArguments``, which sets up the processes. Every process has checked the
    run directory (``run_directories``) before the main one changes it: NCCL connects lazily,
    so the processes of a GPU run start unsynchronised, and a late one would find the main
    one's .incomplete directory and refuse to run.
    """
    state = PartialState()
    state.wait_for_everyone()
    if state.is_main_process:
        if overwrite:
            shutil.rmtree(final_dir, ignore_errors=True)
            if not resume:
                shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    return state


def _training_arguments(work_dir: Path, settings: RunSettings, precision: str,
                        train_examples: int, progress: bool) -> TrainingArguments:
    """The Trainer's settings: a checkpoint and an evaluation per epoch, ~40 log points."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    steps_per_epoch = -(-train_examples // (settings.batch_size * world_size))
    return TrainingArguments(
        output_dir=str(work_dir / "checkpoints"),
        num_train_epochs=settings.epochs,
        learning_rate=settings.lr,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 2,
        warmup_steps=settings.warmup_fraction,
        weight_decay=WEIGHT_DECAY,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=max(1, int(steps_per_epoch * settings.epochs) // 40),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun on CPUs use DDP
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        # explicit: by default the Trainer hides its bar whenever transformers' logging is set
        # above warnings (as notebooks do) and prints a dictionary per log step instead
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        **_length_grouping(),
    )


@contextmanager
def _transformers_progress_bars_off() -> Iterator[None]:
    """transformers' own progress bars (saving a checkpoint...) off, then as they were."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _predict_in_order(trainer: Trainer, dataset) -> np.ndarray:
    """``trainer.predict``'s logits (N, C) in the dataset's own order.

    Recent transformers versions group evaluation batches by length too, which reorders the
    outputs; training is over at this point, so sequential order costs nothing.
    """
    if getattr(trainer.args, "train_sampling_strategy", None) == "group_by_length":
        trainer.args.train_sampling_strategy = "sequential"
    output = trainer.predict(dataset, metric_key_prefix="test")
    if not np.array_equal(output.label_ids, np.asarray(dataset["label"])):
        raise RuntimeError("predictions came back in another order than the examples")
    logits = output.predictions
    return logits[0] if isinstance(logits, (tuple, list)) else logits


def _length_grouping() -> dict:
    """Length-grouped batches, under the argument name this transformers version uses."""
    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def _parameter_counts(model: torch.nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": 100.0 * trainable / total,
    }


def _write_run(run_dir: Path, model, config: dict, metrics: dict,
               tables: dict[str, pd.DataFrame], log_history: list[dict]) -> None:
    """Every file of a finished run (``lorakit.run_files``) into ``run_dir``."""
    write_json(run_dir / CONFIG, config)
    write_json(run_dir / METRICS, metrics)
    write_log_history(run_dir, log_history)
    tables["test"].to_csv(run_dir / PREDICTIONS, index=False)
    tables["validation"].to_csv(run_dir / VALIDATION_PREDICTIONS, index=False)
    method = get_method(config["method"])
    if method.built_by == "peft":
        model.save_pretrained(run_dir / ADAPTER)
    elif method.adapter:
        save_peft_adapter(model, run_dir / ADAPTER, base_model_name_or_path=config["model"])
    elif method.saves == "head":
        head = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(head, str(run_dir / HEAD))
