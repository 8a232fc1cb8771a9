"""What the run pipeline measures about itself: one training step, and a whole run's peak memory.

Run-pipeline tier: ``lorakit.train.run`` records a run's peak memory (``reset_peak_memory`` then
``peak_memory_mb``), ``lorakit.estimate`` times steps made by ``training_step``; the benchmarks
and notebooks build their fairer comparisons on the same two (``lorakit.bench``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from lorakit.precision import autocast

MB = 2**20  # bytes in a megabyte, as in torch.cuda's memory summaries


def synchronize() -> None:
    """Wait for queued CUDA kernels, when CUDA is in use; a no-op on CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def training_step(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
    precision: str = "fp32",
) -> Callable[[], torch.Tensor]:
    """A closure doing one optimisation step on ``batch``: forward (under ``autocast`` of
    ``precision``, see ``lorakit.precision``), backward, step, zero_grad.

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


# The peak of a whole run. On CUDA PyTorch's allocator peak; on a CPU the process's resident peak.

PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory() -> str:
    """Start a peak-memory measurement; returns its kind, for ``peak_memory_mb``.

    ``cuda``: PyTorch's peak GPU allocation since this reset. ``cpu-rss-run``: the process's
    peak resident memory since this reset (Linux: ``VmHWM``, reset by writing 5 to
    /proc/self/clear_refs). ``cpu-rss``: the process's peak since it started, where no reset
    is possible.
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return "cuda"
    try:
        PROC_CLEAR_REFS.write_text("5")
        _resident_peak_kib()
    except (OSError, ValueError):
        return "cpu-rss"
    return "cpu-rss-run"


def peak_memory_mb(kind: str) -> float:
    """Peak memory in MB of the ``kind`` that ``reset_peak_memory`` returned."""
    if kind == "cuda":
        return torch.cuda.max_memory_allocated() / MB
    if kind == "cpu-rss-run":
        return _resident_peak_kib() / 2**10
    return _process_peak_mb()


def _process_peak_mb() -> float:
    """The process's peak resident memory since it started, in MB: ``getrusage`` on Unix, the
    peak working set on Windows (no ``resource`` module there; psutil, which Jupyter installs),
    NaN where neither is at hand."""
    try:
        import resource
    except ImportError:
        try:
            import psutil
        except ImportError:
            return float("nan")
        return psutil.Process().memory_info().peak_wset / MB
    scale = MB if sys.platform == "darwin" else 2**10  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _resident_peak_kib() -> int:
    """``VmHWM`` of /proc/self/status: the peak resident set since start or the last reset."""
    for line in PROC_STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise ValueError(f"{PROC_STATUS} has no VmHWM line")
