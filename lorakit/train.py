"""One training run: ``transformers.Trainer`` plus a run directory that records everything.

``run(task, method, ...)`` builds the model for the profile, fine-tunes it, evaluates on the test
split and writes::

    runs/<task>/<run-name>/
      config.json        everything needed to repeat the run (library versions, device included)
      metrics.json       accuracy, macro-F1, per-class F1, parameters, time, throughput, memory
      log_history.csv    the Trainer's log, for training curves
      predictions.csv    text, label, prediction, per-class probabilities, per-example loss
      adapter/           LoRA methods: adapter_model.safetensors + adapter_config.json (PEFT format)

While a run trains it lives in ``<run-name>.incomplete/`` with a checkpoint per epoch, so that
``resume=True`` can continue it after a disconnect and a failed run never looks finished.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
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
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from lorakit.bench import peak_memory_mb, reset_peak_memory
from lorakit.data import get_task, load_task, split_sizes, tokenize_task
from lorakit.metrics import (
    classification_metrics,
    prediction_table,
    trainer_compute_metrics,
)
from lorakit.models import DEFAULT_TARGETS, check_method, load_base, prepare_model
from lorakit.peft_format import save_peft_adapter
from lorakit.precision import autocast, current_precision
from lorakit.profiles import METHODS, device_description, resolve_profile, runs_dir
from lorakit.settings import check_fits_model, check_run_settings

LORA_METHODS = ("lora", "peft")
INCOMPLETE_SUFFIX = ".incomplete"


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
    """E.g. ``lora-r8-a16-seed0``; ``full-seed0`` for methods without a rank."""
    lora_part = f"-r{r}-a{alpha:g}" if method in LORA_METHODS else ""
    return f"{method}{lora_part}-seed{seed}"


@dataclass
class RunResult:
    """What ``run`` returns: where it wrote, what it measured, and the trained model."""

    run_dir: Path
    config: dict
    metrics: dict
    predictions: pd.DataFrame
    model: torch.nn.Module
    tokenizer: object


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


def _resolve_run_dir(output_dir, task, run_name, resume, overwrite) -> tuple[Path, Path]:
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
    progress: bool = True,
) -> RunResult:
    """Fine-tune a model on ``task`` with ``method`` and write its run directory.

    Args:
        task: ``"imdb"`` or ``"emotion"``.
        method: ``"lora"`` (from scratch), ``"peft"``, ``"full"`` or ``"head"``.
        r, alpha, targets, dropout, rslora: LoRA settings (ignored by ``full`` and ``head``).
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
        progress: show the Trainer's progress bar while it trains and predicts (a widget in
            Jupyter and Colab, tqdm in a terminal); False trains silently, for notebooks that
            make many short runs. The log is in ``log_history.csv`` either way.
    """
    profile = resolve_profile(profile)
    check_method(method)
    check_run_settings(r=r, alpha=alpha, dropout=dropout, epochs=epochs, lr=lr,
                       batch_size=batch_size, max_length=max_length, max_train=max_train,
                       max_eval=max_eval, seed=seed)
    settings = profile.settings(
        task, epochs=epochs, batch_size=batch_size, max_length=max_length,
        max_train=max_train, max_eval=max_eval,
    )
    learning_rate = lr if lr is not None else settings.learning_rates[method]
    run_name = run_name or default_run_name(method, r, alpha, seed)
    output_dir = runs_dir() if output_dir is None else output_dir
    final_dir, work_dir = _resolve_run_dir(output_dir, task, run_name, resume, overwrite)

    set_seed(seed)
    data = load_task(
        task, profile, data_files=data_files, text_column=text_column,
        label_column=label_column, seed=seed, max_train=settings.max_train,
        max_eval=settings.max_eval,
    )
    base, tokenizer = load_base(task, profile, model)
    check_fits_model(base, targets, r if method in LORA_METHODS else None, settings.max_length)
    trained = prepare_model(base, method, r, alpha, targets, dropout, rslora)
    tokenized = tokenize_task(data, tokenizer, settings.max_length)

    precision = current_precision()
    args = _training_arguments(work_dir, settings, learning_rate, precision, seed,
                               len(tokenized["train"]), progress)
    state = PartialState()  # after TrainingArguments, which sets up the processes
    # Every process has checked the run directory (_resolve_run_dir) before the main one changes
    # it: NCCL connects lazily, so the processes of a GPU run start unsynchronised, and a late one
    # would find the main one's .incomplete directory and refuse to run.
    state.wait_for_everyone()
    if state.is_main_process:
        if overwrite:
            shutil.rmtree(final_dir, ignore_errors=True)
            if not resume:
                shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    trainer = CheckedTrainer(
        model=trained,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=trainer_compute_metrics,
        processing_class=tokenizer,
    )
    if not progress:  # without a bar the Trainer prints every log line instead: nothing at all
        trainer.remove_callback(PrinterCallback)
    memory_kind = reset_peak_memory()
    train_metrics = {"train_runtime": 0.0, "train_samples_per_second": 0.0}
    checkpoint = None
    if resume and Path(args.output_dir).is_dir():
        checkpoint = get_last_checkpoint(args.output_dir)
    with nullcontext() if progress else _transformers_progress_bars_off():
        if settings.epochs > 0:
            train_metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
        test_output = _predict_in_order(trainer, tokenized["test"])
    # Mixed precision wrapped the model's forward in autocast, in place: the model we return
    # must compute in fp32 again, like any model a reader loads.
    trained = trainer.accelerator.unwrap_model(trained, keep_fp32_wrapper=False)
    memory = peak_memory_mb(memory_kind)

    names = data["train"].features["label"].names
    table = prediction_table(data["test"]["text"], data["test"]["label"], test_output.predictions,
                             names)
    counts = _parameter_counts(trained)
    metrics = classification_metrics(table["label_id"], table["prediction_id"], names) | {
        "test_loss": float(table["loss"].mean()),
        **counts,
        "train_seconds": float(train_metrics["train_runtime"]),
        "train_samples_per_second": float(train_metrics["train_samples_per_second"]),
        "peak_memory_mb": float(memory),
        "peak_memory_kind": memory_kind,
        "eval_examples": len(table),
    }
    config = {
        "task": task, "method": method, "run_name": run_name, "profile": profile.name,
        "model": model or profile.model, "r": r, "alpha": alpha, "targets": list(targets),
        "dropout": dropout, "rslora": rslora, "lr": learning_rate, "seed": seed,
        **{k: v for k, v in asdict(settings).items() if k != "learning_rates"},
        "data_files": {k: str(v) for k, v in (data_files or {}).items()} or None,
        "text_column": text_column, "label_column": label_column,
        "examples": {split: len(data[split]) for split in data},
        "label_names": names, "precision": precision, "device": device_description(),
        "world_size": state.num_processes, "versions": library_versions(),
        "resumed_from": Path(checkpoint).name if checkpoint else None,
    }
    if state.is_main_process:
        _write_run(work_dir, trained, method, config, metrics, table, trainer.state.log_history)
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
        work_dir.rename(final_dir)
    state.wait_for_everyone()
    return RunResult(final_dir, config, metrics, table, trained, tokenizer)


UNTRAINED = "untrained"  # a run of 0 epochs: its model is only evaluated


@dataclass(frozen=True)
class Estimate:
    """What ``estimate_seconds`` measured: seconds per optimizer step by method, and seconds by
    run name (training and evaluations, summed over repeats)."""

    step_seconds: dict[str, float]
    run_seconds: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.run_seconds.values())


def estimate_seconds(task: str, runs: Sequence[str] = ("lora",), profile=None,
                     timed_steps: int = 2, precision: str | None = None) -> Estimate:
    """About how long ``runs`` take on this machine, measured, before any data is downloaded.

    ``runs`` has one entry per run: a method (repeats count) or ``"untrained"`` (0 epochs, only
    evaluated). For each method, ``timed_steps`` optimizer steps (after one warm-up step) of the
    profile's architecture on random full-length batches (batch size × max length) are timed and
    multiplied by the steps the profile runs; one evaluation batch (twice as large, no gradients)
    is timed and multiplied by the batches every run evaluates: the validation split after each
    epoch and the test split at the end. Real batches are padded only to their longest text, so
    the steps take at most this long; loading, tokenizing and saving are not counted (on the
    offline profile's short runs on a GPU they take longer than the steps). For
    distilbert-base-uncased the architecture is built from ``DistilBertConfig()`` with random
    weights: same cost, no download.

    Everything is timed in the precision ``run`` uses here (fp16 or bf16 autocast where it
    uses them), or in ``precision`` (``"fp32"``, ``"fp16"``, ``"bf16"``) when given.
    """
    profile = resolve_profile(profile)
    settings = profile.settings(task)
    precision = precision or current_precision()
    unknown = sorted(set(runs) - set(METHODS) - {UNTRAINED})
    if unknown:
        raise ValueError(f"cannot estimate runs {unknown}; name methods ({', '.join(METHODS)}) "
                         f"or {UNTRAINED!r}")
    sizes = split_sizes(task, profile)
    base = _architecture(task, profile)
    batch = _random_batch(base.config.vocab_size, settings.batch_size, settings.max_length)
    step_seconds = {method: _seconds_per_step(prepare_model(copy.deepcopy(base), method,
                                                            targets=DEFAULT_TARGETS),
                                              batch, timed_steps, precision)
                    for method in dict.fromkeys(runs) if method != UNTRAINED}
    eval_size = 2 * settings.batch_size
    eval_batch = _random_batch(base.config.vocab_size, eval_size, settings.max_length)
    per_batch = _seconds_per_evaluation(base, eval_batch, precision)
    test_seconds = per_batch * -(-sizes["test"] // eval_size)
    evaluations = math.ceil(settings.epochs)  # the validation split after every epoch
    validation_seconds = per_batch * -(-sizes["validation"] // eval_size) * evaluations
    steps = -(-sizes["train"] // settings.batch_size) * settings.epochs
    run_seconds = dict.fromkeys(runs, 0.0)
    for name in runs:
        trained = 0.0 if name == UNTRAINED else step_seconds[name] * steps + validation_seconds
        run_seconds[name] += trained + test_seconds
    return Estimate(step_seconds, run_seconds)


def _architecture(task: str, profile) -> torch.nn.Module:
    """The profile's model for ``task``: the bundled one, or distilbert-base's shapes, random."""
    if profile.data == "fixtures":
        return load_base(task, profile)[0]
    config = DistilBertConfig(num_labels=len(get_task(task).label_names))
    return DistilBertForSequenceClassification(config)


def _random_batch(vocab_size: int, batch_size: int, length: int) -> dict[str, torch.Tensor]:
    """Random token ids (batch_size, length) and labels 0 (batch_size,), on the run's device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"input_ids": torch.randint(0, vocab_size, (batch_size, length), device=device),
            "labels": torch.zeros(batch_size, dtype=torch.long, device=device)}


def _seconds_per_step(model: torch.nn.Module, batch: dict, timed_steps: int,
                      precision: str) -> float:
    """Median seconds of one AdamW step of ``model`` on ``batch``, after one warm-up step."""
    device = batch["input_ids"].device.type
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    seconds = []
    for step in range(timed_steps + 1):
        started = time.perf_counter()
        with autocast(device, precision):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        if step > 0:
            seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


@torch.no_grad()
def _seconds_per_evaluation(model: torch.nn.Module, batch: dict, precision: str) -> float:
    """Seconds of one forward pass of ``model`` on ``batch`` in eval mode, after a warm-up."""
    device = batch["input_ids"].device.type
    model.to(device).eval()
    for _ in range(2):  # the first pass warms up, the second is timed
        started = time.perf_counter()
        with autocast(device, precision):
            model(**batch)
        if device == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - started


def _training_arguments(work_dir: Path, settings, learning_rate: float, precision: str,
                        seed: int, train_examples: int, progress: bool) -> TrainingArguments:
    """The Trainer's settings: a checkpoint and an evaluation per epoch, ~40 log points."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    steps_per_epoch = -(-train_examples // (settings.batch_size * world_size))
    return TrainingArguments(
        output_dir=str(work_dir / "checkpoints"),
        num_train_epochs=settings.epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 2,
        warmup_steps=settings.warmup_fraction,
        weight_decay=0.01,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=max(1, int(steps_per_epoch * settings.epochs) // 40),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun on CPUs use DDP
        seed=seed,
        data_seed=seed,
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


def _write_run(run_dir: Path, model, method, config, metrics, table, log_history) -> None:
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log = pd.DataFrame(log_history, columns=None if log_history else ["epoch", "step", "loss"])
    log.to_csv(run_dir / "log_history.csv", index=False)
    table.to_csv(run_dir / "predictions.csv", index=False)
    if method == "lora":
        save_peft_adapter(model, run_dir / "adapter", base_model_name_or_path=config["model"])
    elif method == "peft":
        model.save_pretrained(run_dir / "adapter")
    elif method == "head":
        head = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(head, str(run_dir / "head.safetensors"))


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
