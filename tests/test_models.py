"""Base models for each profile (the Hub replaced by local directories) and the four methods."""

import warnings

import huggingface_hub
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from lorakit.lora import LoRALinear
from lorakit.models import load_base, model_source, prepare_model
from lorakit.profiles import resolve_profile
from lorakit.tasks import HubUnavailableError

DISTILBERT_LINEARS = {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2", "pre_classifier",
                      "classifier"}


def test_tiny_model_has_distilbert_module_names():
    model, tokenizer = load_base("emotion", "tiny")
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m) is torch.nn.Linear}
    assert DISTILBERT_LINEARS <= names
    assert model.config.num_labels == 6 and model.config.id2label[5] == "surprise"
    encoded = tokenizer(["i feel happy today"], return_tensors="pt")
    assert set(encoded) == {"input_ids", "attention_mask"}
    assert model(**encoded).logits.shape == (1, 6)


def test_tiny_base_is_the_same_every_time():
    set_seed(0)
    first, _ = load_base("imdb", "tiny")
    set_seed(0)
    second, _ = load_base("imdb", "tiny")
    for (name, a), b in zip(first.named_parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b), name


@pytest.fixture(scope="module")
def local_model_dir(tmp_path_factory):
    """A model directory as `save_pretrained` writes it: the Hub's download replaced."""
    path = tmp_path_factory.mktemp("my-distilbert")
    model, tokenizer = load_base("imdb", "tiny")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_quick_profile_loads_a_local_model_directory(local_model_dir):
    reference, _ = load_base("imdb", "tiny")
    model, tokenizer = load_base("emotion", "quick", model=str(local_model_dir))
    assert model.config.num_labels == 6, "a new head sized for the task"
    weight = model.distilbert.transformer.layer[0].attention.q_lin.weight
    assert torch.equal(weight, reference.distilbert.transformer.layer[0].attention.q_lin.weight)
    assert tokenizer("a fine film")["input_ids"][0] == tokenizer.cls_token_id


def test_directory_without_weights_is_named(local_model_dir, tmp_path):
    no_weights, empty = tmp_path / "no-weights", tmp_path / "empty"
    no_weights.mkdir()
    empty.mkdir()
    (no_weights / "config.json").write_text((local_model_dir / "config.json").read_text())
    with pytest.raises(ValueError, match="no-weights has no weights"):
        load_base("imdb", "full", model=str(no_weights))
    with pytest.raises(ValueError, match="empty has no config.json"):
        load_base("imdb", "full", model=str(empty))


def test_unreachable_hub_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(HubUnavailableError, match="LORAKIT_PROFILE=offline"):
        load_base("imdb", "full", model="lorakit-tests/not-in-any-cache")


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_the_four_methods_train_what_they_say():
    lora = prepare_model(load_base("imdb", "tiny")[0], "lora", r=4, alpha=8)
    assert any(isinstance(m, LoRALinear) for m in lora.modules())
    assert all("lora_" in n or "classifier" in n for n in _trainable(lora))
    peft_model = prepare_model(load_base("imdb", "tiny")[0], "peft", r=4, alpha=8)
    assert all("lora_" in n or "classifier" in n for n in _trainable(peft_model))
    assert len(_trainable(peft_model)) == len(_trainable(lora))
    full = prepare_model(load_base("imdb", "tiny")[0], "full")
    assert all(p.requires_grad for p in full.parameters())
    head = prepare_model(load_base("imdb", "tiny")[0], "head")
    assert _trainable(head) == {"pre_classifier.weight", "pre_classifier.bias",
                                "classifier.weight", "classifier.bias"}


def test_bad_method_and_bad_peft_target_are_named():
    model, _ = load_base("imdb", "tiny")
    with pytest.raises(ValueError, match="method 'lora2' is not one of head, lora, peft"):
        prepare_model(model, "lora2")
    with pytest.raises(ValueError, match="target 'query' matches no nn.Linear"):
        prepare_model(model, "peft", targets=["query"])
    with pytest.raises(ValueError, match="r=0"):
        prepare_model(model, "peft", r=0)


def test_preparing_peft_warns_about_nothing_the_reader_can_act_on():
    model, _ = load_base("emotion", "tiny")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_model(model, "peft", r=4, alpha=8)
    assert [str(w.message) for w in caught] == []


def test_model_source_loads_with_plain_transformers():
    source = model_source("offline")
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=6)
    reference, tokenizer = load_base("emotion", "offline")
    encoder = {n: p for n, p in reference.named_parameters() if n.startswith("distilbert.")}
    for name, param in model.named_parameters():
        if name.startswith("distilbert."):
            assert torch.equal(param, encoder[name]), name  # the same pretrained encoder
    assert AutoTokenizer.from_pretrained(source)("i feel calm")["input_ids"] == tokenizer(
        "i feel calm")["input_ids"]
    assert model_source("full") == resolve_profile("full").model
    with pytest.raises(ValueError, match="tiny profile"):
        model_source("tiny")
