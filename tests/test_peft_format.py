"""The one mapping between lorakit's names and PEFT's, and the torch-only LoRA core."""

import subprocess
import sys

import pytest
from helpers import HEAD, TARGETS
from peft import get_peft_model

from lorakit.lora import LoRAConfig, inject_lora
from lorakit.peft_format import (
    PEFT_ARGUMENTS,
    copy_into_peft,
    lorakit_arguments,
    lorakit_name,
    peft_file_key,
    to_peft_config,
)


def test_every_peft_parameter_name_maps_to_a_lorakit_one(base_model, clone):
    ours = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    settings = LoRAConfig(TARGETS, 4, 8, 0.0, False, train_modules=HEAD)
    theirs = get_peft_model(clone(base_model), to_peft_config(settings, task_type="SEQ_CLS"))
    ours_trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    theirs_trainable = {lorakit_name(n) for n, p in theirs.named_parameters() if p.requires_grad}
    assert theirs_trainable == ours_trainable
    assert len(ours_trainable) == 2 * 2 * len(TARGETS) + 4  # A and B per target and layer, head


@pytest.mark.parametrize("name", ["distilbert.transformer.layer.0.attention.q_lin.lora_A",
                                  "distilbert.transformer.layer.1.ffn.lin2.lora_B",
                                  "pre_classifier.weight", "classifier.bias"])
def test_file_keys_round_trip(name):
    key = peft_file_key(name)
    assert key.startswith("base_model.model.") and lorakit_name(key) == name
    assert ".default" not in key  # adapter files carry no adapter name


def test_in_model_names_map_with_and_without_the_peft_prefix():
    assert lorakit_name("base_model.model.a.q_lin.lora_A.default.weight") == "a.q_lin.lora_A"
    assert lorakit_name("lin.lora_B.default.weight") == "lin.lora_B"  # inject_adapter_in_model
    assert lorakit_name("base_model.model.classifier.modules_to_save.default.bias") == (
        "classifier.bias")
    assert lorakit_name("base_model.model.a.q_lin.base_layer.weight") == "a.q_lin.base_layer.weight"


def test_argument_table_covers_every_setting_both_ways():
    settings = LoRAConfig(("q_lin", "v_lin"), r=4, alpha=12, dropout=0.1, rslora=True,
                            train_modules=("classifier",))
    config = to_peft_config(settings, task_type="SEQ_CLS")
    assert set(PEFT_ARGUMENTS) == set(LoRAConfig.__dataclass_fields__)
    assert sorted(config.target_modules) == ["q_lin", "v_lin"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 12, 0.1)
    assert config.use_rslora
    assert list(config.modules_to_save) == ["classifier"]
    back = lorakit_arguments(config.to_dict())
    assert back["r"] == 4 and back["alpha"] == 12 and back["rslora"] is True


def test_copying_into_a_peft_model_without_the_head_is_refused(base_model, clone):
    ours = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    settings = LoRAConfig(TARGETS, 4, 8, 0.0, False, train_modules=())
    theirs = get_peft_model(clone(base_model), to_peft_config(settings))  # no task type: no head
    with pytest.raises(ValueError, match=r"trains no tensor for lorakit's 'pre_classifier\."):
        copy_into_peft(ours, theirs)


def test_the_lora_core_imports_only_torch():
    code = ("import sys, lorakit.lora\n"
            "print(sorted(m for m in ('peft', 'pandas', 'transformers', 'safetensors') "
            "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_inject_lora_asks_which_modules_train_fully(base_model):
    with pytest.raises(TypeError, match="train_modules"):
        inject_lora(base_model, TARGETS, r=4, alpha=8)
