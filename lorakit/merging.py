"""What merging an adapter into a 16-bit base loses (notebook 03's pitfall).

A merge stores W + s·B·A in W's format. In fp16 or bf16 that sum is rounded, and the smaller the
update beside W, the larger the share of it the rounding erases. ``merge_rounding`` measures it
on a model with lorakit's LoRA layers: for each 16-bit format and each size of the update, the
share of the update a merge does not store, and the predictions that change against the same
adapter kept unmerged beside the 16-bit base (as PEFT keeps it). Every product is computed in
fp32, so that only the merge's rounding differs.
"""

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from lorakit.lora import lora_layers


def merged_weight(weight: torch.Tensor, update: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """W + ΔW as a merge into a ``dtype`` base stores it, returned in fp32; shapes (out, in)."""
    return (weight.to(dtype).float() + update).to(dtype).float()


def share_lost(weight: torch.Tensor, update: torch.Tensor, dtype: torch.dtype) -> float:
    """‖what a ``dtype`` merge adds to W − ΔW‖ / ‖ΔW‖: the share of the update not stored."""
    added = merged_weight(weight, update, dtype) - weight.to(dtype).float()
    return ((added - update).norm() / update.norm()).item()


def merge_rounding(model: torch.nn.Module, logits_of: Callable[[torch.nn.Module], np.ndarray],
                   scales: dict[str, float],
                   dtypes: Sequence[torch.dtype] = (torch.float16, torch.bfloat16)
                   ) -> pd.DataFrame:
    """For each dtype and each update size, the median share lost and the predictions changed.

    ``model`` holds lorakit LoRA layers in fp32 and is restored before returning;
    ``logits_of(model)`` gives (N, C) logits on the examples to judge; ``scales`` names the
    multiples of the trained update to try ({"ΔW": 1.0, "ΔW / 10": 0.1}). Rows: dtypes;
    columns: (measure, scale name).
    """
    layers = lora_layers(model)
    weights = {name: layer.base.weight.detach().clone() for name, layer in layers.items()}
    updates = {name: layer.delta_weight().detach() for name, layer in layers.items()}
    scaling = {name: layer.scaling for name, layer in layers.items()}

    def logits_with(dtype, scale, merged):
        with torch.no_grad():
            for name, layer in layers.items():
                stored = weights[name].to(dtype).float()
                layer.base.weight.copy_(merged_weight(weights[name], scale * updates[name], dtype)
                                        if merged else stored)
                layer.scaling = 0.0 if merged else scale * scaling[name]
        return logits_of(model)

    rows = {}
    try:
        for dtype in dtypes:
            row = {}
            for label, scale in scales.items():
                kept, merged = (logits_with(dtype, scale, merged) for merged in (False, True))
                row[("share of the update lost", label)] = float(np.median(
                    [share_lost(weights[name], scale * updates[name], dtype) for name in layers]))
                row[("predictions changed", label)] = int((merged.argmax(1)
                                                           != kept.argmax(1)).sum())
            rows[str(dtype).removeprefix("torch.")] = row
    finally:
        with torch.no_grad():
            for name, layer in layers.items():
                layer.base.weight.copy_(weights[name])
                layer.scaling = scaling[name]
    table = pd.DataFrame.from_dict(rows, orient="index")
    measures = ("share of the update lost", "predictions changed")
    return table[[(measure, label) for measure in measures for label in scales]].rename_axis(
        columns=["measure", "update"])


def update_size(model: torch.nn.Module) -> float:
    """The median over ``model``'s LoRA layers of ‖ΔW‖ / ‖W‖: how large the update is beside W."""
    return float(np.median([(layer.delta_weight().norm() / layer.base.weight.norm()).item()
                            for layer in lora_layers(model).values()]))
