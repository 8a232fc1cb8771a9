"""lorakit.bench measures what it says: interleaving, medians, memory and optimizer state.

Nothing here depends on how fast this machine is: clocks are fakes, costs are counted.
"""

import pandas as pd
import pytest
import torch
from helpers import TARGETS, tiny_distilbert

from lorakit.bench import (
    interleaved_samples,
    optimizer_state_bytes,
    peak_memory,
    ratio_table,
    summarize_timings,
    time_interleaved,
    training_step,
)
from lorakit.lora import count_parameters, inject_lora


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


def test_contenders_run_interleaved_after_warmup():
    calls = []
    contenders = {name: recorder(calls, name) for name in "ABC"}
    samples = interleaved_samples(contenders, repeats=3, warmup=2, clock=lambda: 0.0)
    assert calls == list("ABC") * 5  # 2 warm-up rounds, then 3 timed rounds, A B C each time
    assert samples["contender"].tolist() == list("ABC") * 3
    assert samples["round"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_median_and_spread_from_a_fake_clock():
    clock = FakeClock()
    costs = iter([1.0, 10.0, 3.0, 20.0, 2.0, 30.0, 100.0, 40.0, 4.0, 50.0])
    contenders = {"A": lambda: clock.work(next(costs))(), "B": lambda: clock.work(next(costs))()}
    timings = time_interleaved(contenders, repeats=5, warmup=0, clock=clock)
    # A took 1, 3, 2, 100, 4 and B 10, 20, 30, 40, 50: the median ignores A's outlier.
    assert timings.loc["A", "median_s"] == 3.0 and timings.loc["B", "median_s"] == 30.0
    assert (timings.loc["A", "min_s"], timings.loc["A", "max_s"]) == (1.0, 100.0)
    assert (timings.loc["B", "q1_s"], timings.loc["B", "q3_s"]) == (20.0, 40.0)
    assert timings["repeats"].tolist() == [5, 5]
    assert timings.index.tolist() == ["A", "B"]


def test_warmup_calls_are_not_timed():
    clock = FakeClock()
    costs = iter([100.0, 1.0, 1.0, 1.0])  # the first (warm-up) call is slow
    timings = time_interleaved({"A": lambda: clock.work(next(costs))()}, repeats=3, warmup=1,
                               clock=clock)
    assert timings.loc["A", "max_s"] == 1.0


def test_known_relative_cost_gives_the_ratio():
    clock = FakeClock()
    timings = time_interleaved({"one": clock.work(0.5), "three": clock.work(1.5)},
                               repeats=5, warmup=1, clock=clock)
    ratios = ratio_table(timings, baseline="one")
    assert ratios["× one"].tolist() == [1.0, 3.0]
    square = ratio_table(timings)
    assert square.loc["three", "one"] == 3.0 and square.loc["one", "three"] == pytest.approx(1 / 3)


def test_ratio_table_names_a_missing_baseline():
    timings = summarize_timings(pd.DataFrame({"round": [0], "contender": ["A"], "seconds": [1.0]}))
    with pytest.raises(ValueError, match="baseline 'B' is not a contender; contenders are: A"):
        ratio_table(timings, baseline="B")


@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (2, -1), (1.5, 0)])
def test_bad_repeats_or_warmup_are_refused(repeats, warmup):
    with pytest.raises(ValueError, match="must be an int"):
        interleaved_samples({"A": lambda: None}, repeats=repeats, warmup=warmup)


def test_empty_or_uncallable_contenders_are_refused():
    with pytest.raises(ValueError, match="contenders is empty"):
        interleaved_samples({})
    with pytest.raises(TypeError, match="contender 'A' is a int, not a callable"):
        interleaved_samples({"A": 3})


def tiny_lora_step():
    model = inject_lora(tiny_distilbert(), TARGETS, r=4, alpha=8).train()
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
