"""Fixtures for the tests; the helpers they share are in tests/helpers.py.

Unit tests run torch on one thread: on two shared cores, tiny models spend more time
synchronising threads than computing (on our 2-core machine a tiny-model notebook took 35 s
with one thread and 80 s with two).
A test of the offline profile's larger model asks for every core with the ``all_threads`` fixture.
"""

import copy
import os

import pytest
import torch
from helpers import tiny_distilbert, token_batch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

torch.set_num_threads(1)


@pytest.fixture
def base_model():
    return tiny_distilbert()


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
