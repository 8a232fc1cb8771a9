"""inject_lora / merge_lora / count_parameters / lora_state_dict on DistilBERT-shaped models."""

import pytest
import torch
from helpers import HEAD, TARGETS, randomize_lora_B, tiny_distilbert
from peft import LoraConfig, get_peft_model

from lorakit.lora import (
    LoRALinear,
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    lora_layers,
    lora_state_dict,
    merge_lora,
)


def test_distilbert_base_count_is_516096(distilbert_base_sized, clone):
    model = inject_lora(clone(distilbert_base_sized), TARGETS, r=8, alpha=16, train_modules=HEAD)
    counts = count_parameters(model)
    assert counts.lora == 516_096  # 6 layers × 8 × (768+768 + 768+768 + 768+3072 + 3072+768)
    head = sum(p.numel() for n, p in model.named_parameters() if "classifier" in n)
    assert counts.trainable == 516_096 + head
    assert counts.total == sum(p.numel() for p in model.parameters())
    assert sum(row["count"] for row in counts.rows) == counts.total
    q_rows = [row for row in counts.rows if row["parameter"].endswith("q_lin.lora_A")]
    assert [(row["shape"], row["layers"], row["count"]) for row in q_rows] == [
        ("8×768", 6, 6 * 8 * 768)]


def test_trainable_count_equals_peft(distilbert_base_sized, clone):
    ours = count_parameters(inject_lora(clone(distilbert_base_sized), TARGETS, r=8, alpha=16,
                                        train_modules=HEAD))
    peft_model = get_peft_model(
        clone(distilbert_base_sized),
        LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=list(TARGETS)),
    )
    peft_trainable, _ = peft_model.get_nb_trainable_parameters()
    assert ours.trainable == peft_trainable


def test_injection_wraps_every_target_and_freezes_the_rest(base_model):
    model = inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=HEAD)
    wrapped = sorted({name.rsplit(".", 1)[-1] for name in lora_layers(model)})
    assert wrapped == sorted(TARGETS)
    assert len(lora_layers(model)) == 2 * len(TARGETS)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name in trainable:
        is_head = name.startswith(("pre_classifier", "classifier"))
        assert name.endswith(("lora_A", "lora_B")) or is_head, name
    assert {"pre_classifier.weight", "classifier.bias"} <= trainable
    assert model.lora_config.r == 4 and model.lora_config.targets == TARGETS


def test_b_zero_at_init_means_same_logits(base_model, batch, clone):
    reference = base_model(**batch).logits
    injected = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    assert torch.equal(injected(**batch).logits, reference)


def test_training_changes_only_lora_and_head(base_model, batch, clone):
    before = {n: p.detach().clone() for n, p in base_model.named_parameters()}
    model = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    labels = torch.tensor([0, 1, 2, 1])
    for _ in range(3):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = dict(model.named_parameters())
    for name, original in before.items():
        lora_name = name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        current = after.get(name, after.get(lora_name))
        if name.startswith(("pre_classifier", "classifier")):
            assert not torch.equal(current, original), f"head parameter {name} did not train"
        else:
            assert torch.equal(current, original), f"frozen parameter {name} changed"
    for name, layer in lora_layers(model).items():
        assert torch.count_nonzero(layer.lora_B) > 0, f"{name}.lora_B did not train"


def test_merge_lora_gives_plain_linears_with_the_same_outputs(base_model, batch):
    model = inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=HEAD)
    randomize_lora_B(model)
    unmerged = model(**batch).logits
    merge_lora(model)
    assert not lora_layers(model)
    assert type(model.distilbert.transformer.layer[0].attention.q_lin) is torch.nn.Linear
    torch.testing.assert_close(model(**batch).logits, unmerged, rtol=1e-5, atol=1e-5)


def test_layer_merge_unmerge_across_the_model(base_model, batch):
    model = inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=HEAD)
    randomize_lora_B(model)
    weights = {name: layer.base.weight.clone() for name, layer in lora_layers(model).items()}
    unmerged = model(**batch).logits
    for layer in lora_layers(model).values():
        layer.merge()
    torch.testing.assert_close(model(**batch).logits, unmerged, rtol=1e-5, atol=1e-5)
    for name, layer in lora_layers(model).items():
        layer.unmerge()
        torch.testing.assert_close(layer.base.weight, weights[name], rtol=0, atol=1e-6)


def test_state_dict_holds_only_lora_and_head_and_round_trips(base_model, batch, clone):
    model = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    randomize_lora_B(model)
    state = lora_state_dict(model)
    assert all(k.endswith(("lora_A", "lora_B")) or "classifier" in k for k in state)
    assert len([k for k in state if "lora_" in k]) == 2 * 2 * len(TARGETS)
    fresh = inject_lora(clone(base_model), TARGETS, r=4, alpha=8, train_modules=HEAD)
    load_lora_state_dict(fresh, state)
    assert torch.equal(fresh(**batch).logits, model(**batch).logits)


def test_state_dict_with_another_rank_is_refused(base_model, clone):
    state = lora_state_dict(inject_lora(clone(base_model), TARGETS, r=4, alpha=8,
                                        train_modules=HEAD))
    other = inject_lora(clone(base_model), TARGETS, r=2, alpha=8, train_modules=HEAD)
    with pytest.raises(ValueError, match=r"shape \(4, 32\) but the model's is \(2, 32\)"):
        load_lora_state_dict(other, state)


def test_unknown_target_lists_linear_layers(base_model):
    with pytest.raises(ValueError, match="target 'q_proj' matches no nn.Linear") as error:
        inject_lora(base_model, ["q_proj"], r=4, alpha=8, train_modules=HEAD)
    for name in ("classifier", "k_lin", "lin1", "out_lin", "pre_classifier", "q_lin", "v_lin"):
        assert name in str(error.value)


def test_non_linear_target_is_a_type_error(base_model):
    with pytest.raises(TypeError, match="sa_layer_norm', a LayerNorm, not an nn.Linear"):
        inject_lora(base_model, ["sa_layer_norm"], r=4, alpha=8, train_modules=HEAD)


def test_injecting_twice_is_refused(base_model):
    inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=HEAD)
    with pytest.raises(ValueError, match="already has LoRA layers"):
        inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=HEAD)


def test_bad_rank_through_inject(base_model):
    with pytest.raises(ValueError, match="r=0"):
        inject_lora(base_model, TARGETS, r=0, alpha=8, train_modules=HEAD)
    assert not lora_layers(base_model), "a refused injection must leave the model untouched"


def test_unknown_train_module_is_named(base_model):
    with pytest.raises(ValueError, match=r"train_modules \['score'\]"):
        inject_lora(base_model, TARGETS, r=4, alpha=8, train_modules=("score",))


def test_merge_lora_without_lora_is_refused():
    with pytest.raises(ValueError, match="no LoRA layers to merge"):
        merge_lora(tiny_distilbert())


def test_lora_layer_type_is_exported():
    import lorakit

    assert lorakit.LoRALinear is LoRALinear
