"""DoRA, PiSSA and LoRA+ from scratch give PEFT's numbers on the same weights."""

import json

import pytest
import torch
from helpers import HEAD, TARGETS, randomize_lora_B, token_batch, training_losses
from peft import LoraConfig, PeftModel, get_peft_model
from peft.optimizers import create_loraplus_optimizer
from torch import nn

from lorakit.lora import LoRALinear, inject_lora, lora_layers, merge_lora
from lorakit.peft_format import (
    copy_into_peft,
    load_peft_adapter,
    lorakit_name,
    save_peft_adapter,
)
from lorakit.variants import (
    DoRALinear,
    loraplus_parameter_groups,
    pissa_as_lora,
    pissa_init_,
    pissa_layers_init_,
)


def peft_twin(base, **options):
    config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=list(TARGETS),
                        **options)
    return get_peft_model(base, config)


def dora_model(base, dropout=0.0):
    """A DoRA model whose B and magnitudes are no longer at their starting values."""
    model = inject_lora(base, TARGETS, r=4, alpha=8, dropout=dropout, train_modules=HEAD,
                        layer=DoRALinear)
    randomize_lora_B(model)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            noise = 1 + 0.1 * torch.randn(layer.lora_magnitude_vector.shape, generator=generator)
            layer.lora_magnitude_vector.mul_(noise)
    return model


def test_dora_starts_as_the_base_model(base_model, batch, clone):
    dora = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD,
                       layer=DoRALinear)
    layer = next(iter(lora_layers(dora).values()))
    torch.testing.assert_close(layer.lora_magnitude_vector,
                               torch.linalg.norm(layer.base.weight, dim=1), rtol=0, atol=0)
    with torch.no_grad():
        assert torch.equal(dora(**batch).logits, base_model(**batch).logits)


def assert_dora_gives_peft_logits(base, batch, clone, moved_at_least: float) -> None:
    ours = dora_model(clone(base)).eval()
    theirs = peft_twin(clone(base), use_dora=True).eval()
    copy_into_peft(ours, theirs)
    with torch.no_grad():
        actual, expected = ours(**batch).logits, theirs(**batch).logits
        untouched = base(**batch).logits
    moved = (actual - untouched).abs().max().item()
    assert moved > moved_at_least, "DoRA must change the logits, or the comparison proves nothing"
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_dora_gives_peft_logits_for_the_same_weights(base_model, batch, clone):
    assert_dora_gives_peft_logits(base_model, batch, clone, moved_at_least=1e-4)


def test_dora_trains_like_peft_with_dropout(base_model, batch, clone):
    ours = dora_model(clone(base_model), dropout=0.1).train()
    theirs = peft_twin(clone(base_model), use_dora=True, lora_dropout=0.1).train()
    copy_into_peft(ours, theirs)
    batch = batch | {"labels": torch.tensor([0, 1, 2, 0])}
    losses = {name: training_losses(model, batch, steps=4, lr=1e-2)  # the same dropout masks
              for name, model in (("lorakit", ours), ("peft", theirs))}
    torch.testing.assert_close(losses["lorakit"], losses["peft"], rtol=0, atol=1e-5)
    magnitudes = [layer.lora_magnitude_vector for layer in lora_layers(ours).values()]
    assert all(m.requires_grad for m in magnitudes)


def test_dora_merges_and_unmerges(base_model, batch, clone):
    ours = dora_model(clone(base_model)).eval()
    with torch.no_grad():
        unmerged = ours(**batch).logits
        weights = {n: layer.base.weight.clone() for n, layer in lora_layers(ours).items()}
        for layer in lora_layers(ours).values():
            layer.merge()
        merged = ours(**batch).logits
        for name, layer in lora_layers(ours).items():
            layer.unmerge()
            torch.testing.assert_close(layer.base.weight, weights[name], rtol=1e-5, atol=1e-6)
        plain = merge_lora(ours)(**batch).logits
    assert not any(isinstance(m, LoRALinear) for m in ours.modules())
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain, unmerged, rtol=1e-5, atol=1e-6)


def test_dora_adapter_round_trips_through_peft_files(base_model, batch, clone, tmp_path):
    ours = dora_model(clone(base_model)).eval()
    save_peft_adapter(ours, tmp_path / "dora")
    config = json.loads((tmp_path / "dora" / "adapter_config.json").read_text())
    assert config["use_dora"] is True
    loaded = PeftModel.from_pretrained(clone(base_model), tmp_path / "dora").eval()
    again = load_peft_adapter(clone(base_model), tmp_path / "dora").eval()
    assert all(isinstance(layer, DoRALinear) for layer in lora_layers(again).values())
    with torch.no_grad():
        logits = ours(**batch).logits
        torch.testing.assert_close(loaded(**batch).logits, logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(again(**batch).logits, logits, rtol=0, atol=0)


def test_pissa_starts_where_peft_does(base_model, batch, clone):
    ours = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    pissa_layers_init_(ours)
    theirs = peft_twin(clone(base_model), init_lora_weights="pissa")
    theirs_params = {lorakit_name(n): p for n, p in theirs.named_parameters()}
    for name, layer in lora_layers(ours).items():
        for ours_param, theirs_name in ((layer.lora_A, f"{name}.lora_A"),
                                        (layer.lora_B, f"{name}.lora_B"),
                                        (layer.base.weight, f"{name}.base_layer.weight")):
            torch.testing.assert_close(ours_param, theirs_params[theirs_name], rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(**batch).logits, base_model(**batch).logits,
                                   rtol=0, atol=1e-5)


def test_pissa_takes_the_top_singular_values():
    torch.manual_seed(0)
    base = nn.Linear(12, 20)
    original = base.weight.detach().clone()
    layer = LoRALinear(base, r=3, alpha=6)
    pissa_init_(layer)
    singular = torch.linalg.svdvals(original)
    update = torch.linalg.svdvals(layer.delta_weight())  # rank 3: three nonzero values
    torch.testing.assert_close(update[:3], singular[:3], rtol=1e-5, atol=1e-6)
    assert update[3:].abs().max() < 1e-5
    torch.testing.assert_close(torch.linalg.svdvals(layer.base.weight)[:9], singular[3:12],
                               rtol=1e-5, atol=1e-6)


def test_a_trained_pissa_layer_saves_as_a_standard_rank_2r_update():
    torch.manual_seed(0)
    original = nn.Linear(12, 20)
    layer = LoRALinear(nn.Linear(12, 20), r=3, alpha=6)
    layer.base.load_state_dict(original.state_dict())
    initial = pissa_init_(layer)
    with torch.no_grad():  # "training": A and B move away from their start
        layer.lora_A.add_(0.05 * torch.randn_like(layer.lora_A))
        layer.lora_B.add_(0.05 * torch.randn_like(layer.lora_B))
    A, B = pissa_as_lora(layer, initial)
    assert A.shape == (6, 12) and B.shape == (20, 6)
    standard = LoRALinear(original, r=6, alpha=12)  # rank 2r, the same scale alpha / r
    with torch.no_grad():
        standard.lora_A.copy_(A)
        standard.lora_B.copy_(B)
    x = torch.randn(5, 12)
    torch.testing.assert_close(standard(x), layer(x), rtol=1e-5, atol=1e-5)


def test_loraplus_groups_match_peft(base_model, clone):
    ours = dora_model(clone(base_model))
    theirs = peft_twin(clone(base_model), use_dora=True)
    optimizer = create_loraplus_optimizer(theirs, torch.optim.AdamW, lr=2e-4, loraplus_lr_ratio=16,
                                          loraplus_weight_decay=0.01)
    theirs_names = {id(p): lorakit_name(n) for n, p in theirs.named_parameters()}
    expected = {theirs_names[id(p)]: (group["lr"], group["weight_decay"])
                for group in optimizer.param_groups for p in group["params"]}
    groups = loraplus_parameter_groups(ours, lr=2e-4, ratio=16, weight_decay=0.01)
    ours_names = {id(p): n for n, p in ours.named_parameters()}
    actual = {ours_names[id(p)]: (group["lr"], group["weight_decay"])
              for group in groups for p in group["params"]}
    assert actual == expected
    rates = {name.rsplit(".", 1)[-1]: lr for name, (lr, _) in actual.items()}
    assert rates["lora_B"] == 16 * rates["lora_A"] == pytest.approx(3.2e-3)


def test_loraplus_refuses_a_ratio_below_one(base_model):
    with pytest.raises(ValueError, match=r"ratio=0.5 is out of range"):
        loraplus_parameter_groups(base_model, lr=1e-3, ratio=0.5)


def test_dora_gives_peft_logits_at_real_shapes(distilbert_base_sized, clone):
    batch = token_batch(vocab_size=30_522, size=2, length=24, padded_from=17)
    assert_dora_gives_peft_logits(distilbert_base_sized, batch, clone, moved_at_least=1e-3)


def test_dora_beside_a_16_bit_base_keeps_an_fp32_adapter():
    torch.manual_seed(0)
    base = nn.Linear(12, 20)
    reference = DoRALinear(base, r=3, alpha=6)
    with torch.no_grad():
        reference.lora_B.normal_(0, 0.1)
    half = DoRALinear(nn.Linear(12, 20).to(torch.bfloat16), r=3, alpha=6)
    half.base.load_state_dict({k: v.to(torch.bfloat16) for k, v in base.state_dict().items()})
    half.load_state_dict({k: v for k, v in reference.state_dict().items() if "base" not in k},
                         strict=False)
    assert half.lora_A.dtype == half.lora_magnitude_vector.dtype == torch.float32
    x = torch.randn(4, 12)
    out = half(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference(x), rtol=0, atol=5e-2)  # bf16 rounding
