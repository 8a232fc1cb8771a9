"""Measuring speed, memory and work fairly: interleaved timings, per-round ratios, peak memory,
optimizer state size, torch operations; and the Markdown table that shows them.

Nothing here prints; every function returns numbers, records or a DataFrame for the caller::

    samples = interleaved_samples({"lorakit": step_ours, "peft": step_theirs}, repeats=7)
    summarize_timings(samples)                        # median_s, quartiles, min, max per contender
    ratio_table(samples, baseline="peft")             # median_s and the per-round ratio to peft
    megabytes, kind = peak_memory(step_ours)          # kind says what was measured

Timings are wall-clock seconds on the machine that runs them: compare them with each other, never
with numbers taken elsewhere. Contenders run interleaved, in rounds (A B C, then C B A, ...), so
that a slow spell of a shared machine hits all of them alike. A ratio A / B is the median over
rounds of A's time divided by B's in the same round: a slow spell that hits a round hits both,
and cancels out of that round's ratio. When CUDA is initialised, the device is synchronised
before the clock starts and before it stops, since CUDA kernels run asynchronously.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lorakit.checks import require_int
from lorakit.measure import MB, synchronize

# --- timing and ratios ----------------------------------------------------------------------

def interleaved_samples(
    contenders: Mapping[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> pd.DataFrame:
    """Call every contender ``warmup`` rounds untimed, then ``repeats`` rounds timed.

    A round calls each contender once: even rounds in the mapping's order, odd timed rounds in
    reverse (A B C, C B A, A B C, ...), so that running first, last, or right after a given
    other contender is shared out between them. Returns one row per timed call: ``round``
    (0-based), ``contender`` and ``seconds`` (``clock()`` after the call minus before it), in the
    mapping's order within each round. ``clock`` is replaceable for tests.
    """
    if not contenders:
        raise ValueError("contenders is empty; pass e.g. {'lorakit': step_a, 'peft': step_b}")
    require_int("repeats", repeats, 1, example="repeats=5 (or more: a fair median)")
    require_int("warmup", warmup, 0, example=2)
    for name, fn in contenders.items():
        if not callable(fn):
            raise TypeError(f"contender {name!r} is a {type(fn).__name__}, not a callable")
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    names = list(contenders)
    rows = []
    for round_ in range(repeats):
        seconds = {}
        for name in names if round_ % 2 == 0 else names[::-1]:
            synchronize()
            start = clock()
            contenders[name]()
            synchronize()
            seconds[name] = clock() - start
        rows += [{"round": round_, "contender": name, "seconds": seconds[name]} for name in names]
    return pd.DataFrame(rows, columns=["round", "contender", "seconds"])


def summarize_timings(samples: pd.DataFrame) -> pd.DataFrame:
    """Per contender (in first-seen order): median, quartiles, min and max seconds, repeats."""
    grouped = samples.groupby("contender", sort=False)["seconds"]
    summary = pd.DataFrame({
        "median_s": grouped.median(),
        "q1_s": grouped.quantile(0.25),
        "q3_s": grouped.quantile(0.75),
        "min_s": grouped.min(),
        "max_s": grouped.max(),
        "repeats": grouped.size(),
    })
    summary.index.name = "contender"
    return summary


@dataclass(frozen=True)
class Ratio:
    """How contender ``a``'s time compares with ``b``'s, over the rounds in which both ran.

    ``ratio`` is the median over rounds i of a_i / b_i (2.0: ``a`` took twice as long);
    ``ratio_q1`` and ``ratio_q3`` are the quartiles of those per-round ratios (the spread),
    ``ratio_min`` and ``ratio_max`` their extremes, ``rounds`` how many there were.
    """

    a: str
    b: str
    ratio: float
    ratio_q1: float
    ratio_q3: float
    ratio_min: float
    ratio_max: float
    rounds: int

    def text(self) -> str:
        """``0.987 [0.962–1.004]``: the ratio and its interquartile range."""
        return f"{self.ratio:.3f} [{self.ratio_q1:.3f}–{self.ratio_q3:.3f}]"


def pair_ratio(samples: pd.DataFrame, a: str, b: str) -> Ratio:
    """The ``Ratio`` of ``a`` to ``b`` from ``interleaved_samples``' rows, round by round."""
    wide = samples.pivot(index="round", columns="contender", values="seconds")
    for name in (a, b):
        if name not in wide.columns:
            raise ValueError(f"{name!r} is not a contender; contenders are: "
                             f"{', '.join(map(str, wide.columns))}")
    per_round = wide[a] / wide[b]
    return Ratio(a, b, ratio=float(per_round.median()),
                 ratio_q1=float(per_round.quantile(0.25)),
                 ratio_q3=float(per_round.quantile(0.75)),
                 ratio_min=float(per_round.min()), ratio_max=float(per_round.max()),
                 rounds=int(per_round.size))


def ratio_table(samples: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Per-round ratios (``pair_ratio``) between the contenders of ``interleaved_samples``.

    With ``baseline``: one row per contender with its ``median_s`` and ``× <baseline>``, its
    ratio to the baseline (1.0 for the baseline itself, 2.0 for twice as slow). Without: the
    square table of every pair, the row's contender's ratio to the column's.
    """
    names = list(summarize_timings(samples).index)
    if baseline is None:
        return pd.DataFrame([[pair_ratio(samples, a, b).ratio for b in names] for a in names],
                            index=pd.Index(names, name="contender"), columns=names)
    if baseline not in names:
        raise ValueError(
            f"baseline {baseline!r} is not a contender; contenders are: {', '.join(names)}")
    return pd.DataFrame({
        "median_s": summarize_timings(samples)["median_s"],
        f"× {baseline}": [pair_ratio(samples, name, baseline).ratio for name in names],
    })


# --- memory ---------------------------------------------------------------------------------
#
# ``peak_memory(fn)``: the memory one call adds (a training step in a benchmark or an appendix).
# The peak of a whole run, where counting every tensor would slow training down, is
# ``lorakit.measure``'s. On CUDA both read PyTorch's allocator peak.

class _TensorBytesTracker(TorchDispatchMode):
    """Counts the bytes of tensor storages created by torch operations while it is active.

    A storage counts from the operation that returns it until it is garbage collected; outputs
    that share a storage with an input (views, in-place operations) are not new memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {_storage_pointer(t) for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                self._track(tensor, inputs)
        return out

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if _storage_pointer(tensor) in inputs or key in self._tracked:
            return
        size = storage.nbytes()
        self._tracked.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, key, size)

    def _release(self, key: int, size: int) -> None:
        self._tracked.discard(key)
        self.live -= size


def _storage_pointer(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def memory_kind(device: str | torch.device | None = None) -> str:
    """What ``peak_memory`` measures for ``device``: ``"cuda-allocated"`` or ``"cpu-tensors"``.

    ``device=None`` means CUDA when it is available, else the CPU.
    """
    if device is None:
        return "cuda-allocated" if torch.cuda.is_available() else "cpu-tensors"
    device_type = torch.device(device).type
    if device_type not in ("cuda", "cpu"):
        raise ValueError(f"device={device!r}: peak_memory measures 'cuda' or 'cpu' only")
    return "cuda-allocated" if device_type == "cuda" else "cpu-tensors"


def peak_memory(
    fn: Callable[[], object], device: str | torch.device | None = None
) -> tuple[float, str]:
    """Run ``fn`` once; return the peak memory it added, in MB (2**20 bytes), and what was measured.

    Both kinds count memory *added* while ``fn`` ran, above what was allocated before it: the
    model's weights and anything else that already existed are not included, but tensors that
    ``fn`` creates and keeps (e.g. optimizer state on a first step) are.

    ``device`` is where ``fn`` computes (``"cuda"`` or ``"cpu"``); None means CUDA when it is
    available, else the CPU.

    - ``"cuda-allocated"`` (device CUDA): ``torch.cuda.max_memory_allocated()`` during ``fn``
      minus ``torch.cuda.memory_allocated()`` before it. Memory the caching allocator reserves
      but does not hand out, and the CUDA context, are not counted.
    - ``"cpu-tensors"`` (device CPU): the largest total size of tensor storages created by torch
      operations during ``fn`` that were alive at the same time, counted exactly by a
      ``TorchDispatchMode`` (backward included). Scratch buffers that a kernel allocates
      internally and never returns, and Python objects, are not counted; neither are the
      allocator's cached pages, which is why the process's resident memory
      (``peak_memory_mb``) reads higher and does not fall back between steps.
    """
    kind = memory_kind(device)
    if kind == "cuda-allocated":
        synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        synchronize()
        return (torch.cuda.max_memory_allocated() - before) / MB, kind
    tracker = _TensorBytesTracker()
    with tracker:
        fn()
    return tracker.peak / MB, kind


def optimizer_state_bytes(optimizer: torch.optim.Optimizer, include_scalars: bool = False) -> int:
    """Bytes held in the optimizer's state tensors (AdamW: ``exp_avg`` and ``exp_avg_sq``).

    Empty before the first ``step()``. 0-dimensional tensors (AdamW's ``step`` counter, a few
    bytes per parameter tensor) are left out unless ``include_scalars``. A storage shared by
    several state tensors is counted once.
    """
    seen: set[int] = set()
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if not isinstance(value, torch.Tensor) or (value.dim() == 0 and not include_scalars):
                continue
            storage = value.untyped_storage()
            if storage.data_ptr() in seen:
                continue
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


# --- work: what a call computes, whatever the machine's load --------------------------------

# Operations that only relabel a tensor (views, transposes, a .to() to the dtype it already has,
# wrappers that call other operations): no kernel of their own, so not counted as work.
NO_WORK = frozenset(f"aten::{name}" for name in (
    "to", "view", "reshape", "_unsafe_view", "t", "transpose", "as_strided", "expand", "detach",
    "alias", "resolve_conj", "resolve_neg", "linear", "matmul", "lift_fresh",
))


def count_work(call: Callable[[], object]) -> tuple[Counter, float]:
    """What one call computes, from torch.profiler: compute ops (name → count) and GFLOP.

    A count that does not depend on how busy the machine is, unlike a timing. An op that calls
    itself inside (autocast's wrapper around ``torch.addmm`` casts, then calls ``aten::addmm``)
    counts once.
    """
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        call()
    events = [e for e in prof.events() if e.name.startswith("aten::")
              and all(child.name != e.name for child in e.cpu_children)]
    compute = Counter(e.name for e in events if e.name not in NO_WORK)
    return compute, sum(e.flops or 0 for e in events) / 1e9


@dataclass(frozen=True)
class WorkComparison:
    """What two calls A and B compute, side by side (``compare_work``).

    ``gflop_a``, ``gflop_b``: each one's GFLOP; ``ops_a``, ``ops_b``: each one's compute ops
    (name → count); ``same_ops``: whether those agree; ``ops_difference``: A's count minus B's,
    for the ops whose counts differ.
    """

    gflop_a: float
    gflop_b: float
    same_ops: bool
    ops_a: dict[str, int]
    ops_b: dict[str, int]
    ops_difference: dict[str, int]

    def text(self) -> str:
        """E.g. ``11 vs 11 GFLOP; add −24, addmm +24, mm −24``: A's work against B's."""
        ops = ", ".join(f"{name.removeprefix('aten::')} {count:+d}".replace("-", "−")
                        for name, count in self.ops_difference.items())
        return f"{self.gflop_a:.3g} vs {self.gflop_b:.3g} GFLOP; {ops or 'the same ops'}"


def compare_work(call_a: Callable[[], object], call_b: Callable[[], object]) -> WorkComparison:
    """``count_work`` of two calls, side by side."""
    (ops_a, gflop_a), (ops_b, gflop_b) = count_work(call_a), count_work(call_b)
    return WorkComparison(
        gflop_a, gflop_b, same_ops=ops_a == ops_b,
        ops_a=dict(sorted(ops_a.items())), ops_b=dict(sorted(ops_b.items())),
        ops_difference={name: ops_a[name] - ops_b[name] for name in sorted(ops_a | ops_b)
                        if ops_a[name] != ops_b[name]})


# --- tables ---------------------------------------------------------------------------------
