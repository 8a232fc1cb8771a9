"""How long work takes: measured on this machine, or counted at a T4's assumed throughput.

Run-pipeline tier. ``lorakit.plan.WorkPlan`` counts what a notebook will compute (training
steps, tokens, examples to predict); this module turns counts into seconds two ways.

**Here**, measured: ``Timer`` times a few optimizer steps of each method, and forward passes, of
the profile's architecture on random batches as long as the real ones pad to, in the precision
runs use here, with the AdamW the Trainer builds. Loading, tokenizing and saving come on top.

**On a T4**, counted: the FLOPs of the work (``training_flops``, ``forward_flops``, from the
model's configuration) at ``T4_FLOPS``, an effective throughput taken from a published
measurement (below), never below ``STEP_FLOOR_SECONDS`` per training step. It is an assumption,
not a measurement of ours: no T4 has run this series yet.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification, TrainingArguments

from lorakit.measure import synchronize, training_step
from lorakit.methods import get_method
from lorakit.models import DEFAULT_TARGETS, load_base, prepare_model
from lorakit.precision import autocast, compute_device, current_precision
from lorakit.profiles import resolve_profile
from lorakit.tasks import get_task

LEFT_OUT = "loading and saving come on top"

# A T4's effective mixed-precision training throughput, from one published measurement:
# ModernBERT-base (22 layers, hidden 768, about 110M weights outside the embeddings), batch 32 of
# 128 tokens in fp16 on a Kaggle T4, took 0.30 s per step (earino, "Your T4 Training Is 4x Slower
# Than It Should Be", Applied Deep Learning blog,
# https://earino.github.io/applied-deep-learning/site/blog/05_bf16_on_t4.html). Counted as
# below, 6 × 110M FLOPs per token plus attention, 4,096 tokens a step: 2.8 TFLOP in 0.30 s, 9.4
# TFLOPS, 14% of the T4's 65 TFLOPS fp16 peak. If their batches were padded shorter than 128,
# the real rate is lower and our T4 times are optimistic by as much.
T4_FLOPS = 9.4e12
# A step cannot take less than launching its kernels: our own H100 (benchmarks/results/h100/
# train_step.md, distilbert-base, batch 16, fp16) spent 12 ms on a head-only step, 36 ms on a
# LoRA step and 28 ms on a full one at 128 and at 512 tokens alike, work an H100 computes in a
# few milliseconds. A T4's slower host launches no faster, so these are floors.
STEP_FLOOR_SECONDS = {"head": 0.012, "adapter": 0.036, "full": 0.028}


def encoder_weights(config: DistilBertConfig) -> int:
    """The weights a token meets in matrix products on its way through the encoder: every
    block's attention projections (4 d²) and feed-forward layers (2 d · hidden)."""
    return config.n_layers * (4 * config.dim**2 + 2 * config.dim * config.hidden_dim)


def forward_flops(config: DistilBertConfig, tokens: int, sequence: int) -> float:
    """FLOPs of a forward pass over ``tokens`` tokens in sequences of ``sequence`` (padded)
    tokens: 2 per weight per token through the encoder, attention's scores and weighted sum
    (4 · sequence · d per token and block), and the head on each sequence's first token."""
    return sum(_flops(config, tokens, sequence))


def training_flops(config: DistilBertConfig, method: str, tokens: int, sequence: int) -> float:
    """FLOPs of training on ``tokens`` tokens: the forward pass and its backward. The backward
    pass carries the gradient back through every layer whose input leads to something that
    trains: through the encoder's frozen weights too for adapters (their input gradients, not
    their weight gradients: once the forward's products), with both gradients where every
    weight trains (twice them), and attention's two products twice either way; head-only
    training goes back through the head alone. LoRA's own small products are left out (1% of a
    DistilBERT block's at r = 8)."""
    linear, attention, head = _flops(config, tokens, sequence)
    backward = {"full": 2 * linear + 2 * attention, "head": 0.0}.get(
        _kind(method), linear + 2 * attention)
    return linear + attention + head + backward + 2 * head


def _flops(config: DistilBertConfig, tokens: int, sequence: int) -> tuple[float, float, float]:
    """A forward pass's FLOPs in the encoder's weights, in attention, and in the head."""
    linear = 2.0 * encoder_weights(config) * tokens
    attention = 4.0 * sequence * config.dim * config.n_layers * tokens
    head = 2.0 * (config.dim**2 + config.dim * config.num_labels) * tokens / sequence
    return linear, attention, head


def t4_training_seconds(config: DistilBertConfig, method: str, steps: int, batch_size: int,
                        sequence: int) -> float:
    """Seconds ``steps`` steps of batches of ``batch_size`` × ``sequence`` tokens take at
    ``T4_FLOPS``, each at least ``STEP_FLOOR_SECONDS``."""
    per_step = training_flops(config, method, batch_size * sequence, sequence) / T4_FLOPS
    return steps * max(per_step, STEP_FLOOR_SECONDS[_kind(method)])


def t4_forward_seconds(config: DistilBertConfig, tokens: int, sequence: int) -> float:
    """Seconds a forward pass over ``tokens`` tokens (sequences of ``sequence``) takes at
    ``T4_FLOPS``."""
    return forward_flops(config, tokens, sequence) / T4_FLOPS


def _kind(method: str) -> str:
    name = get_method(method).name
    return name if name in ("full", "head") else "adapter"


def architecture(task: str, profile=None) -> DistilBertConfig:
    """The configuration of the profile's model for ``task``: the bundled model's own, or
    distilbert-base-uncased's (``DistilBertConfig()``'s defaults), without a download."""
    profile = resolve_profile(profile)
    labels = len(get_task(task).label_names)
    if profile.data == "fixtures":
        return load_base(task, profile)[0].config
    return DistilBertConfig(num_labels=labels)


class Timer:
    """Seconds of a training step and of a forward pass, measured here on random batches of
    the profile's architecture for ``task``, in the precision runs use here (cached)."""

    def __init__(self, task: str, profile=None, timed_steps: int = 2):
        self.task, self.profile = task, resolve_profile(profile)
        self.timed_steps = timed_steps
        self._model = None

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            if self.profile.data == "fixtures":
                self._model = load_base(self.task, self.profile)[0]
            else:
                self._model = DistilBertForSequenceClassification(
                    architecture(self.task, self.profile))
        return self._model

    def step_seconds(self, method: str, batch_size: int, tokens: int) -> float:
        """Median seconds of one AdamW step of ``method`` on a batch of ``batch_size`` ×
        ``tokens`` tokens, after a warm-up step."""
        return _timed_step(self, method, batch_size, tokens)

    def forward_seconds(self, batch_size: int, tokens: int) -> float:
        """Seconds of one forward pass, without gradients, on ``batch_size`` × ``tokens``."""
        return _timed_forward(self, batch_size, tokens)


@lru_cache(maxsize=256)
def _timed_step(timer: Timer, method: str, batch_size: int, tokens: int) -> float:
    model = prepare_model(copy.deepcopy(timer.model), method, targets=DEFAULT_TARGETS)
    batch = _random_batch(model.config.vocab_size, batch_size, tokens)
    model.to(batch["input_ids"].device).train()
    fused = TrainingArguments.__dataclass_fields__["optim"].default == "adamw_torch_fused"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  fused=fused or None)  # the Trainer's AdamW (fused from torch 2.8)
    step = training_step(model, batch, optimizer, current_precision())
    seconds = []
    for number in range(timer.timed_steps + 1):
        started = time.perf_counter()
        step()
        synchronize()
        if number > 0:
            seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


@lru_cache(maxsize=256)
@torch.no_grad()
def _timed_forward(timer: Timer, batch_size: int, tokens: int) -> float:
    model = timer.model
    batch = _random_batch(model.config.vocab_size, batch_size, tokens)
    model.to(batch["input_ids"].device).eval()
    device = batch["input_ids"].device.type
    for _ in range(2):  # the first pass warms up, the second is timed
        started = time.perf_counter()
        with autocast(device, current_precision()):
            model(**batch)
        synchronize()
    return time.perf_counter() - started


def _random_batch(vocab_size: int, batch_size: int, length: int) -> dict[str, torch.Tensor]:
    """Random token ids (batch_size, length) and labels 0 (batch_size,), on the compute device."""
    device = compute_device()
    return {"input_ids": torch.randint(0, vocab_size, (batch_size, length), device=device),
            "labels": torch.zeros(batch_size, dtype=torch.long, device=device)}


def padded_length(lengths: Sequence[int], batch_size: int, shuffled: bool,
                  passes: int = 10, seed: int = 0) -> int:
    """The number of tokens a batch of ``batch_size`` texts of ``lengths`` tokens pads to (its
    longest text), on average over the batches of ``passes`` seeded shuffles when ``shuffled``
    (training: the Trainer of ``lorakit.train.run`` draws random batches in transformers 5.24;
    5.15 groups them by length, which pads less), else over one pass in order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        raise ValueError("padded_length needs the lengths of at least one text")
    rng = np.random.default_rng(seed)
    orders = ([rng.permutation(lengths.size) for _ in range(passes)] if shuffled
              else [np.arange(lengths.size)])
    longest = [lengths[order[i:i + batch_size]].max()
               for order in orders for i in range(0, lengths.size, batch_size)]
    return math.ceil(np.mean(longest))


def sorted_padded_tokens(lengths: Sequence[int], batch_size: int) -> int:
    """The tokens of ``lengths`` padded batch by batch after sorting them by length, as
    ``lorakit.inference`` predicts: each batch pads to its longest text."""
    ordered = np.sort(np.asarray(lengths, dtype=np.int64))
    return int(sum(ordered[i:i + batch_size].max() * len(ordered[i:i + batch_size])
                   for i in range(0, len(ordered), batch_size)))


def format_duration(seconds: float) -> str:
    """E.g. ``45 s``, ``12 min``, ``2.5 h``: how estimates are printed."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
