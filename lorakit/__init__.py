"""lorakit: LoRA (low-rank adaptation) from scratch, the package behind the notebook series.

The modules, by what a reader comes for:

    what is taught      lora (LoRALinear, inject_lora, merge_lora, counts, adapter files),
                        maths (the low-rank algebra of notebook 01)
    the run pipeline    profiles (run sizes), data (tasks and files), models (base model and
                        methods), settings (every setting's range), train (run: one Trainer run
                        and its directory), metrics, report (runs into one table), cli
    notebook support    analysis and probe (notebook 06's tables), plots (every figure),
                        bench (timing and memory), minilm (the offline profile's model)
"""

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
