"""What a merge into a 16-bit base loses: notebook 03's measurement, held to PEFT's own merge."""

import torch
from helpers import HEAD, TARGETS, randomize_lora_B
from peft import PeftModel

from lorakit.lora import inject_lora, lora_layers
from lorakit.merging import merge_rounding, merged_weight, share_lost, update_size
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


def test_merge_rounding_counts_changed_predictions_and_restores_the_model(base_model, clone,
                                                                          batch):
    model = adapted(base_model, clone)
    with torch.no_grad():
        before = model(**batch).logits

    def logits_of(m):
        with torch.no_grad():
            return m(**batch).logits.numpy()

    table = merge_rounding(model, logits_of, {"ΔW": 1.0, "ΔW / 100": 0.01},
                           dtypes=(torch.float32, torch.bfloat16))
    assert list(table.index) == ["float32", "bfloat16"]
    lost = table["share of the update lost"]
    assert (lost.loc["float32"] < 1e-3).all() and (lost.loc["bfloat16"] > 1e-3).all()
    assert (table.loc["float32", "predictions changed"] == 0).all()
    assert table["predictions changed"].dtypes.map(lambda d: d.kind == "i").all()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, before, rtol=0, atol=0)
    assert update_size(model) > 0
