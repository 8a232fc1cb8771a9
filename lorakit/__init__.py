"""lorakit: LoRA (low-rank adaptation) from scratch, the package behind the notebook series."""

from lorakit.lora import (
    LoRALinear,
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    load_peft_adapter,
    lora_state_dict,
    merge_lora,
    save_peft_adapter,
)

__version__ = "0.1.0"

__all__ = [
    "LoRALinear",
    "count_parameters",
    "inject_lora",
    "load_lora_state_dict",
    "load_peft_adapter",
    "lora_state_dict",
    "merge_lora",
    "save_peft_adapter",
]
