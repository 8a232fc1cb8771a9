"""One rule for bad input: a wrong type is a TypeError, a wrong value a ValueError, everywhere."""

import math

import numpy as np
import pytest
from torch import nn

from lorakit import maths
from lorakit.checks import number_range, require_int, require_number
from lorakit.lora import LoRALinear
from lorakit.ranges import check_setting

RANK_TAKERS = {
    "LoRALinear": lambda r: LoRALinear(nn.Linear(4, 4), r=r, alpha=8),
    "maths.lora_parameter_count": lambda r: maths.lora_parameter_count(768, 768, r),
    "settings.check_setting": lambda r: check_setting("r", r),
}


@pytest.mark.parametrize("taker", RANK_TAKERS, ids=list(RANK_TAKERS))
@pytest.mark.parametrize("rank, error", [(2.5, TypeError), ("8", TypeError), (True, TypeError),
                                         (None, TypeError), (0, ValueError), (-3, ValueError)])
def test_every_function_that_takes_a_rank_refuses_it_alike(taker, rank, error):
    with pytest.raises(error, match=rf"^r={rank!r} "):
        RANK_TAKERS[taker](rank)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_whole_numbers_pass_as_ints(value):
    assert require_int("n", value) == int(value) and type(require_int("n", value)) is int


@pytest.mark.parametrize("value, error", [(0, ValueError), (1.0, TypeError), (11, ValueError)])
def test_int_bounds_are_inclusive_and_types_strict(value, error):
    with pytest.raises(error, match=r"use an int from 1 to 10, e\.g\. n=5$"):
        require_int("n", value, 1, 10, example=5)


@pytest.mark.parametrize("value, ok", [(0.0, False), (1e-9, True), (1.0, False), (0.5, True),
                                       (math.nan, False), (math.inf, False)])
def test_open_number_range(value, ok):
    if ok:
        assert require_number("p", value, 0, 1, low_open=True, high_open=True) == value
    else:
        with pytest.raises(ValueError, match=r"out of range: use a finite number in \(0, 1\)"):
            require_number("p", value, 0, 1, low_open=True, high_open=True)


def test_label_replaces_name_and_value():
    with pytest.raises(TypeError, match=r"^lr='x' \(--lr\) is a str: use a finite number above 0"):
        require_number("lr", "x", 0, low_open=True, label="lr='x' (--lr)")


def test_ranges_read_as_people_write_them():
    assert number_range(0, 1e6, low_open=True) == "a finite number in (0, 1,000,000]"
    assert number_range(0, None) == "a finite number of at least 0"
    assert number_range(None, 2, high_open=True) == "a finite number below 2"
