"""Tiny models built from configs: no download, a few milliseconds each.

Unit tests run torch on one thread: on two shared cores, tiny models spend more time
synchronising threads than computing (on our 2-core machine a tiny-model notebook took 35 s
with one thread and 80 s with two).
A test of the offline profile's larger model asks for every core with the ``all_threads`` fixture.
"""

import copy
import os

import pytest
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

TARGETS = ("q_lin", "v_lin", "lin1", "lin2")
torch.set_num_threads(1)


def tiny_distilbert(num_labels: int = 3, seed: int = 0) -> DistilBertForSequenceClassification:
    """A two-layer DistilBERT (dim 32) with random weights and DistilBERT's module names."""
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=120, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
        max_position_embeddings=64, num_labels=num_labels,
    )
    return DistilBertForSequenceClassification(config).eval()


def randomize_lora_B(model: torch.nn.Module, seed: int = 1) -> None:
    """Give every B a random value, so that LoRA changes the outputs (B = 0 at init)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lora_B"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


@pytest.fixture
def base_model():
    return tiny_distilbert()


def token_batch(vocab_size: int, size: int, length: int, padded_from: int) -> dict:
    """Seeded random ids (size, length); the second example is padding from ``padded_from``."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, padded_from:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.fixture
def batch():
    return token_batch(vocab_size=120, size=4, length=10, padded_from=7)


@pytest.fixture
def clone():
    return copy.deepcopy


@pytest.fixture(scope="session")
def distilbert_base_sized():
    """distilbert-base-uncased's shapes (768 hidden, 3072 FFN, 6 layers) with random weights,
    built from ``DistilBertConfig()``: no download. Clone it before changing it."""
    torch.manual_seed(0)
    return DistilBertForSequenceClassification(DistilBertConfig(num_labels=2)).eval()


@pytest.fixture
def all_threads():
    """One torch thread per core during the test, one thread again after it."""
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(1)
