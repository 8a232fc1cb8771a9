"""lorakit.bench measures what it says: interleaving, medians, memory and optimizer state.

Nothing here depends on how fast this machine is: clocks are fakes, costs are counted.
"""

import pandas as pd
import pytest
import torch
from helpers import HEAD, TARGETS, tiny_distilbert

from lorakit.bench import (
    Ratio,
    compare_work,
    count_work,
    interleaved_samples,
    optimizer_state_bytes,
    pair_ratio,
    peak_memory,
    ratio_table,
    summarize_timings,
)
from lorakit.lora import count_parameters, inject_lora
from lorakit.measure import training_step
from lorakit.precision import autocast
from lorakit.report import format_cell, markdown_table


class FakeClock:
    """A clock that only moves when a contender 'works': contender cost in seconds per call."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float):
        def fn() -> None:
            self.now += seconds
        return fn


def recorder(calls: list, name: str):
    return lambda: calls.append(name)


def test_contenders_run_interleaved_forward_and_reversed_after_warmup():
    calls = []
    contenders = {name: recorder(calls, name) for name in "ABC"}
    samples = interleaved_samples(contenders, repeats=5, warmup=2, clock=lambda: 0.0)
    assert "".join(calls) == "ABC" * 2 + "ABC" + "CBA" + "ABC" + "CBA" + "ABC"
    assert samples["round"].tolist() == [r for r in range(5) for _ in "ABC"]
    assert samples["contender"].tolist() == list("ABC") * 5  # rows in the caller's order


def costs(clock: FakeClock, seconds: list[float]):
    """A contender whose successive calls take ``seconds`` on ``clock``."""
    remaining = iter(seconds)
    return lambda: clock.work(next(remaining))()


def test_median_and_spread_from_a_fake_clock():
    clock = FakeClock()
    contenders = {"A": costs(clock, [1.0, 3.0, 2.0, 100.0, 4.0]),
                  "B": costs(clock, [10.0, 20.0, 30.0, 40.0, 50.0])}
    timings = summarize_timings(interleaved_samples(contenders, repeats=5, warmup=0, clock=clock))
    # the median ignores A's outlier
    assert timings.loc["A", "median_s"] == 3.0 and timings.loc["B", "median_s"] == 30.0
    assert (timings.loc["A", "min_s"], timings.loc["A", "max_s"]) == (1.0, 100.0)
    assert (timings.loc["B", "q1_s"], timings.loc["B", "q3_s"]) == (20.0, 40.0)
    assert timings["repeats"].tolist() == [5, 5]
    assert timings.index.tolist() == ["A", "B"]


def test_warmup_calls_are_not_timed():
    clock = FakeClock()
    samples = interleaved_samples({"A": costs(clock, [100.0, 1.0, 1.0, 1.0])}, repeats=3,
                                  warmup=1, clock=clock)  # the first (warm-up) call is slow
    assert summarize_timings(samples).loc["A", "max_s"] == 1.0


def test_known_relative_cost_gives_the_ratio():
    clock = FakeClock()
    samples = interleaved_samples({"one": clock.work(0.5), "three": clock.work(1.5)},
                                  repeats=5, warmup=1, clock=clock)
    ratios = ratio_table(samples, baseline="one")
    assert ratios["× one"].tolist() == [1.0, 3.0]
    assert ratios["median_s"].tolist() == [0.5, 1.5]
    square = ratio_table(samples)
    assert square.loc["three", "one"] == 3.0 and square.loc["one", "three"] == pytest.approx(1 / 3)


def slowing_machine_samples() -> pd.DataFrame:
    """B is twice as slow as A, and the machine slows down 5x from the middle of round 2 on:
    B's call in round 2 and every call after it."""
    a, b = [1.0, 1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 10.0, 10.0, 10.0]
    return pd.DataFrame({"round": [i for i in range(5) for _ in "AB"],
                         "contender": list("AB") * 5,
                         "seconds": [t for pair in zip(a, b, strict=True) for t in pair]})


def test_the_ratio_pairs_the_rounds():
    ratio = pair_ratio(slowing_machine_samples(), "A", "B")
    assert ratio == Ratio("A", "B", ratio=0.5, ratio_q1=0.5, ratio_q3=0.5, ratio_min=0.1,
                          ratio_max=0.5, rounds=5)
    assert ratio.text() == "0.500 [0.500–0.500]"
    # the ratio of the medians, 1 / 10, would blame A's speed for the slow spell
    table = ratio_table(slowing_machine_samples(), baseline="B")
    assert table.loc["A", "× B"] == 0.5 and table.loc["B", "× B"] == 1.0
    assert table["median_s"].tolist() == [1.0, 10.0]


def test_ratio_table_names_a_missing_baseline():
    samples = pd.DataFrame({"round": [0], "contender": ["A"], "seconds": [1.0]})
    with pytest.raises(ValueError, match="baseline 'B' is not a contender; contenders are: A"):
        ratio_table(samples, baseline="B")
    with pytest.raises(ValueError, match="'B' is not a contender; contenders are: A"):
        pair_ratio(samples, "A", "B")


@pytest.mark.parametrize(("repeats", "warmup", "error", "message"), [
    (0, 1, ValueError, r"repeats=0 is out of range: use an int of at least 1"),
    (2, -1, ValueError, r"warmup=-1 is out of range: use an int of at least 0"),
    (1.5, 0, TypeError, r"repeats=1.5 is a float: use an int of at least 1")])
def test_bad_repeats_or_warmup_are_refused(repeats, warmup, error, message):
    with pytest.raises(error, match=message):
        interleaved_samples({"A": lambda: None}, repeats=repeats, warmup=warmup)


def test_empty_or_uncallable_contenders_are_refused():
    with pytest.raises(ValueError, match="contenders is empty"):
        interleaved_samples({})
    with pytest.raises(TypeError, match="contender 'A' is a int, not a callable"):
        interleaved_samples({"A": 3})


def tiny_lora_step():
    model = inject_lora(tiny_distilbert(), TARGETS, r=4, alpha=8, train_modules=HEAD).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(0, 120, (4, 10), generator=generator),
             "labels": torch.tensor([0, 1, 2, 0])}
    return model, optimizer, training_step(model, batch, optimizer)


def test_training_step_updates_and_clears_gradients():
    model, optimizer, step = tiny_lora_step()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = step()
    assert loss.ndim == 0 and not loss.requires_grad
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable
    assert all(p.grad is None for p in model.parameters())


def test_training_step_runs_the_forward_pass_in_the_given_precision():
    model, optimizer, _ = tiny_lora_step()
    batch = {"input_ids": torch.randint(0, 120, (2, 6)), "labels": torch.tensor([0, 1])}
    seen = []
    model.pre_classifier.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    training_step(model, batch, optimizer)()
    training_step(model, batch, optimizer, precision="bf16")()
    assert seen == [torch.float32, torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay fp32
    with pytest.raises(ValueError, match="precision='int8'"):
        training_step(model, batch, optimizer, precision="int8")


def test_adamw_state_is_two_fp32_tensors_per_trainable_parameter():
    model, optimizer, step = tiny_lora_step()
    assert optimizer_state_bytes(optimizer) == 0  # AdamW creates its state on the first step
    step()
    trainable = count_parameters(model).trainable
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    assert optimizer_state_bytes(optimizer) == 2 * 4 * trainable
    # AdamW's step counter: one fp32 scalar per parameter tensor.
    assert optimizer_state_bytes(optimizer, include_scalars=True) == 2 * 4 * trainable + 4 * tensors


def test_peak_memory_counts_tensors_alive_together():
    if torch.cuda.is_available():
        pytest.skip("this test checks the CPU measure; CUDA reports the allocator's peak")
    n = 250_000  # fp32: 1,000,000 bytes per tensor

    def two_at_once() -> None:
        a = torch.ones(n)
        b = a * 2  # a and b alive together: 2 tensors
        del a
        c = b + 1  # b and c: still 2
        del b, c

    def one_at_a_time() -> None:
        for _ in range(3):
            torch.ones(n)

    megabytes, kind = peak_memory(two_at_once)
    assert kind == "cpu-tensors"
    assert megabytes == pytest.approx(2 * 4 * n / 2**20)
    assert peak_memory(one_at_a_time)[0] == pytest.approx(4 * n / 2**20)
    assert peak_memory(one_at_a_time, device="cpu")[1] == "cpu-tensors"
    existing = torch.ones(n)
    assert peak_memory(lambda: existing.mul_(2).view(-1))[0] == 0.0  # in place + view: nothing new


def test_peak_memory_counts_what_fn_keeps_and_a_training_step():
    if torch.cuda.is_available():
        pytest.skip("this test checks the CPU measure; CUDA reports the allocator's peak")
    kept = []
    megabytes, _ = peak_memory(lambda: kept.append(torch.ones(1000)))
    assert megabytes == pytest.approx(4000 / 2**20)
    model, optimizer, step = tiny_lora_step()
    first, _ = peak_memory(step)  # creates AdamW's state, which stays
    assert optimizer_state_bytes(optimizer) > 0
    assert first >= peak_memory(step)[0] > 0


def test_peak_memory_names_an_unknown_device():
    with pytest.raises(ValueError, match="device='mps': peak_memory measures 'cuda' or 'cpu'"):
        peak_memory(lambda: None, device="mps")


def test_work_counts_the_operations_each_call_computes():
    x, w = torch.randn(8, 16), torch.randn(4, 16)
    fused = compare_work(lambda: torch.addmm(torch.zeros(8, 4), x, w.t()),
                         lambda: torch.zeros(8, 4) + x @ w.t())
    # addmm copies its input into the output, then adds the product: one copy_ more
    assert fused.ops_difference == {"aten::add": -1, "aten::addmm": 1, "aten::copy_": 1,
                                    "aten::mm": -1}
    assert not fused.same_ops and fused.gflop_a > 0 and fused.gflop_b > 0
    assert fused.text().endswith("add −1, addmm +1, copy_ +1, mm −1")
    assert compare_work(lambda: x @ w.t(), lambda: x @ w.t()).text().endswith("the same ops")


def test_work_counts_an_op_that_autocast_wraps_once():
    x, w = torch.randn(8, 16), torch.randn(4, 16)

    def fused_in_bf16() -> None:
        with autocast("cpu", "bf16"):  # autocast's addmm casts, then calls addmm
            torch.addmm(torch.zeros(8, 4), x, w.t())

    ops, gflop = count_work(fused_in_bf16)
    assert ops["aten::addmm"] == 1 and gflop == count_work(
        lambda: torch.addmm(torch.zeros(8, 4), x, w.t()))[1]


def test_markdown_table_lines_up_and_formats_cells():
    rows = [{"name": "lorakit", "ms": 12.345, "params": 1108226, "ok": True},
            {"name": "a|b", "ms": 0.01234, "params": 7, "ok": None}]
    table = markdown_table(rows, {"name": "name", "ms": "ms", "params": "params", "ok": "ok?"},
                           right={"ms", "params"})
    assert table.splitlines() == [
        "| name    |     ms |    params | ok? |",
        "|---------|-------:|----------:|-----|",
        "| lorakit |   12.3 | 1,108,226 | yes |",
        "| a\\|b    | 0.0123 |         7 |     |",
    ]
    assert [format_cell(v) for v in (0.0, 1234.5, 1.234, 12.34, 0.01234, 1234, "x\ny", False)] \
        == ["0", "1,234", "1.23", "12.3", "0.0123", "1,234", "x y", "no"]
