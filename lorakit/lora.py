"""LoRA from scratch: the layer, injecting it into a model, merging, counting, state dicts.

A LoRA layer keeps a pretrained ``nn.Linear`` frozen and learns a low-rank update beside it::

    h = W x + b + (alpha / r) * B A x        A: (r, in_features), B: (out_features, r)

The semantics follow PEFT's ``lora.Linear`` exactly (Kaiming-uniform A, zero B, dropout on the
input of A only, ``scaling = alpha / r`` or ``alpha / sqrt(r)`` with rsLoRA), so a model adapted
here and the same model adapted by PEFT give the same numbers for the same weights. This module
imports torch and ``lorakit.checks`` (standard library only); PEFT's names and adapter files are
``lorakit.peft_format``'s, the variants (DoRA, PiSSA, LoRA+) ``lorakit.variants``'s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lorakit.checks import require_int, require_number


def check_lora_hyperparameters(r: int, alpha: float, dropout: float = 0.0) -> None:
    """Refuse a rank, alpha or dropout LoRA cannot use: TypeError for a wrong type, ValueError
    for a wrong value (``lorakit.checks``), the message naming the value and a fix."""
    require_int("r", r, 1, example=8)
    require_number("alpha", alpha, 0, low_open=True, example="alpha=16 (often 2 * r)")
    require_number("dropout", dropout, 0, 1, high_open=True, example="dropout=0.0 (off)")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) * B @ A``.

    Args:
        base: the pretrained layer, weight (out_features, in_features); it is frozen here.
        r: rank of the update.
        alpha: scale numerator; the update is multiplied by ``alpha / r`` (``alpha / sqrt(r)``
            when ``rslora`` is True).
        dropout: probability of dropping inputs of A during training (the base path sees the
            undropped input).
        rslora: use rank-stabilised scaling ``alpha / sqrt(r)`` (Kalajdzievski, 2023).

    Parameters: ``lora_A`` (r, in_features), Kaiming-uniform with a = sqrt(5);
    ``lora_B`` (out_features, r), zeros, so that the layer starts equal to ``base``.
    Input (..., in_features) → output (..., out_features).

    Precision: A and B may stay fp32 beside a base loaded in fp16 or bf16 (the way a T4 run keeps
    its trainable weights fp32); the update is then computed in the adapter's dtype and cast to
    the base output's dtype before it is added.
    """

    dora = False  # DoRALinear (lorakit.variants) says True

    def __init__(
        self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False
    ):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        check_lora_hyperparameters(r, alpha, dropout)
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.rslora = r, alpha, rslora
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update ΔW = scaling * B @ A, shape (out_features, in_features)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """h = W x + b + scaling · B (A dropout(x)); (..., in_features) → (..., out_features).

        The same sum as ``base(x) + scaling * dropout(x) @ A.T @ B.T``, with the last product
        added into the base output by one ``addmm`` (benchmarks/README.md says why).
        """
        result = self.base(x)  # W x + b: (..., out_features)
        if self.merged:  # W already holds W + ΔW
            return result
        low_rank = F.linear(self.dropout(x).to(self.lora_A.dtype), self.lora_A)  # A x: (..., r)
        low_rank = low_rank * self.scaling  # scaled while it is r wide, the cheapest place
        if low_rank.dtype != result.dtype:  # an fp32 adapter beside a 16-bit base
            return result + F.linear(low_rank, self.lora_B).to(result.dtype)
        out_features = result.shape[-1]
        return torch.addmm(result.reshape(-1, out_features),  # result + (scaled A x) Bᵀ
                           low_rank.reshape(-1, self.r), self.lora_B.t()).view(result.shape)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the base weight: forward then costs one matmul, as without LoRA."""
        if self.merged:
            raise ValueError("this LoRALinear is already merged; call unmerge() before merging")
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of the base weight, restoring W (up to float rounding)."""
        if not self.merged:
            raise ValueError("this LoRALinear is not merged; there is nothing to unmerge")
        self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


@dataclass(frozen=True)
class LoRAConfig:
    """What ``inject_lora`` did to a model; kept on it as ``model.lora_config``."""

    targets: tuple[str, ...]
    r: int
    alpha: float
    dropout: float
    rslora: bool
    train_modules: tuple[str, ...]
    dora: bool = False


def _name_matches(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def linear_layer_names(model: nn.Module) -> list[str]:
    """The distinct last components of the names of every ``nn.Linear`` in ``model``."""
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if type(m) is nn.Linear}
    return sorted(names)


def _find_modules(model: nn.Module, suffix: str) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if n and _name_matches(n, suffix)]


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)


def _as_names(value, what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{what}={value!r} must be module names such as ('q_lin', 'v_lin')")
    return names


def find_target_linears(model: nn.Module, targets) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` whose name ends with one of ``targets``, by full module name.

    Raises ValueError for a target that matches nothing and TypeError for one that matches a
    module other than ``nn.Linear``; both messages list the model's linear layer names.
    """
    found_by_name: dict[str, nn.Linear] = {}
    for target in _as_names(targets, "targets"):
        found = _find_modules(model, target)
        if not found:
            raise ValueError(
                f"target {target!r} matches no nn.Linear in {type(model).__name__}; "
                f"linear layers are: {', '.join(linear_layer_names(model))}"
            )
        for name, module in found:
            if type(module) is not nn.Linear:
                raise TypeError(
                    f"target {target!r} matches {name!r}, a {type(module).__name__}, not an "
                    f"nn.Linear; linear layers are: {', '.join(linear_layer_names(model))}"
                )
            found_by_name[name] = module
    return found_by_name


def inject_lora(
    model: nn.Module,
    targets,
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    rslora: bool = False,
    *,
    train_modules,
    layer: type[LoRALinear] = LoRALinear,
) -> nn.Module:
    """Wrap every ``nn.Linear`` whose name ends with a target in a ``LoRALinear``, in place.

    Everything else is frozen except the modules named in ``train_modules``, which train fully:
    the caller says which, since that depends on the model (a classifier's new head must train:
    DistilBERT's is ``("pre_classifier", "classifier")``, ``lorakit.models.head_modules`` finds it).

    Args:
        model: any ``nn.Module``, e.g. ``DistilBertForSequenceClassification``.
        targets: name suffixes such as ``("q_lin", "v_lin", "lin1", "lin2")``.
        r, alpha, dropout, rslora: as in ``LoRALinear``.
        train_modules: name suffixes of modules to train fully; ``()`` for none.
        layer: the class that wraps each target, ``LoRALinear`` or a subclass such as
            ``lorakit.variants.DoRALinear``.

    Returns the same model, with ``model.lora_config`` recording what was done.
    """
    targets = _as_names(targets, "targets")
    train_modules = _as_names(train_modules, "train_modules")
    check_lora_hyperparameters(r, alpha, dropout)
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError(
            f"{type(model).__name__} already has LoRA layers; inject into a fresh model, or call "
            "merge_lora(model) first to fold the existing ones in"
        )
    to_wrap = find_target_linears(model, targets)
    head = [module for suffix in train_modules for _, module in _find_modules(model, suffix)]
    missing = [s for s in train_modules if not _find_modules(model, s)]
    if missing:
        raise ValueError(
            f"train_modules {missing} match no module in {type(model).__name__}; "
            f"linear layers are: {', '.join(linear_layer_names(model))}"
        )

    model.requires_grad_(False)
    for name, linear in to_wrap.items():
        _replace_module(model, name, layer(linear, r, alpha, dropout, rslora))
    for module in head:
        module.requires_grad_(True)
    model.lora_config = LoRAConfig(targets, r, alpha, dropout, rslora, train_modules,
                                       dora=layer.dora)
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every ``LoRALinear`` in ``model`` by its module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every ``LoRALinear`` by a plain ``nn.Linear`` holding W + ΔW, in place.

    Like PEFT's ``merge_and_unload``: the result has the architecture of the original model and
    no inference overhead. Returns the same model.
    """
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LoRA layers to merge; inject_lora first")
    for name, layer in layers.items():
        if not layer.merged:
            layer.merge()
        _replace_module(model, name, layer.base)
    model.lora_config = None
    return model


@dataclass
class ParameterCount:
    """Trainable and total parameter counts; ``rows`` has one dict per parameter kind.

    ``pandas.DataFrame(count.rows)`` shows the rows as a table.
    """

    trainable: int
    total: int
    lora: int
    rows: list[dict]

    @property
    def percent(self) -> float:
        """Trainable parameters as a percentage of all parameters."""
        return 100.0 * self.trainable / self.total

    def __str__(self) -> str:
        return (
            f"trainable: {self.trainable:,} of {self.total:,} ({self.percent:.3f}%), "
            f"of which LoRA: {self.lora:,}"
        )


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count trainable, total and LoRA parameters, with a row per kind of parameter.

    The rows group repeated layers: ``distilbert.transformer.layer.*.attention.q_lin.lora_A``
    stands for that parameter in every layer. Keys: parameter, shape, layers, count,
    trainable. Parameters shared between modules are counted once.
    """
    rows: dict[tuple[str, tuple[int, ...], bool], int] = {}
    trainable = total = lora = 0
    adapter_names = set(adapter_parameter_names(model))
    for name, param in model.named_parameters():
        n = param.numel()
        total += n
        trainable += n if param.requires_grad else 0
        lora += n if name in adapter_names else 0
        key = (re.sub(r"\.\d+\.", ".*.", name), tuple(param.shape), param.requires_grad)
        rows[key] = rows.get(key, 0) + 1
    kinds = [
        {"parameter": p, "shape": "×".join(map(str, s)) or "scalar", "layers": k,
         "count": k * math.prod(s), "trainable": t}
        for (p, s, t), k in rows.items()
    ]
    return ParameterCount(trainable, total, lora, kinds)


def _lora_and_head_names(model: nn.Module) -> list[str]:
    settings = getattr(model, "lora_config", None)
    if settings is None:
        raise ValueError(
            f"{type(model).__name__} has no LoRA layers (model.lora_config is missing); "
            "call inject_lora(model, targets, r, alpha) first"
        )
    adapter_names = set(adapter_parameter_names(model))
    names = []
    for name, _ in model.named_parameters():
        module_name = name.rpartition(".")[0]
        is_head = any(_name_matches(module_name, s) for s in settings.train_modules)
        if name in adapter_names or is_head:
            names.append(name)
    return names


def adapter_parameter_names(model: nn.Module) -> list[str]:
    """The names of the parameters the LoRA layers add (A, B, and DoRA's magnitudes)."""
    return [f"{name}.{param_name}" for name, layer in lora_layers(model).items()
            for param_name, _ in layer.named_parameters(recurse=False)]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what LoRA fine-tuning changes: every A and B, and the fully trained head modules.

    Keys are the model's own parameter names (e.g. ``...attention.q_lin.lora_A``).
    """
    params = dict(model.named_parameters())
    return {name: params[name].detach().clone() for name in _lora_and_head_names(model)}


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy A, B and head tensors from ``state`` into an injected model; shapes must match."""
    params = dict(model.named_parameters())
    expected = set(_lora_and_head_names(model))
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(
            f"state dict does not fit {type(model).__name__}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; was it saved from a model injected with the "
            f"same targets and train_modules ({model.lora_config})?"
        )
    _check_shapes(state, params)
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    return model


def _check_shapes(state: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> None:
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(params[name].shape):
            raise ValueError(
                f"adapter tensor {name!r} has shape {tuple(tensor.shape)} but the model's is "
                f"{tuple(params[name].shape)}; the adapter was made for a different rank or "
                "model size: inject with the adapter's r and load it into the same base model"
            )
