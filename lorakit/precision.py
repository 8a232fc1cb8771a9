"""Where a model computes and in which precision: one rule for each, read by every module.

``compute_device()`` is the device every heavy job runs on, training and prediction alike: CUDA
when there is a GPU, else the CPU. ``current_precision()`` is the 16-bit format, if any, that
device trains and predicts in; the benchmarks time their steps in ``current_precision(device)``,
so that a benchmark measures the precision a run trains in::

    device, precision = compute_device(), current_precision()   # e.g. cuda, "fp16" on a T4
    with autocast(device.type, precision):
        loss = model.to(device)(**batch).loss

Mixed precision runs the matrix products in 16 bits; the weights that train stay fp32.
"""

from __future__ import annotations

import os

import torch

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def compute_device() -> torch.device:
    """The device heavy work runs on: the first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_description() -> str:
    """The device heavy work runs on, in words, e.g. 'cuda: Tesla T4 (capability 7.5)'."""
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return f"cuda: {torch.cuda.get_device_name()} (capability {major}.{minor})"
    return f"cpu: {os.cpu_count()} cores, no CUDA device"


def choose_precision(device_type: str, capability: tuple[int, int] | None = None,
                     bf16_matrix_units: bool = False) -> str:
    """``"fp16"``, ``"bf16"`` or ``"fp32"`` for a device: 16 bits where the hardware has fast
    16-bit matrix products, in the 16-bit format it computes natively.

    CUDA: fp16 mixed precision before compute capability 8 (a T4 is 7.5: it has no fast bf16,
    even though ``torch.cuda.is_bf16_supported()`` may say True there), bf16 from capability 8
    (A100, L4, H100). CPU: bf16 when it has bf16 matrix units (``bf16_matrix_units``: Intel's
    AMX, from Sapphire Rapids on), else fp32. Trainable weights stay fp32 in every case: mixed
    precision only runs the matrix products in 16 bits.
    """
    if device_type != "cuda":
        return "bf16" if bf16_matrix_units else "fp32"
    if capability is None:
        raise ValueError("a CUDA device needs its compute capability, e.g. (7, 5) for a T4")
    return "bf16" if capability[0] >= 8 else "fp16"


def current_precision(device_type: str | None = None) -> str:
    """The precision ``choose_precision`` picks for this machine's ``"cuda"`` or ``"cpu"``.

    ``None`` means the device heavy work runs on, ``compute_device()``.
    """
    if device_type is None:
        device_type = compute_device().type
    if device_type == "cuda":
        return choose_precision("cuda", torch.cuda.get_device_capability())
    if device_type != "cpu":
        raise ValueError(f"device_type={device_type!r}; choose 'cuda' or 'cpu'")
    return choose_precision("cpu", bf16_matrix_units=cpu_has_bf16_matrix_units())


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX-BF16), as torch reports it."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.8
    return bool(capabilities and capabilities().get("amx_bf16"))


def autocast(device_type: str, precision: str):
    """The autocast context of a precision: ``"fp16"`` or ``"bf16"`` mixed precision (the
    forward pass's matrix products in 16 bits, the weights fp32), or ``"fp32"`` (autocast off).
    The Trainer of ``lorakit.train.run`` applies the same autocast through its fp16/bf16 flags;
    time a step under it to time what a run does."""
    if precision not in DTYPES:
        raise ValueError(f"precision={precision!r}; choose one of {', '.join(DTYPES)}")
    return torch.autocast(device_type, dtype=DTYPES[precision], enabled=precision != "fp32")
