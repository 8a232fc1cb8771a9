"""lorakit's LoRA in PEFT's terms: argument names, parameter names and adapter files.

lorakit and PEFT describe the same LoRA with different names. The arguments:

    lorakit (inject_lora)   PEFT (LoraConfig)
    targets                 target_modules
    r                       r
    alpha                   lora_alpha
    dropout                 lora_dropout
    rslora                  use_rslora
    train_modules           modules_to_save
    dora                    use_dora         (inject_lora(..., layer=DoRALinear))

and the parameters, for a target ``X`` and a fully trained module ``H`` (every PEFT name
starts with ``base_model.model.``):

    lorakit                    PEFT, in a PeftModel                      PEFT, in a file
    X.lora_A                   X.lora_A.default.weight                   X.lora_A.weight
    X.lora_B                   X.lora_B.default.weight                   X.lora_B.weight
    X.lora_magnitude_vector    X.lora_magnitude_vector.default.weight    (as lorakit)
    H.weight                   H.modules_to_save.default.weight          H.weight

``default`` is PEFT's name for a model's first adapter. Everything here goes through the two
tables above (``PEFT_ARGUMENTS``, ``lorakit_name`` / ``peft_file_key``), so the mapping is
written once.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, replace
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import load_file, save_file
from torch import nn

from lorakit.lora import (
    LoRAConfig,
    LoRALinear,
    inject_lora,
    load_lora_state_dict,
    lora_layers,
    lora_state_dict,
)
from lorakit.variants import DoRALinear, pissa_as_lora

PEFT_ARGUMENTS = {  # lorakit's argument name → LoraConfig's
    "targets": "target_modules",
    "r": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "rslora": "use_rslora",
    "train_modules": "modules_to_save",
    "dora": "use_dora",
}
PEFT_PREFIX = "base_model.model."  # PeftModel → its LoraModel → the model it adapts
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_LORA_MATRIX = re.compile(r"(^|\.)(lora_[AB])(\.default)?\.weight$")
_MAGNITUDE = re.compile(r"(^|\.)lora_magnitude_vector\.default\.weight$")  # DoRA's m


def lorakit_name(peft_name: str) -> str:
    """PEFT's parameter name, in a PeftModel or in an adapter file → lorakit's.

    ``base_model.model.X.lora_A.default.weight`` → ``X.lora_A``;
    ``base_model.model.H.modules_to_save.default.weight`` → ``H.weight``. Names with no PEFT
    prefix (a model given to ``peft.inject_adapter_in_model``) map the same way.
    """
    name = peft_name.removeprefix(PEFT_PREFIX).replace(".modules_to_save.default.", ".")
    name = _MAGNITUDE.sub(r"\1lora_magnitude_vector", name)
    return _LORA_MATRIX.sub(r"\1\2", name)


def peft_file_key(name: str) -> str:
    """lorakit's parameter name → its key in a PEFT adapter file (``lorakit_name``'s inverse)."""
    if name.endswith(("lora_A", "lora_B")):
        return PEFT_PREFIX + name + ".weight"
    return PEFT_PREFIX + name


def to_peft_config(settings: LoRAConfig, **peft_only) -> LoraConfig:
    """The ``peft.LoraConfig`` for lorakit's settings; ``peft_only`` adds PEFT's own fields.

    For example ``to_peft_config(model.lora_config, task_type="SEQ_CLS")``.
    """
    fields = {PEFT_ARGUMENTS[name]: value for name, value in asdict(settings).items()}
    fields["target_modules"] = list(settings.targets)
    fields["modules_to_save"] = list(settings.train_modules) or None
    return LoraConfig(**fields, **peft_only)


def lorakit_arguments(config: dict) -> dict:
    """lorakit's settings from an ``adapter_config.json`` (a dict), by ``PEFT_ARGUMENTS``."""
    defaults = {"lora_dropout": 0.0, "use_rslora": False, "modules_to_save": None,
                "use_dora": False}
    return {name: config.get(peft, defaults.get(peft)) for name, peft in PEFT_ARGUMENTS.items()}


def copy_into_peft(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy every trainable tensor of a lorakit model (A, B, fully trained modules) into PEFT's.

    ``theirs`` is the same base adapted by PEFT with the same targets and rank (a ``PeftModel``
    or a model given to ``peft.inject_adapter_in_model``); afterwards both compute the same
    function and train the same tensors. Raises ValueError naming a tensor that trains in
    lorakit's model but not in PEFT's.
    """
    theirs_by_name = {lorakit_name(name): param for name, param in theirs.named_parameters()
                      if param.requires_grad}
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if not param.requires_grad:
                continue
            if name not in theirs_by_name:
                raise ValueError(
                    f"PEFT's {type(theirs).__name__} trains no tensor for lorakit's {name!r}; "
                    "adapt it with the same targets, and modules_to_save equal to train_modules"
                )
            theirs_by_name[name].copy_(param)


def save_peft_adapter(model: nn.Module, path, base_model_name_or_path: str | None = None) -> Path:
    """Write ``adapter_model.safetensors`` and ``adapter_config.json`` in PEFT's format.

    ``peft.PeftModel.from_pretrained(base_model, path)`` loads the result; so does
    ``load_peft_adapter``. A PiSSA model (``model.pissa_start``, see ``lorakit.models``) has
    changed its base weights, so its adapter is saved as the standard rank-2r update of the
    original ones (``lorakit.variants.pissa_as_lora``). Returns the directory written.
    """
    state, settings = lora_state_dict(model), model.lora_config
    if getattr(model, "pissa_start", None) is not None:
        state, settings = _pissa_as_standard_lora(model, state, settings)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = to_peft_config(settings, task_type="SEQ_CLS",
                         base_model_name_or_path=base_model_name_or_path)
    config.save_pretrained(str(path))
    tensors = {peft_file_key(name): t.contiguous() for name, t in state.items()}
    save_file(tensors, str(path / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    return path


def _pissa_as_standard_lora(model: nn.Module, state: dict, settings: LoRAConfig):
    """The state and settings of a rank-2r LoRA with the same scale, relative to the original W."""
    state = dict(state)
    for name, layer in lora_layers(model).items():
        state[f"{name}.lora_A"], state[f"{name}.lora_B"] = pissa_as_lora(
            layer, model.pissa_start[name])
    same_scale = math.sqrt(2) if settings.rslora else 2  # alpha / sqrt(r) or alpha / r unchanged
    return state, replace(settings, r=2 * settings.r, alpha=settings.alpha * same_scale)


def read_peft_adapter(path) -> tuple[LoRAConfig, dict[str, torch.Tensor]]:
    """Read a PEFT LoRA adapter directory into settings and a lorakit state dict."""
    path = Path(path)
    for needed in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (path / needed).is_file():
            raise FileNotFoundError(
                f"{path / needed} does not exist; an adapter directory holds {ADAPTER_CONFIG} "
                f"and {ADAPTER_WEIGHTS} (written by save_peft_adapter or PeftModel.save_pretrained)"
            )
    config = json.loads((path / ADAPTER_CONFIG).read_text())
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{path} holds a {config.get('peft_type')!r} adapter, not a LoRA one")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError(
            f"{path} uses per-layer ranks or alphas, which lorakit does not implement; load it "
            "with peft.PeftModel.from_pretrained instead"
        )
    if isinstance(config["target_modules"], str):
        raise ValueError(
            f"{path} selects target modules by the pattern {config['target_modules']!r}; "
            "lorakit needs a list of module names: load it with peft.PeftModel.from_pretrained "
            "instead"
        )
    state = {lorakit_name(k): v for k, v in load_file(str(path / ADAPTER_WEIGHTS)).items()}
    fully_trained = {k.rpartition(".")[0].rsplit(".", 1)[-1] for k in state if ".lora_" not in k}
    settings = lorakit_arguments(config)
    settings["targets"] = tuple(sorted(settings["targets"]))
    settings["train_modules"] = tuple(sorted(fully_trained))  # what the file holds
    return LoRAConfig(**settings), state


def load_peft_adapter(model: nn.Module, path) -> nn.Module:
    """Load a PEFT-format LoRA adapter into ``model`` (injecting LoRA first if it has none).

    Works on adapters written by ``save_peft_adapter`` and by ``PeftModel.save_pretrained``.
    Raises ValueError when the adapter's tensors do not fit the model.
    """
    settings, state = read_peft_adapter(path)
    if getattr(model, "lora_config", None) is None:
        fields = asdict(settings)
        layer = DoRALinear if fields.pop("dora") else LoRALinear
        inject_lora(model, **fields, layer=layer)
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ValueError(
            f"adapter {path} has tensors that {type(model).__name__} lacks, e.g. {unknown[:3]}; "
            "load it into the base model it was trained from"
        )
    return load_lora_state_dict(model, state)
