"""One rule for bad input everywhere in lorakit: a wrong type is a TypeError, a wrong value a
ValueError, and the one-line message names the argument, its value, what was expected and a fix::

    r=2.5 is a float: use an int of at least 1, e.g. r=8
    dropout=1.0 is out of range: use a finite number in [0, 1), e.g. dropout=0.1

A bool is not a number here (``r=True`` is a TypeError), and NaN or infinity is out of every
range. Imports only the standard library, so the torch-only LoRA core can use it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def require_int(name: str, value, low: int = 1, high: int | None = None, *, example=None,
                label: str | None = None) -> int:
    """``value`` as an int from ``low`` to ``high`` (inclusive; ``None``: no upper bound).

    ``example`` goes into the fix (``e.g. r=8``); ``label`` replaces ``name=value`` at the start
    of the message (``lorakit.settings`` adds the command-line flag there).
    """
    shown, fix = _shown(name, value, label), _fix(name, example)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{shown} is a {type(value).__name__}: use {int_range(low, high)}{fix}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{shown} is out of range: use {int_range(low, high)}{fix}")
    return int(value)


def require_number(name: str, value, low: float | None = None, high: float | None = None, *,
                   low_open: bool = False, high_open: bool = False, example=None,
                   label: str | None = None) -> float:
    """``value`` as a finite float between ``low`` and ``high``; an open end excludes itself.

    ``example`` and ``label`` as in ``require_int``.
    """
    shown, fix = _shown(name, value, label), _fix(name, example)
    expected = number_range(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{shown} is a {type(value).__name__}: use {expected}{fix}")
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    if not (math.isfinite(value) and above and below):
        raise ValueError(f"{shown} is out of range: use {expected}{fix}")
    return float(value)


def require_type(name: str, value, types: type | tuple[type, ...], expected: str, fix: str):
    """``value`` if it is an instance of ``types``, else a TypeError saying what was expected."""
    if not isinstance(value, types):
        shown = f"{name}={value!r}" if len(repr(value)) <= 40 else name
        raise TypeError(f"{shown} has type {type(value).__name__}: use {expected}; {fix}")
    return value


def int_range(low: int, high: int | None) -> str:
    """'an int from 1 to 1024', or 'an int of at least 1' with no upper bound."""
    if high is None:
        return f"an int of at least {number(low)}"
    return f"an int from {number(low)} to {number(high)}"


def number_range(low: float | None, high: float | None, low_open: bool = False,
                 high_open: bool = False) -> str:
    """'a finite number from 0 to 1000', 'a finite number in (0, 1]', 'a finite number above 0'."""
    if low is not None and high is not None:
        if low_open or high_open:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            return f"a finite number in {left}{number(low)}, {number(high)}{right}"
        return f"a finite number from {number(low)} to {number(high)}"
    if low is not None:
        return f"a finite number {'above' if low_open else 'of at least'} {number(low)}"
    if high is not None:
        return f"a finite number {'below' if high_open else 'of at most'} {number(high)}"
    return "a finite number"


def number(value: float) -> str:
    """A bound as people write it: 1,000,000 for large whole numbers, else the shortest form."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1e4 else f"{value:g}"


def _shown(name: str, value, label: str | None) -> str:
    return label if label is not None else f"{name}={value!r}"


def _fix(name: str, example) -> str:
    if example is None:
        return ""
    return f", e.g. {example}" if isinstance(example, str) else f", e.g. {name}={example!r}"
