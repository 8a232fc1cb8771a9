"""What a merge into a 16-bit base loses: notebook 03's measurement, held to PEFT's own merge."""

import torch
from helpers import HEAD, TARGETS, randomize_lora_B
from peft import PeftModel

from lorakit.lora import inject_lora, lora_layers
from lorakit.merging import merged_weight, share_lost
from lorakit.peft_format import save_peft_adapter


def adapted(base_model, clone):
    model = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD).eval()
    randomize_lora_B(model)
    return model


def test_the_merge_written_out_stores_what_peft_merge_stores(base_model, clone, tmp_path):
    model = adapted(base_model, clone)
    save_peft_adapter(model, tmp_path, base_model_name_or_path="tiny")
    for dtype in (torch.float16, torch.bfloat16):
        by_peft = PeftModel.from_pretrained(clone(base_model).to(dtype), tmp_path)
        by_peft = by_peft.merge_and_unload()
        for name, layer in lora_layers(model).items():
            expected = merged_weight(layer.base.weight, layer.delta_weight().detach(), dtype)
            torch.testing.assert_close(by_peft.get_submodule(name).weight, expected.to(dtype))


def test_fp32_keeps_the_update_and_16_bits_lose_more_of_a_smaller_one():
    torch.manual_seed(0)
    weight, update = torch.randn(64, 64), 1e-3 * torch.randn(64, 64)
    assert share_lost(weight, update, torch.float32) < 1e-3
    assert share_lost(weight, update, torch.bfloat16) > share_lost(weight, update, torch.float16)
    assert share_lost(weight, update / 100, torch.float16) > share_lost(weight, update,
                                                                        torch.float16)

