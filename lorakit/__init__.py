"""lorakit: LoRA (low-rank adaptation) from scratch, the package behind the notebook series.

The modules, by what a reader comes for:

    what is taught      lora (LoRALinear, inject_lora, merge_lora, counts, state dicts; imports
                        only torch), maths (the low-rank algebra of notebook 01),
                        variants (DoRA, PiSSA, LoRA+ from scratch), peft_format (PEFT's names
                        for lorakit's settings and parameters, and adapter files in PEFT's format)
    the run pipeline    profiles (run sizes), data (the tasks and load_task), local_files
                        (reading and checking data files), models (base model and methods),
                        settings (every setting's range), checks (the one bad-input rule),
                        precision (fp16/bf16/fp32 per device), train (run: one Trainer run in
                        steps), run_files (a run directory's files), estimate (how long runs
                        take here), metrics, report (runs into one table), cli
    notebook support    analysis and probe (notebook 06's tables), plots (every figure),
                        bench (timing and memory), minilm (the offline profile's model)
"""

from lorakit.lora import (
    LoRALinear,
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    lora_state_dict,
    merge_lora,
)

__version__ = "0.1.0"

__all__ = [
    "LoRALinear",
    "count_parameters",
    "inject_lora",
    "load_lora_state_dict",
    "lora_state_dict",
    "merge_lora",
]
