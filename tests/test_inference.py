"""Running a model over many texts (lorakit.inference): where it computes, in which precision,
in which order, and what it shows while it works."""

import numpy as np
import pytest
import torch

from lorakit import inference
from lorakit.inference import padded_batches, predict_logits
from lorakit.models import load_base

TEXTS = [f"i feel {'very ' * (i % 7)}happy today number {i}" for i in range(30)]


@pytest.fixture(scope="module")
def tiny():
    return load_base("emotion", "tiny")


def test_logits_come_back_in_the_order_of_the_texts(tiny):
    model, tokenizer = tiny
    together = predict_logits(model, tokenizer, TEXTS, max_length=32, batch_size=8)
    one_by_one = np.concatenate([predict_logits(model, tokenizer, [text], max_length=32)
                                 for text in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_batches_are_sorted_by_length_so_they_pad_little(tiny):
    _, tokenizer = tiny
    order, batches = padded_batches(TEXTS, tokenizer, max_length=32, batch_size=8)
    widths = [batch["input_ids"].shape[1] for batch in batches]
    assert widths == sorted(widths) and sorted(order) == list(range(len(TEXTS)))


def test_the_model_moves_to_the_compute_device_itself(tiny, monkeypatch):
    model, tokenizer = tiny
    moved_to = []
    real_to = model.to
    monkeypatch.setattr(model, "to", lambda device: moved_to.append(device) or real_to(device))
    monkeypatch.setattr(inference, "compute_device", lambda: torch.device("cpu"))
    predict_logits(model, tokenizer, TEXTS[:3], max_length=32)
    assert moved_to == [torch.device("cpu")]


def head_dtypes_under_bf16(model, tokenizer, monkeypatch, **kwargs):
    """The classifier's output dtypes, and the logits, when runs train in bf16."""
    dtypes = []
    hook = model.classifier.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    monkeypatch.setattr(inference, "current_precision", lambda: "bf16")
    try:
        logits = predict_logits(model, tokenizer, TEXTS[:3], max_length=32, **kwargs)
    finally:
        hook.remove()
    return dtypes, logits


def test_the_work_runs_in_the_precision_runs_train_in(tiny, monkeypatch):
    dtypes, logits = head_dtypes_under_bf16(*tiny, monkeypatch)
    assert dtypes == [torch.bfloat16] and logits.dtype == np.float32


def test_a_comparison_can_ask_for_every_product_in_fp32(tiny, monkeypatch):
    dtypes, _ = head_dtypes_under_bf16(*tiny, monkeypatch, precision="fp32")
    assert dtypes == [torch.float32]


def test_long_work_shows_a_bar_and_short_work_none(tiny, capsys):
    model, tokenizer = tiny
    predict_logits(model, tokenizer, TEXTS[:3], max_length=32, batch_size=1)
    assert "predicting" not in capsys.readouterr().err
    predict_logits(model, tokenizer, TEXTS[:25], max_length=32, batch_size=1)
    assert "predicting" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_loaded_on_the_cpu_predicts_on_the_gpu(tiny):
    model, tokenizer = load_base("emotion", "tiny")
    seen = []
    model.classifier.register_forward_hook(lambda m, i, out: seen.append(out.device.type))
    predict_logits(model, tokenizer, TEXTS[:3], max_length=32)
    assert seen == ["cuda"]
