"""What merging an adapter into a 16-bit base loses (notebook 03's pitfall).

A merge stores W + ΔW in W's format. In fp16 or bf16 that sum is rounded, and the smaller ΔW is
beside W, the larger the share of it the rounding erases. Every sum is computed in fp32 from the
16-bit W, so that only the merge's rounding differs from the exact update.
"""

import torch


def merged_weight(weight: torch.Tensor, update: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """W + ΔW as a merge into a ``dtype`` base stores it, returned in fp32; shapes (out, in)."""
    return (weight.to(dtype).float() + update).to(dtype).float()


def share_lost(weight: torch.Tensor, update: torch.Tensor, dtype: torch.dtype) -> float:
    """‖what a ``dtype`` merge adds to W − ΔW‖ / ‖ΔW‖: the share of the update not stored.

    weight: W, (out, in); update: ΔW = (α/r)·B·A, (out, in); both in fp32.
    """
    added = merged_weight(weight, update, dtype) - weight.to(dtype).float()
    return ((added - update).norm() / update.norm()).item()
