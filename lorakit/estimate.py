"""How long runs take on this machine, measured before any data is downloaded.

``estimate_seconds`` times a few optimizer steps and one evaluation batch of the profile's
architecture on random batches, and multiplies them by the steps and batches the profile runs.
The batches are as long as the runs' batches pad to on average where the data is on disk (the
bundled samples), and full length (the profile's maximum) where it is still on the Hub.
Notebooks print the result before long work (``print_estimate``) so that a reader on a T4 knows
how long the ``full`` profile takes before it starts.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    TrainingArguments,
)

from lorakit.bench import training_step
from lorakit.data import get_task, load_task, split_sizes
from lorakit.models import DEFAULT_TARGETS, load_base, prepare_model
from lorakit.precision import autocast, current_precision
from lorakit.profiles import METHODS, resolve_profile

# What an estimate leaves out, said wherever one is printed (with Estimate.caveat). On short runs
# it can be most of the time: on an H100 (beside the test suite), notebook 04's four offline runs
# printed 3 s and trained for 15 s.
LEFT_OUT = "loading and saving come on top"


UNTRAINED = "untrained"  # a run of 0 epochs: its model is only evaluated


@dataclass(frozen=True)
class Estimate:
    """What ``estimate_seconds`` measured: seconds per optimizer step by method, and seconds by
    run name (training and evaluations, summed over repeats), timed on training batches of
    ``batch_tokens`` tokens: the data's average padded length when ``from_data``, else the
    profile's maximum length."""

    step_seconds: dict[str, float]
    run_seconds: dict[str, float]
    batch_tokens: int
    from_data: bool

    @property
    def total(self) -> float:
        return sum(self.run_seconds.values())

    @property
    def caveat(self) -> str:
        """What the estimate counts and leaves out, in words, to print beside it."""
        if self.from_data:
            return (f"training steps timed on batches of {self.batch_tokens} tokens, the length "
                    f"random batches of the training texts pad to on average; {LEFT_OUT}")
        return (f"training steps timed on full-length batches ({self.batch_tokens} tokens; real "
                f"batches pad to their longest text, often shorter); {LEFT_OUT}")


def estimate_seconds(task: str, runs: Sequence[str] = ("lora",), profile=None,
                     timed_steps: int = 2, precision: str | None = None) -> Estimate:
    """About how long ``runs`` take on this machine, measured, before any data is downloaded.

    ``runs`` has one entry per run: a method (repeats count) or ``"untrained"`` (0 epochs, only
    evaluated). For each method, ``timed_steps`` optimizer steps (after one warm-up step) of the
    profile's architecture on random batches are timed and multiplied by the steps the profile
    runs; one evaluation batch (twice as large, no gradients) is timed and multiplied by the
    batches every run evaluates: the validation split after each epoch and the test split at
    the end. Real batches pad to their longest text, so the batches timed are as long as the
    runs' batches are on average (``padded_length``) where the data is bundled, and full length
    (the profile's maximum) where it is not downloaded yet. Loading, tokenizing and saving are
    not counted (on the offline profile's short runs on a GPU they take longer than the steps).
    For distilbert-base-uncased the architecture is built from ``DistilBertConfig()`` with
    random weights: same cost, no download.

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
    base, tokenizer = _architecture(task, profile)
    eval_size = 2 * settings.batch_size
    train_tokens, eval_tokens = settings.max_length, settings.max_length
    if tokenizer is not None:  # the data is on disk: batches as long as the runs' batches
        data = load_task(task, profile)
        train_tokens = padded_length(_token_lengths(data["train"], tokenizer, settings.max_length),
                                     settings.batch_size, shuffled=True)
        eval_tokens = padded_length(_token_lengths(data["validation"], tokenizer,
                                                   settings.max_length), eval_size, shuffled=False)
    batch = _random_batch(base.config.vocab_size, settings.batch_size, train_tokens)
    step_seconds = {method: _seconds_per_step(prepare_model(copy.deepcopy(base), method,
                                                            targets=DEFAULT_TARGETS),
                                              batch, timed_steps, precision)
                    for method in dict.fromkeys(runs) if method != UNTRAINED}
    eval_batch = _random_batch(base.config.vocab_size, eval_size, eval_tokens)
    per_batch = _seconds_per_evaluation(base, eval_batch, precision)
    test_seconds = per_batch * -(-sizes["test"] // eval_size)
    evaluations = math.ceil(settings.epochs)  # the validation split after every epoch
    validation_seconds = per_batch * -(-sizes["validation"] // eval_size) * evaluations
    steps = -(-sizes["train"] // settings.batch_size) * settings.epochs
    run_seconds = dict.fromkeys(runs, 0.0)
    for name in runs:
        trained = 0.0 if name == UNTRAINED else step_seconds[name] * steps + validation_seconds
        run_seconds[name] += trained + test_seconds
    return Estimate(step_seconds, run_seconds, batch_tokens=train_tokens,
                    from_data=tokenizer is not None)


def padded_length(lengths: Sequence[int], batch_size: int, shuffled: bool,
                  passes: int = 10, seed: int = 0) -> int:
    """The number of tokens a batch of ``batch_size`` texts of ``lengths`` tokens pads to (its
    longest text), on average over the batches of ``passes`` seeded shuffles when ``shuffled``
    (training: transformers 5.24's Trainer draws random batches under ``lorakit.train.run``'s
    settings; 5.15's groups them by length, which pads less), else over one pass in order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        raise ValueError("padded_length needs the lengths of at least one text")
    rng = np.random.default_rng(seed)
    orders = ([rng.permutation(lengths.size) for _ in range(passes)] if shuffled
              else [np.arange(lengths.size)])
    longest = [lengths[order[i:i + batch_size]].max()
               for order in orders for i in range(0, lengths.size, batch_size)]
    return math.ceil(np.mean(longest))


def _token_lengths(split, tokenizer, max_length: int) -> list[int]:
    """Tokens per text of a split, special tokens included, cut at ``max_length``."""
    encoded = tokenizer(list(split["text"]), truncation=True, max_length=max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def _architecture(task: str, profile) -> tuple[torch.nn.Module, object]:
    """The profile's model for ``task`` and its tokenizer: the bundled ones, or distilbert-base's
    shapes with random weights and no tokenizer (None: nothing is downloaded)."""
    if profile.data == "fixtures":
        return load_base(task, profile)
    config = DistilBertConfig(num_labels=len(get_task(task).label_names))
    return DistilBertForSequenceClassification(config), None


def _random_batch(vocab_size: int, batch_size: int, length: int) -> dict[str, torch.Tensor]:
    """Random token ids (batch_size, length) and labels 0 (batch_size,), on the run's device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"input_ids": torch.randint(0, vocab_size, (batch_size, length), device=device),
            "labels": torch.zeros(batch_size, dtype=torch.long, device=device)}


def _seconds_per_step(model: torch.nn.Module, batch: dict, timed_steps: int,
                      precision: str) -> float:
    """Median seconds of one AdamW step of ``model`` on ``batch``, after one warm-up step, with
    the AdamW that the Trainer of ``lorakit.train.run`` builds: fused where transformers makes it
    its default (from torch 2.8); on our CPU it takes 40% off a full fine-tuning step."""
    device = batch["input_ids"].device.type
    model.to(device).train()
    fused = TrainingArguments.__dataclass_fields__["optim"].default == "adamw_torch_fused"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  fused=fused or None)
    step = training_step(model, batch, optimizer, precision)
    seconds = []
    for number in range(timed_steps + 1):
        started = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        if number > 0:
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


def format_duration(seconds: float) -> str:
    """E.g. ``45 s``, ``12 min``, ``2.5 h``: how estimates are printed."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_lines(task: str, runs: Sequence[str], profile=None) -> list[str]:
    """Two lines: each run's measured time, and the total with what it counts."""
    profile = resolve_profile(profile)
    estimate = estimate_seconds(task, runs, profile)
    counts = Counter(runs)
    each = ", ".join(f"{run}{f' ×{counts[run]}' if counts[run] > 1 else ''} "
                     f"{format_duration(estimate.run_seconds[run])}" for run in counts)
    what = "this run" if len(runs) == 1 else f"these {len(runs)} runs"
    return [f"{'':>8}  measured here: {each}",
            f"{'':>8}  {what}, evaluations included, take about {format_duration(estimate.total)} "
            f"({estimate.caveat})"]


def print_estimate(task: str, runs: Sequence[str], profile=None, file=None) -> str:
    """Print (and return) about how long ``runs`` take here: one entry per run, a method or
    ``"untrained"``; printed under ``Profile.describe(task)``'s lines, indented like them."""
    text = "\n".join(estimate_lines(task, runs, profile))
    print(text, file=file)
    return text
