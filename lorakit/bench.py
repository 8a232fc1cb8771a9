"""Measuring speed and memory fairly: interleaved timings, peak memory, optimizer state size.

Nothing here prints; every function returns numbers or a DataFrame for the caller to show::

    timings = time_interleaved({"lorakit": step_ours, "peft": step_theirs}, repeats=5)
    ratio_table(timings, baseline="lorakit")          # median_s and median / baseline median
    megabytes, kind = peak_memory(step_ours)          # kind says what was measured

Timings are wall-clock seconds on the machine that runs them: compare them with each other, never
with numbers taken elsewhere. Contenders run interleaved (A B A B ...) so that a slow spell of a
shared machine hits all of them alike, and the median of the repeats is reported with its spread.
When CUDA is initialised, the device is synchronised before the clock starts and before it
stops, since CUDA kernels run asynchronously.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

MB = 2**20  # bytes in a megabyte, as in torch.cuda's memory summaries and lorakit.train


def _synchronize() -> None:
    """Wait for queued CUDA kernels, when CUDA is in use; a no-op on CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleaved_samples(
    contenders: Mapping[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> pd.DataFrame:
    """Call every contender ``warmup`` times untimed, then ``repeats`` times timed, interleaved.

    Each round calls the contenders once each in the mapping's order (A B C, A B C, ...).
    Returns one row per timed call, in call order: ``round`` (0-based), ``contender`` and
    ``seconds`` (``clock()`` after the call minus before it). ``clock`` is replaceable for tests.
    """
    if not contenders:
        raise ValueError("contenders is empty; pass e.g. {'lorakit': step_a, 'peft': step_b}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an int >= 1; 5 or more gives a fair median")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r} must be an int >= 0")
    for name, fn in contenders.items():
        if not callable(fn):
            raise TypeError(f"contender {name!r} is a {type(fn).__name__}, not a callable")
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    rows = []
    for round_ in range(repeats):
        for name, fn in contenders.items():
            _synchronize()
            start = clock()
            fn()
            _synchronize()
            rows.append({"round": round_, "contender": name, "seconds": clock() - start})
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


def time_interleaved(
    contenders: Mapping[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> pd.DataFrame:
    """Time contenders interleaved; one row per contender with the median and spread in seconds.

    Columns: ``median_s``, ``q1_s`` and ``q3_s`` (quartiles), ``min_s``, ``max_s``, ``repeats``.
    ``interleaved_samples`` gives the individual calls, for a plot of every repeat.
    """
    return summarize_timings(interleaved_samples(contenders, repeats, warmup, clock))


def ratio_table(
    timings: pd.DataFrame, baseline: str | None = None, column: str = "median_s"
) -> pd.DataFrame:
    """Ratios of medians between contenders.

    With ``baseline``: one row per contender with its ``column`` and ``× <baseline>``, that value
    divided by the baseline's (1.0 for the baseline itself, 2.0 for twice as slow). Without:
    the square table of every pair, row's value divided by column's.
    """
    values = timings[column]
    if baseline is None:
        return pd.DataFrame(
            values.to_numpy()[:, None] / values.to_numpy()[None, :],
            index=values.index, columns=values.index,
        )
    if baseline not in values.index:
        raise ValueError(
            f"baseline {baseline!r} is not a contender; contenders are: {', '.join(values.index)}"
        )
    return pd.DataFrame({column: values, f"× {baseline}": values / values[baseline]})


def autocast(device_type: str, precision: str):
    """The autocast context of a precision: ``"fp16"`` or ``"bf16"`` mixed precision (the
    forward pass's matrix products in 16 bits, the weights fp32), or ``"fp32"`` (autocast off).
    ``lorakit.train.run`` trains under it; time a step under it to time what a run does."""
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
    if precision not in dtypes:
        raise ValueError(f"precision={precision!r}; choose one of {', '.join(dtypes)}")
    return torch.autocast(device_type, dtype=dtypes[precision], enabled=precision != "fp32")


def training_step(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
    precision: str = "fp32",
) -> Callable[[], torch.Tensor]:
    """A closure doing one optimisation step on ``batch``: forward (under ``autocast`` of
    ``precision``), backward, step, zero_grad.

    ``batch`` holds the model's keyword inputs with ``labels``, so that the output has a
    ``.loss`` (Hugging Face models). The closure returns the loss, detached. It leaves the
    model's train/eval mode as it is: call ``model.train()`` or ``model.eval()`` first.
    """
    device_type = next(model.parameters()).device.type
    autocast(device_type, precision)  # a bad precision fails here, not at the first step

    def step() -> torch.Tensor:
        with autocast(device_type, precision):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


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
      allocator's cached pages, which is why the process RSS (``lorakit.train.peak_memory_mb``)
      reads higher and does not fall back between steps.
    """
    kind = memory_kind(device)
    if kind == "cuda-allocated":
        _synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        _synchronize()
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
