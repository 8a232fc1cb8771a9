"""lorakit: LoRA (low-rank adaptation) from scratch, the package behind the notebook series.

The modules in four tiers; a module imports only from its own tier and those above it
(``tests/test_layering.py``; the README's module map says what each holds):

    base                checks (the one bad-input rule), ranges (every setting's range),
                        profiles (run sizes and rates), precision (fp16/bf16/fp32 and the device
                        per machine), run_files (a run directory's files), methods (the one table
                        of training methods), tasks (IMDB and Emotion: labels, Hub names)
    lesson              lora (LoRALinear, inject_lora, merge_lora; imports only torch), variants
                        (DoRA, PiSSA, LoRA+ from scratch), maths (notebook 01's algebra),
                        peft_format (PEFT's names and adapter files)
    run pipeline        local_files, data (load_task), minilm (the offline profile's model),
                        models (base model and methods), measure, metrics (scores, the comparison
                        rule, choose), inference, estimate (FLOPs and time), plan (a notebook's
                        work, counted first), train (run), report, cli
    notebook support    analysis and probe (notebook 06), merging (notebook 03's 16-bit merge),
                        plots (every figure), bench (timing and memory), colab (the setup cell,
                        runs on Drive)
"""

import warnings

from lorakit.lora import (
    LoRALinear,
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    lora_state_dict,
    merge_lora,
)

__version__ = "0.1.0"

# PEFT (0.21.2 and earlier) reads `model.is_gradient_checkpointing`, which transformers 5.2x
# deprecates with a FutureWarning on every get_peft_model: noise a reader can do nothing about.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                        category=FutureWarning)

__all__ = [
    "LoRALinear",
    "count_parameters",
    "inject_lora",
    "load_lora_state_dict",
    "lora_state_dict",
    "merge_lora",
]
