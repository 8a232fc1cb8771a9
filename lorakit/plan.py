"""What a notebook will compute, counted before it starts, and how long that takes.

Run-pipeline tier. A notebook puts its runs and predictions in a ``WorkPlan`` and prints it
before anything long starts; the runs it then trains are the very settings the plan counted::

    plan = WorkPlan(profile)
    lora = plan.train("imdb", "lora")       # RunSettings, checked (run_settings) and counted
    full = plan.train("imdb", "full")
    plan.predict("imdb", reviews, max_length=512, what="the cut reviews, read again")
    plan.print()      # runs (and how many are on disk already), the time, steps, examples
    result = run(lora, reuse=True)

A run finished on disk with the same settings, where ``run(..., reuse=True)`` finds it, is
listed but neither counted nor timed: it will not train again. Tokens are counted with the
profile's tokenizer on the data the runs load; a training batch is as long as random batches of
the training texts pad to on average (``estimate.padded_length``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lorakit import estimate
from lorakit.data import load_task
from lorakit.models import load_tokenizer
from lorakit.precision import current_precision, device_description
from lorakit.profiles import resolve_profile
from lorakit.train import RunSettings, finished_run, run_settings


@dataclass(frozen=True)
class Training:
    """One run of the plan. ``steps`` batches of ``batch_tokens`` tokens (on average) train;
    ``evaluated`` examples are predicted in batches of ``eval_batch_tokens``: the validation
    split after every epoch and once more at the end, and the test split."""

    settings: RunSettings
    output_dir: Path | None
    on_disk: bool
    steps: int
    batch_tokens: int
    evaluated: int
    eval_batch_tokens: int

    @property
    def train_tokens(self) -> int:
        return self.steps * self.settings.batch_size * self.batch_tokens

    @property
    def eval_tokens(self) -> int:
        return self.evaluated * self.eval_batch_tokens


@dataclass(frozen=True)
class Loop:
    """Training steps outside any run (a notebook's own loop): ``steps`` batches of
    ``batch_size`` texts of the task's training split, ``batch_tokens`` tokens on average."""

    task: str
    method: str
    what: str
    steps: int
    batch_size: int
    batch_tokens: int

    @property
    def train_tokens(self) -> int:
        return self.steps * self.batch_size * self.batch_tokens


@dataclass(frozen=True)
class Prediction:
    """Texts a model reads outside any run (``lorakit.inference``): ``examples`` of them in
    length-sorted batches of ``batch_size``, ``tokens`` once padded."""

    task: str
    what: str
    examples: int
    tokens: int
    batch_size: int


class WorkPlan:
    """The runs and predictions a notebook will compute, in one profile."""

    def __init__(self, profile=None):
        self.profile = resolve_profile(profile)
        self.trainings: list[Training] = []
        self.loops: list[Loop] = []
        self.predictions: list[Prediction] = []

    def train(self, settings: RunSettings | str, method: str | None = None, *, output_dir=None,
              **changes) -> RunSettings:
        """Add a run: ``settings`` completed by ``run_settings`` in this plan's profile (the
        same arguments as ``run``); returns them, to pass to ``run``. ``output_dir`` is where
        the run will be written, to find it on disk."""
        if not isinstance(settings, RunSettings):
            changes.setdefault("profile", self.profile.name)
        settings = run_settings(settings, method, **changes)
        where = None if output_dir is None else Path(output_dir)
        if not any(t.settings == settings and t.output_dir == where for t in self.trainings):
            self.trainings.append(_counted(settings, output_dir))  # a run listed twice trains once
        return settings

    def loop(self, task: str, method: str, steps: int, what: str) -> None:
        """Add ``steps`` training steps of ``method`` in a loop of the notebook's own, on
        batches of the profile's size from the task's training split."""
        settings = run_settings(task, method, profile=self.profile.name)
        lengths = _split_lengths(settings, "train")
        self.loops.append(Loop(task, method, what, steps, settings.batch_size,
                               estimate.padded_length(lengths, settings.batch_size,
                                                      shuffled=True)))

    def predict(self, task: str, texts: Sequence[str], max_length: int, what: str,
                batch_size: int = 64, times: int = 1) -> None:
        """Add a prediction outside the runs: ``texts`` read at ``max_length`` tokens, ``times``
        times (by as many models)."""
        lengths = _lengths(tuple(texts), self.profile.name, self.profile.model, max_length)
        tokens = estimate.sorted_padded_tokens(lengths, batch_size)
        self.predictions += [Prediction(task, what, len(texts), tokens, batch_size)] * times

    @property
    def to_train(self) -> list[Training]:
        """The runs that are not on disk yet: those that will train."""
        return [training for training in self.trainings if not training.on_disk]

    def totals(self) -> dict[str, int]:
        """Runs, runs to train, training steps and tokens, and examples and tokens predicted
        (the evaluations of the runs to train and every prediction outside them)."""
        return {"runs": len(self.trainings), "to_train": len(self.to_train),
                "steps": sum(t.steps for t in [*self.to_train, *self.loops]),
                "train_tokens": sum(t.train_tokens for t in [*self.to_train, *self.loops]),
                "predicted": sum(t.evaluated for t in self.to_train)
                + sum(p.examples for p in self.predictions),
                "predicted_tokens": sum(t.eval_tokens for t in self.to_train)
                + sum(p.tokens for p in self.predictions)}

    def seconds_here(self) -> float:
        """The plan's time on this machine: its steps and forward passes, each timed here."""
        timers: dict[str, estimate.Timer] = {}
        seconds = 0.0
        for t in self.to_train:
            timer = timers.setdefault(t.settings.task, estimate.Timer(t.settings.task,
                                                                     self.profile))
            seconds += t.steps * timer.step_seconds(t.settings.method, t.settings.batch_size,
                                                    t.batch_tokens)
            eval_batch = 2 * t.settings.batch_size
            seconds += math.ceil(t.evaluated / eval_batch) * timer.forward_seconds(
                eval_batch, t.eval_batch_tokens)
        for loop in self.loops:
            timer = timers.setdefault(loop.task, estimate.Timer(loop.task, self.profile))
            seconds += loop.steps * timer.step_seconds(loop.method, loop.batch_size,
                                                       loop.batch_tokens)
        for p in self.predictions:
            timer = timers.setdefault(p.task, estimate.Timer(p.task, self.profile))
            batches = math.ceil(p.examples / p.batch_size)
            seconds += batches * timer.forward_seconds(p.batch_size,
                                                       math.ceil(p.tokens / p.examples))
        return seconds

    def seconds_on_t4(self) -> float:
        """The plan's time on a T4 at ``estimate.T4_FLOPS`` (an assumption, not a measurement)."""
        seconds = 0.0
        for t in self.to_train:
            config = estimate.architecture(t.settings.task, self.profile)
            seconds += estimate.t4_training_seconds(config, t.settings.method, t.steps,
                                                    t.settings.batch_size, t.batch_tokens)
            seconds += estimate.t4_forward_seconds(config, t.eval_tokens, t.eval_batch_tokens)
        for loop in self.loops:
            config = estimate.architecture(loop.task, self.profile)
            seconds += estimate.t4_training_seconds(config, loop.method, loop.steps,
                                                    loop.batch_size, loop.batch_tokens)
        for p in self.predictions:
            config = estimate.architecture(p.task, self.profile)
            seconds += estimate.t4_forward_seconds(config, p.tokens,
                                                   math.ceil(p.tokens / p.examples))
        return seconds

    def describe(self) -> str:
        """The plan in one line: what trains, what was counted, and the time that takes here
        (timed on random batches as long as the real ones)."""
        totals = self.totals()
        kinds = Counter((t.settings.task, "rslora" if t.settings.rslora else t.settings.method)
                        for t in self.to_train)  # rsLoRA trains as method "lora", named apart
        runs = ", ".join(f"{task} {method}{f' ×{n}' if n > 1 else ''}"
                         for (task, method), n in kinds.items())
        on_disk = totals["runs"] - totals["to_train"]
        parts = [f"{totals['to_train']} run(s) to train" + (f" ({runs})" if runs else "")
                 + (f", {on_disk} more on disk already" if on_disk else "")] \
            if self.trainings else []
        parts += [loop.what for loop in self.loops]  # their steps: in the totals below
        head = (f"Work plan ({self.profile.name} profile): "
                + ("; ".join(parts) or "nothing to train"))
        if not (totals["steps"] or totals["predicted"]):
            return head
        duration = estimate.format_duration(self.seconds_here())
        return (f"{head}: {totals['steps']:,} training steps and {totals['predicted']:,} "
                f"predictions take about {duration} here ({device_description()}, "
                f"{current_precision()}; {estimate.LEFT_OUT})")

    def print(self, file=None) -> str:
        """Print (and return) ``describe()``."""
        text = self.describe()
        print(text, file=file)
        return text


def _counted(settings: RunSettings, output_dir) -> Training:
    """A run of ``settings``, its steps and evaluations counted on the data it will load."""
    lengths = {split: _split_lengths(settings, split) for split in ("train", "validation",
                                                                     "test")}
    epochs = settings.epochs
    steps = math.ceil(math.ceil(len(lengths["train"]) / settings.batch_size) * epochs)
    evaluations = math.ceil(epochs) + 1  # after every epoch, and the final prediction
    evaluated = evaluations * len(lengths["validation"]) + len(lengths["test"])
    eval_lengths = list(lengths["validation"]) * evaluations + list(lengths["test"])
    return Training(
        settings, None if output_dir is None else Path(output_dir),
        finished_run(settings, output_dir) is not None, steps,
        estimate.padded_length(lengths["train"], settings.batch_size, shuffled=True)
        if steps else 0, evaluated,
        estimate.padded_length(eval_lengths, 2 * settings.batch_size, shuffled=False))


def _split_lengths(settings: RunSettings, split: str) -> tuple[int, ...]:
    """Tokens per example of one split of the run's data, cut at its ``max_length``."""
    data = _data(settings.task, settings.profile, _frozen(settings.data_files),
                 settings.text_column, settings.label_column, settings.seed, settings.max_train,
                 settings.max_eval)
    return _lengths(tuple(data[split]["text"]), settings.profile, settings.model,
                    settings.max_length)


@lru_cache(maxsize=32)
def _data(task, profile, data_files, text_column, label_column, seed, max_train, max_eval):
    return load_task(task, profile, data_files=dict(data_files) if data_files else None,
                     text_column=text_column, label_column=label_column, seed=seed,
                     max_train=max_train, max_eval=max_eval)


@lru_cache(maxsize=128)
def _lengths(texts: tuple[str, ...], profile: str, model: str, max_length: int
             ) -> tuple[int, ...]:
    """Tokens per text (special tokens included) with the model's tokenizer, cut at
    ``max_length``."""
    tokenizer = load_tokenizer(profile, model)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return tuple(len(ids) for ids in encoded)


def _frozen(mapping: dict | None):
    return tuple(sorted(mapping.items())) if mapping else None
