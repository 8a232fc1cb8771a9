"""The numeric settings of a run, checked before any work starts.

``lorakit.train.run`` (and through it ``lorakit train`` and ``lorakit sweep``) calls
``check_run_settings`` before it loads data or a model, and ``check_fits_model`` once the model
is loaded but before anything is written, so that a bad setting costs nothing and leaves nothing
behind. Each refusal is one line naming the argument, its command-line flag, the value, the valid
range and an example::

    epochs=-2.0 (--epochs) is out of range: use a finite number from 0 to 1000, e.g. 3

A wrong type is a TypeError, a wrong value a ValueError, as everywhere in lorakit
(``lorakit.checks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lorakit.checks import int_range, number_range, require_int, require_number
from lorakit.lora import find_target_linears


@dataclass(frozen=True)
class Range:
    """The values one setting may take: ``kind`` int or float, from ``low`` to ``high``."""

    flag: str  # the command-line flag that sets it
    kind: type
    low: float
    high: float
    example: float
    low_open: bool = False  # True: low itself is not allowed
    high_open: bool = False

    def describe(self) -> str:
        """'an int from 1 to 1024', 'a finite number in (0, 1]', ..."""
        if self.kind is int:
            return int_range(self.low, self.high)
        return number_range(self.low, self.high, self.low_open, self.high_open)


RANGES = {
    "r": Range("--rank", int, 1, 1024, 8),
    "alpha": Range("--alpha", float, 0, 1e6, 16, low_open=True),
    "dropout": Range("--dropout", float, 0, 1, 0.1, high_open=True),
    "epochs": Range("--epochs", float, 0, 1000, 3),  # 0: evaluate without training
    "lr": Range("--lr", float, 0, 1, 3e-4, low_open=True),
    "batch_size": Range("--batch-size", int, 1, 4096, 16),
    "max_length": Range("--max-length", int, 2, 1_000_000, 128),  # and the model's positions
    "max_train": Range("--max-train", int, 1, 10**9, 1000),
    "max_eval": Range("--max-eval", int, 1, 10**9, 500),
    "seed": Range("--seed", int, 0, 2**32 - 1, 0),  # what numpy's seeding accepts
}


def check_setting(name: str, value, flag: str | None = None) -> None:
    """Raise a one-line TypeError or ValueError if ``value`` is not valid for setting ``name``;
    the message names ``flag``, by default the setting's own (``lorakit sweep`` names
    ``--ranks`` for r)."""
    rule = RANGES[name]
    flag = flag or rule.flag
    label, example = f"{name}={value!r} ({flag})", f"{flag} {rule.example:g}"
    if rule.kind is int:
        require_int(name, value, rule.low, rule.high, example=example, label=label)
    else:
        require_number(name, value, rule.low, rule.high, low_open=rule.low_open,
                       high_open=rule.high_open, example=example, label=label)


def check_run_settings(**settings) -> None:
    """Check every setting given by name (see ``RANGES``); None means "the profile's value"."""
    for name, value in settings.items():
        if value is not None:
            check_setting(name, value)


def check_fits_model(model: nn.Module, targets, r: int | None, max_length: int) -> None:
    """Refuse a rank no adapted layer can hold, or more tokens than the model has positions.

    A rank-r update of a (d_out, d_in) layer has rank at most min(d_out, d_in): a larger r only
    adds parameters. ``r=None`` skips the rank (methods without LoRA).
    """
    if r is not None:
        layers = find_target_linears(model, targets)
        name, layer = min(layers.items(), key=lambda item: min(item[1].weight.shape))
        limit = min(layer.weight.shape)
        if r > limit:
            raise ValueError(
                f"r={r} (--rank) is larger than {name} allows: a {layer.out_features} x "
                f"{layer.in_features} layer holds updates of rank {limit} at most; use "
                f"r <= {limit}, e.g. --rank 8")
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ValueError(
            f"max_length={max_length} (--max-length) is more tokens than "
            f"{type(model).__name__} has positions ({positions}); use --max-length {positions} "
            "or less")
