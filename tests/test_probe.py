"""Tests for lorakit.probe: features from the frozen encoder, and the logistic-regression probe."""

import numpy as np
import pytest
import torch

from lorakit.models import load_base
from lorakit.probe import encoder_features, fit_probe


def test_features_are_the_first_token_and_the_mean_over_real_tokens():
    model, tokenizer = load_base("emotion", "tiny")
    texts = ["a short one", "a much longer text that makes the first one padded in its batch"]

    together = encoder_features(model, tokenizer, texts, max_length=32)
    alone = encoder_features(model, tokenizer, texts[:1], max_length=32)

    batch = tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        hidden = model.base_model(**batch).last_hidden_state[0]  # (tokens, hidden)
    np.testing.assert_allclose(together["cls"][0], hidden[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(together["mean"][0], hidden.mean(dim=0).numpy(), atol=1e-5)
    np.testing.assert_allclose(together["mean"][0], alone["mean"][0], atol=1e-5)  # padding ignored
    assert together["cls"].shape == (2, model.config.dim)


def test_features_name_an_unknown_pooling_and_an_empty_list_of_texts():
    model, tokenizer = load_base("emotion", "tiny")
    with pytest.raises(ValueError, match="poolings=\\['max'\\]"):
        encoder_features(model, tokenizer, ["a"], 8, poolings=["max"])
    with pytest.raises(ValueError, match="texts is empty"):
        encoder_features(model, tokenizer, [], 8)


def test_the_probe_separates_classes_that_the_features_separate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 8)) + 3 * np.eye(3, 8)[labels]  # each class its own direction
    probe = fit_probe(features[:200], labels[:200])
    assert probe.score(features[200:], labels[200:]) > 0.9
    noise = rng.normal(size=(300, 8))  # features that know nothing
    assert fit_probe(noise[:200], labels[:200]).score(noise[200:], labels[200:]) < 0.6
    with pytest.raises(ValueError, match="2 labels"):
        fit_probe(features[:3], labels[:2])
