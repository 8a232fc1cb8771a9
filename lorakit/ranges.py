"""The range of every numeric run setting, checked before any work starts.

``lorakit.train.run_settings`` (and through it ``lorakit train`` and ``lorakit sweep``) calls
``check_run_settings`` before it loads data or a model, and ``lorakit.models.check_fits_model``
once the model is loaded but before anything is written, so that a bad setting costs nothing and
leaves nothing behind. Each refusal is one line naming the argument, its command-line flag, the
value, the valid range and an example::

    epochs=-2.0 (--epochs) is out of range: use a finite number from 0 to 1000, e.g. 3

A wrong type is a TypeError, a wrong value a ValueError, as everywhere in lorakit
(``lorakit.checks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lorakit.checks import int_range, number_range, require_int, require_number


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
    "head_lr": Range("--head-lr", float, 0, 1, 5e-3, low_open=True),
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
