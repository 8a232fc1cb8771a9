"""Three LoRA variants since LoRA, from scratch: DoRA, PiSSA and LoRA+.

- **DoRA** (Liu et al., 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation"): each output row
  of the adapted weight is a learned length ``m`` times a direction, ``W + s·BA`` normalised;
  LoRA moves the direction, ``m`` the length. ``DoRALinear`` is a ``LoRALinear`` with ``m``.
- **PiSSA** (Meng et al., 2024, "PiSSA: Principal Singular Values and Singular Vectors
  Adaptation"): the same layer, started from the top-r singular triplets of W instead of B = 0,
  with W replaced by the rest of it, so the model starts unchanged but trains its principal part.
- **LoRA+** (Hayou et al., 2024, "LoRA+: Efficient Low Rank Adaptation of Large Models"): the
  same layer, with B learning ``ratio`` times faster than A (``loraplus_parameter_groups``).

Each follows PEFT's implementation (``use_dora=True``, ``init_lora_weights="pissa"``,
``peft.optimizers.create_loraplus_optimizer``), and tests check that they give the same numbers.
Imports only torch, like ``lorakit.lora``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lorakit.checks import require_number
from lorakit.lora import LoRALinear, lora_layers


class DoRALinear(LoRALinear):
    """A ``LoRALinear`` whose output rows have a learned length (DoRA)::

        h = m / ‖W + s·BA‖ ⊙ (W x + s·BA x) + b       m, ‖·‖: (out_features,), row norms

    The norm is treated as a constant in the backward pass (detached), as the DoRA paper
    suggests and PEFT does, so that only ``m`` learns the lengths. ``lora_magnitude_vector``
    starts as ‖W‖ row by row, so that the layer starts equal to ``base``; it is named as in
    PEFT. With dropout, dropped inputs feed both the update and the rescaled ``W x``.
    """

    dora = True

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0,
                 rslora: bool = False):
        super().__init__(base, r, alpha, dropout, rslora)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm().detach())
        self.merged_norm: torch.Tensor | None = None

    def weight_norm(self) -> torch.Tensor:
        """‖W + ΔW‖ for each output row, shape (out_features,), in the adapter's dtype."""
        return torch.linalg.norm(self.base.weight.to(self.lora_A.dtype) + self.delta_weight(),
                                 dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_features) → (..., out_features), the formula in the class docstring.

        Computed in the adapter's dtype (fp32 beside a 16-bit base, as in ``LoRALinear``) and
        cast to the base output's dtype at the end.
        """
        result = self.base(x)  # W x + b: (..., out_features)
        if self.merged:
            return result
        dtype = self.lora_A.dtype
        scale = self.lora_magnitude_vector / self.weight_norm().detach()  # m / ‖W + ΔW‖: (out,)
        dropped = self.dropout(x).to(dtype)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            bias = self.base.bias
            w_x = result if bias is None else result - bias  # W x, from the base output
        else:
            w_x = F.linear(dropped, self.base.weight.to(dtype))  # W dropout(x)
        update = F.linear(F.linear(dropped, self.lora_A), self.lora_B) * self.scaling  # s·BA x
        dora = (scale - 1) * w_x.to(dtype) + scale * update  # (..., out_features)
        return result + dora.to(result.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold DoRA into the base weight: W ← m / ‖W + ΔW‖ ⊙ (W + ΔW), row by row."""
        if self.merged:
            raise ValueError("this DoRALinear is already merged; call unmerge() before merging")
        self.merged_norm = self.weight_norm()
        scale = (self.lora_magnitude_vector / self.merged_norm).unsqueeze(1)  # (out, 1)
        weight = self.base.weight.to(scale.dtype) + self.delta_weight()
        self.base.weight.copy_((scale * weight).to(self.base.weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take DoRA back out of the base weight with the norm kept at merge time."""
        if not self.merged:
            raise ValueError("this DoRALinear is not merged; there is nothing to unmerge")
        scale = (self.lora_magnitude_vector / self.merged_norm).unsqueeze(1)
        weight = self.base.weight.to(scale.dtype) / scale - self.delta_weight()
        self.base.weight.copy_(weight.to(self.base.weight.dtype))
        self.merged, self.merged_norm = False, None


@torch.no_grad()
def pissa_init_(layer: LoRALinear) -> tuple[torch.Tensor, torch.Tensor]:
    """Start ``layer`` from W's top-r singular triplets, in place; returns the starting (A, B).

    With W = U S Vᵀ: A = √(S_r / s) V_rᵀ (r, in_features), B = U_r √(S_r / s) (out_features, r),
    so that s·BA is the best rank-r part of W (Eckart–Young), and W becomes the rest,
    W − s·BA. The layer's output is unchanged; training then moves the principal part.
    The base weight changes: keep the returned factors to save a standard adapter
    (``pissa_as_lora``).
    """
    weight = layer.base.weight
    U, S, Vh = torch.linalg.svd(weight.float(), full_matrices=False)
    root = torch.sqrt(S[: layer.r] / layer.scaling)  # (r,)
    layer.lora_A.copy_(root[:, None] * Vh[: layer.r])  # (r, in_features)
    layer.lora_B.copy_(U[:, : layer.r] * root[None, :])  # (out_features, r)
    weight.copy_((weight.float() - layer.delta_weight()).to(weight.dtype))
    return layer.lora_A.detach().clone(), layer.lora_B.detach().clone()


def pissa_as_lora(layer: LoRALinear, initial: tuple[torch.Tensor, torch.Tensor]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The trained PiSSA layer as a rank-2r update of the *original* W, for a standard adapter.

    W_res + s·BA = W + s·(BA − B₀A₀) = W + s·[B, −B₀][A; A₀]: returns (A (2r, in_features),
    B (out_features, 2r)). Saved with rank 2r and the same scale s (alpha doubled, or times √2
    with rsLoRA), it loads into the unchanged base model, as PEFT's
    ``save_pretrained(path_initial_model_for_weight_conversion=...)`` does.
    """
    initial_A, initial_B = (factor.to(layer.lora_A.device) for factor in initial)
    return (torch.cat([layer.lora_A.detach(), initial_A], dim=0),
            torch.cat([layer.lora_B.detach(), -initial_B], dim=1))


def loraplus_parameter_groups(model: nn.Module, lr: float, ratio: float = 16.0,
                              weight_decay: float = 0.0) -> list[dict]:
    """Optimizer parameter groups for LoRA+: B (and every 1-D tensor) at ``ratio × lr``.

    Follows ``peft.optimizers.create_loraplus_optimizer``: every trainable ``lora_B``, and
    every trainable vector (biases, DoRA's magnitudes), learns at ``ratio × lr``; everything
    else that trains (A, a head's weight matrices) at ``lr``. ``weight_decay`` applies to both,
    except to biases and normalisation weights. Pass the result to ``torch.optim.AdamW``.
    """
    require_number("lr", lr, 0, low_open=True, example=3e-4)
    require_number("ratio", ratio, 1, example=16)
    no_decay = _bias_and_norm_names(model)
    groups = {("A", True): [], ("B", True): [], ("B", False): []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        fast = name.endswith("lora_B") or param.ndim == 1
        key = ("B", name not in no_decay) if fast else ("A", True)
        groups[key].append(param)
    return [
        {"params": groups[("A", True)], "lr": lr, "weight_decay": weight_decay},
        {"params": groups[("B", True)], "lr": lr * ratio, "weight_decay": weight_decay},
        {"params": groups[("B", False)], "lr": lr * ratio, "weight_decay": 0.0},
    ]


def _bias_and_norm_names(model: nn.Module) -> set[str]:
    """Names of biases and of every LayerNorm's parameters: no weight decay for them."""
    names = {name for name, _ in model.named_parameters() if "bias" in name}
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            names |= {f"{module_name}.{p}" for p, _ in module.named_parameters(recurse=False)}
    return names


def pissa_layers_init_(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``pissa_init_`` on every LoRA layer of ``model``; returns the starting (A, B) by name."""
    return {name: pissa_init_(layer) for name, layer in lora_layers(model).items()}
