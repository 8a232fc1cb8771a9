"""One training run: ``transformers.Trainer`` plus a run directory that records everything.

``run(task, method, ...)`` goes in steps: its settings checked and completed from the profile
(``run_settings``), the data and the model (``_data_and_model``), the Trainer, training and the
test predictions (``_train_and_test``), and the run directory (``lorakit.run_files`` names its
files). While a run trains it lives in ``<run-name>.incomplete/`` with a checkpoint per epoch, so
that ``resume=True`` can continue it after a disconnect and a failed run never looks finished;
``reuse=True`` returns a finished run of the same settings instead of training it again.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from safetensors.torch import save_file
from transformers import (
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from lorakit.bench import peak_memory_mb, reset_peak_memory
from lorakit.data import load_task, tokenize_task
from lorakit.metrics import (
    classification_metrics,
    prediction_table,
    trainer_compute_metrics,
)
from lorakit.models import (
    DEFAULT_TARGETS,
    IA3_TARGETS,
    LORAPLUS_RATIO,
    check_method,
    load_base,
    prepare_model,
)
from lorakit.peft_format import save_peft_adapter
from lorakit.precision import current_precision
from lorakit.profiles import (
    LORA_METHODS,
    LORAKIT_LORA_METHODS,
    PEFT_METHODS,
    device_description,
    resolve_profile,
    runs_dir,
)
from lorakit.run_files import (
    ADAPTER,
    CONFIG,
    HEAD,
    METRICS,
    PREDICTIONS,
    read_log_history,
    run_directories,
    write_json,
    write_log_history,
)
from lorakit.settings import check_fits_model, check_run_settings
from lorakit.variants import loraplus_parameter_groups

WEIGHT_DECAY = 0.01


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped and kept its last checkpoint."""


class CheckedTrainer(Trainer):
    """``transformers.Trainer`` that stops at the first step whose loss is NaN or infinite.

    Training on after that only spends time: every later weight update is NaN too.
    """

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            checkpoint = get_last_checkpoint(self.args.output_dir)
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch:.2f}, learning rate {self.args.learning_rate:g}); "
                f"last good checkpoint: {checkpoint or 'none yet'}; try a lower learning rate "
                "(--lr), a smaller alpha, or fp32 instead of fp16"
            )
        return loss


def default_run_name(method: str, r: int, alpha: float, seed: int) -> str:
    """E.g. ``lora-r8-a16-seed0``, ``vera-r256-seed0``; ``full-seed0`` for methods without a
    rank."""
    if method in LORA_METHODS:
        return f"{method}-r{r}-a{alpha:g}-seed{seed}"
    return f"{method}{f'-r{r}' if method == 'vera' else ''}-seed{seed}"


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run computes, checked, with the profile's values filled
    in; ``config.json`` starts with these fields, in this order."""

    task: str
    method: str
    run_name: str
    profile: str
    model: str  # a Hub id, a local directory or one of lorakit's bundled bases
    r: int | None
    alpha: float | None
    targets: tuple[str, ...]
    dropout: float
    rslora: bool
    lr: float
    seed: int
    max_train: int | None
    max_eval: int | None
    max_length: int
    epochs: float
    batch_size: int
    warmup_fraction: float
    data_files: dict[str, str] | None
    text_column: str | None
    label_column: str | None

    def record(self) -> dict:
        """The fields as config.json holds them (lists for tuples)."""
        return json.loads(json.dumps(asdict(self)))


def run_settings(task: str, method: str = "lora", r: int = 8, alpha: float = 16,
                 targets=DEFAULT_TARGETS, dropout: float = 0.0, rslora: bool = False,
                 epochs: float | None = None, lr: float | None = None,
                 batch_size: int | None = None, max_length: int | None = None,
                 max_train: int | None = None, max_eval: int | None = None, seed: int = 0,
                 profile=None, model: str | None = None, data_files: dict | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 run_name: str | None = None) -> RunSettings:
    """``run``'s arguments checked (a one-line TypeError or ValueError for a bad one) and
    completed from the profile; nothing is loaded or written. Settings a method does not use
    are recorded as None (VeRA's alpha; the rank and alpha of IA³, full fine-tuning and
    head-only), with IA³'s own targets and none for full fine-tuning and head-only."""
    profile = resolve_profile(profile)
    check_method(method)
    check_run_settings(r=r, alpha=alpha, dropout=dropout, epochs=epochs, lr=lr,
                       batch_size=batch_size, max_length=max_length, max_train=max_train,
                       max_eval=max_eval, seed=seed)
    if method == "ia3":
        r, alpha, rslora, targets = None, None, False, IA3_TARGETS
    elif method in ("full", "head"):  # no adapter: nothing of LoRA's applies
        r, alpha, rslora, targets = None, None, False, ()
    elif method == "vera":
        alpha, rslora = None, False
    task_settings = profile.settings(task, epochs=epochs, batch_size=batch_size,
                                     max_length=max_length, max_train=max_train,
                                     max_eval=max_eval)
    return RunSettings(
        task=task, method=method, run_name=run_name or default_run_name(method, r, alpha, seed),
        profile=profile.name, model=model or profile.model, r=r, alpha=alpha,
        targets=tuple(targets), dropout=dropout, rslora=rslora,
        lr=lr if lr is not None else task_settings.learning_rates[method], seed=seed,
        max_train=task_settings.max_train, max_eval=task_settings.max_eval,
        max_length=task_settings.max_length, epochs=task_settings.epochs,
        batch_size=task_settings.batch_size, warmup_fraction=task_settings.warmup_fraction,
        data_files={k: str(v) for k, v in (data_files or {}).items()} or None,
        text_column=text_column, label_column=label_column,
    )


@dataclass
class RunResult:
    """What ``run`` returns: where it wrote, what it measured, and the trained model.

    A run found on disk by ``run(..., reuse=True)`` has ``reused`` True and no model or
    tokenizer (``None``): load its adapter with ``lorakit.peft_format.load_peft_adapter``.
    """

    run_dir: Path
    config: dict
    metrics: dict
    predictions: pd.DataFrame
    model: torch.nn.Module | None
    tokenizer: object
    reused: bool = False

    @property
    def log_history(self) -> pd.DataFrame:
        """The Trainer's log (``run_files.LOG_HISTORY``), for ``plots.training_curves``."""
        return read_log_history(self.run_dir)


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
    """The directory of a finished run made with exactly ``settings``, in the precision this
    machine trains in, under ``output_dir`` (default ``profiles.runs_dir()``), or None: another
    profile's or settings' run of the same name does not count. The data files and a local
    model directory are compared by path, not by content."""
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
    return RunResult(run_dir, json.loads((run_dir / CONFIG).read_text()),
                     json.loads((run_dir / METRICS).read_text()),
                     pd.read_csv(run_dir / PREDICTIONS), model=None, tokenizer=None, reused=True)


def run(
    task: str,
    method: str = "lora",
    r: int = 8,
    alpha: float = 16,
    targets=DEFAULT_TARGETS,
    dropout: float = 0.0,
    rslora: bool = False,
    epochs: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
    seed: int = 0,
    profile=None,
    model: str | None = None,
    data_files: dict | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    output_dir=None,
    run_name: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    reuse: bool = False,
    progress: bool = True,
) -> RunResult:
    """Fine-tune a model on ``task`` with ``method`` and write its run directory.

    Args:
        task: ``"imdb"`` or ``"emotion"``.
        method: ``"lora"`` (from scratch), ``"peft"``, ``"full"``, ``"head"``, or a LoRA
            variant: ``"dora"``, ``"pissa"``, ``"loraplus"``, ``"vera"``, ``"ia3"``
            (``lorakit.models`` says what each does).
        r, alpha, targets, dropout, rslora: LoRA settings, ignored by ``full`` and ``head``;
            VeRA uses ``r``, ``targets`` and ``dropout``, IA³ its own targets only.
        epochs, lr, batch_size, max_length, max_train, max_eval: override the profile's
            settings for the task; ``epochs=0`` evaluates the model without training it.
            Every number is checked before any work (``lorakit.settings.RANGES``): a bad one
            raises a one-line TypeError or ValueError and nothing is written.
        seed: seeds the head's and LoRA's initialisation, the data order and dropout.
        profile: ``"offline"``, ``"quick"``, ``"full"``, ``"tiny"`` or None to resolve it.
        model: a Hub id or local directory instead of the profile's model.
        data_files: local files by split, e.g. ``{"train": "train.csv", "test": "test.csv"}``.
        text_column, label_column: column names in those files.
        output_dir: where ``<task>/<run-name>/`` is written; default ``profiles.runs_dir()``.
        resume: continue an interrupted run from its last epoch checkpoint.
        overwrite: replace an existing run directory.
        reuse: return the finished run made with the same settings if there is one
            (``finished_run``; its result has no model), instead of training again.
        progress: show the Trainer's progress bar while it trains and predicts (a widget in
            Jupyter and Colab, tqdm in a terminal); False trains silently, for notebooks that
            make many short runs. The log is in ``log_history.csv`` either way.
    """
    started = time.perf_counter()
    profile = resolve_profile(profile)
    settings = run_settings(
        task, method, r=r, alpha=alpha, targets=targets, dropout=dropout, rslora=rslora,
        epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length,
        max_train=max_train, max_eval=max_eval, seed=seed, profile=profile, model=model,
        data_files=data_files, text_column=text_column, label_column=label_column,
        run_name=run_name)
    output_dir = runs_dir() if output_dir is None else Path(output_dir)
    if reuse:
        differences = _differences(settings, output_dir / task / settings.run_name)
        if differences == []:
            return read_run(output_dir / task / settings.run_name)
        if differences and not overwrite:
            raise FileExistsError(
                f"reuse=True: the run in {output_dir / task / settings.run_name} has other "
                f"{', '.join(differences)}; pass overwrite=True to train it again in its place")
    final_dir, work_dir = run_directories(output_dir, task, settings.run_name, resume, overwrite)

    set_seed(seed)
    data, tokenized, trained, tokenizer = _data_and_model(settings, profile, data_files)
    precision = current_precision()
    args = _training_arguments(work_dir, settings, precision, len(tokenized["train"]), progress)
    state = _claim_work_dir(final_dir, work_dir, overwrite, resume)
    trainer = _trainer(trained, args, tokenized, tokenizer, progress, _optimizer(trained, settings))
    checkpoint = get_last_checkpoint(args.output_dir) if resume and Path(
        args.output_dir).is_dir() else None
    memory_kind = reset_peak_memory()
    train_metrics, test_output = _train_and_test(trainer, tokenized["test"], settings.epochs,
                                                 checkpoint, progress)
    # Mixed precision wrapped the model's forward in autocast, in place: the model we return
    # must compute in fp32 again, like any model a reader loads.
    trained = trainer.accelerator.unwrap_model(trained, keep_fp32_wrapper=False)
    memory = {"peak_memory_mb": float(peak_memory_mb(memory_kind)),
              "peak_memory_kind": memory_kind}

    names = data["train"].features["label"].names
    table = prediction_table(data["test"]["text"], data["test"]["label"], test_output.predictions,
                             names)
    log_history = trainer.state.log_history
    metrics = (classification_metrics(table["label_id"], table["prediction_id"], names)
               | {"test_loss": float(table["loss"].mean())} | _validation_scores(log_history)
               | _parameter_counts(trained) | _train_speed(train_metrics) | memory
               | {"eval_examples": len(table), "run_seconds": time.perf_counter() - started})
    config = settings.record() | {
        "examples": {split: len(data[split]) for split in data},
        "label_names": names, "precision": precision, "device": device_description(),
        "world_size": state.num_processes, "versions": library_versions(),
        "resumed_from": Path(checkpoint).name if checkpoint else None,
    }
    if state.is_main_process:
        _write_run(work_dir, trained, config, metrics, table, log_history)
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
        work_dir.rename(final_dir)
    state.wait_for_everyone()
    return RunResult(final_dir, config, metrics, table, trained, tokenizer)


def _data_and_model(settings: RunSettings, profile, data_files: dict | None):
    """The task's splits, tokenized too, the model prepared for the method, and its tokenizer.

    Refuses a rank the target layers cannot hold, or more tokens than the model has positions,
    before anything is written.
    """
    data = load_task(settings.task, profile, data_files=data_files,
                     text_column=settings.text_column, label_column=settings.label_column,
                     seed=settings.seed, max_train=settings.max_train,
                     max_eval=settings.max_eval)
    base, tokenizer = load_base(settings.task, profile, settings.model)
    lora_rank = settings.r if settings.method in LORA_METHODS else None
    check_fits_model(base, settings.targets, lora_rank, settings.max_length)
    trained = prepare_model(base, settings.method, settings.r, settings.alpha, settings.targets,
                            settings.dropout, settings.rslora)
    return data, tokenize_task(data, tokenizer, settings.max_length), trained, tokenizer


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


def _optimizer(model, settings: RunSettings) -> torch.optim.Optimizer | None:
    """LoRA+'s AdamW (B at ``LORAPLUS_RATIO`` times A's rate); None: the Trainer's own AdamW."""
    if settings.method != "loraplus":
        return None
    groups = loraplus_parameter_groups(model, settings.lr, LORAPLUS_RATIO, WEIGHT_DECAY)
    return torch.optim.AdamW(groups, lr=settings.lr)


def _trainer(model, args: TrainingArguments, tokenized, tokenizer, progress: bool,
             optimizer: torch.optim.Optimizer | None) -> Trainer:
    """A ``CheckedTrainer`` on the train split, evaluating on validation after every epoch;
    ``optimizer`` replaces the Trainer's AdamW (its schedule still applies)."""
    trainer = CheckedTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=trainer_compute_metrics,
        processing_class=tokenizer,
        optimizers=(optimizer, None),
    )
    if not progress:  # without a bar the Trainer prints every log line instead: nothing at all
        trainer.remove_callback(PrinterCallback)
    return trainer


def _train_and_test(trainer: Trainer, test_split, epochs: float, checkpoint: str | None,
                    progress: bool):
    """Train (unless ``epochs`` is 0), then predict the test split in its own order.

    Returns the Trainer's train metrics (zeros for 0 epochs) and its test output.
    """
    train_metrics = {"train_runtime": 0.0, "train_samples_per_second": 0.0}
    with nullcontext() if progress else _transformers_progress_bars_off():
        if epochs > 0:
            train_metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
        return train_metrics, _predict_in_order(trainer, test_split)


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


def _predict_in_order(trainer: Trainer, dataset):
    """``trainer.predict`` with the outputs in the dataset's own order.

    Recent transformers versions group evaluation batches by length too, which reorders the
    outputs; training is over at this point, so sequential order costs nothing.
    """
    if getattr(trainer.args, "train_sampling_strategy", None) == "group_by_length":
        trainer.args.train_sampling_strategy = "sequential"
    output = trainer.predict(dataset, metric_key_prefix="test")
    if not np.array_equal(output.label_ids, np.asarray(dataset["label"])):
        raise RuntimeError("test predictions came back in another order than the test examples")
    return output


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


def _train_speed(train_metrics: dict) -> dict:
    return {"train_seconds": float(train_metrics["train_runtime"]),
            "train_samples_per_second": float(train_metrics["train_samples_per_second"])}


def _validation_scores(log_history: list[dict]) -> dict:
    """The last validation pass's accuracy, macro-F1 and loss (None for a run of 0 epochs)."""
    evaluations = [entry for entry in log_history if "eval_accuracy" in entry]
    last = evaluations[-1] if evaluations else {}
    return {f"validation_{name}": last.get(f"eval_{name}")
            for name in ("accuracy", "macro_f1", "loss")}


def _write_run(run_dir: Path, model, config: dict, metrics: dict, table: pd.DataFrame,
               log_history: list[dict]) -> None:
    """Every file of a finished run (``lorakit.run_files``) into ``run_dir``."""
    write_json(run_dir / CONFIG, config)
    write_json(run_dir / METRICS, metrics)
    write_log_history(run_dir, log_history)
    table.to_csv(run_dir / PREDICTIONS, index=False)
    if config["method"] in PEFT_METHODS:
        model.save_pretrained(run_dir / ADAPTER)
    elif config["method"] in LORAKIT_LORA_METHODS:
        save_peft_adapter(model, run_dir / ADAPTER, base_model_name_or_path=config["model"])
    elif config["method"] == "head":
        head = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(head, str(run_dir / HEAD))


def predict_logits(model: torch.nn.Module, tokenizer, texts: list[str], max_length: int = 512,
                   batch_size: int = 32) -> np.ndarray:
    """Logits (N, num_labels) for raw texts, in eval mode, batch by batch."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], truncation=True,
                              max_length=max_length, padding=True, return_tensors="pt")
            outputs.append(model(**batch.to(device)).logits.float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels))
