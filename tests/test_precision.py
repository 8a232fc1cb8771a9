"""Mixed precision: the matrix products run in 16 bits, the weights that train stay fp32.

A T4 trains in fp16 (``Trainer(fp16=True)``: autocast plus a gradient scaler), an A100 in bf16.
Neither is on this machine, so the Trainer path is tested through CPU bf16 autocast, which
accelerate supports, and the T4's fp16 recipe through the same steps by hand on CPU. The last
test runs the real thing where CUDA is present.
"""

import copy

import numpy as np
import pytest
import torch
import transformers

import lorakit.precision
import lorakit.train
from lorakit.inference import predict_logits
from lorakit.lora import LoRALinear, lora_layers, merge_lora
from lorakit.models import load_base, prepare_model
from lorakit.peft_format import load_peft_adapter
from lorakit.precision import autocast, current_precision
from lorakit.train import run

FAST = {"profile": "tiny", "epochs": 1, "max_train": 64, "max_eval": 32, "max_length": 64}
HEAD = ("pre_classifier", "classifier")


def record_output_dtypes(model: torch.nn.Module, dtypes: set) -> None:
    """Add the dtype of every LoRA layer's and head layer's output to ``dtypes`` as it runs."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear) or name.rsplit(".", 1)[-1] in HEAD:
            module.register_forward_hook(lambda _m, _in, out: dtypes.add(out.dtype))


def trainable_dtypes(model: torch.nn.Module) -> dict[str, torch.dtype]:
    return {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", ["lora", "peft", "head"])
def test_trainer_mixed_precision_keeps_trainable_weights_fp32(method, tmp_path, monkeypatch):
    output_dtypes = set()

    def prepare_and_watch(model, *args, **kwargs):
        prepared = prepare_model(model, *args, **kwargs)
        record_output_dtypes(prepared, output_dtypes)
        return prepared

    monkeypatch.setattr(lorakit.train, "current_precision", lambda: "bf16")
    monkeypatch.setattr(lorakit.train, "prepare_model", prepare_and_watch)
    result = run("emotion", method, r=4, alpha=8, output_dir=tmp_path, **FAST)

    assert result.config["precision"] == "bf16"
    assert torch.bfloat16 in output_dtypes, "the layers ran outside autocast: not mixed precision"
    dtypes = trainable_dtypes(result.model)
    assert dtypes and set(dtypes.values()) == {torch.float32}, dtypes
    assert any("classifier" in name for name in dtypes), "the head trains too"


def test_fp16_autocast_step_keeps_lora_and_head_fp32(base_model, batch):
    """What ``Trainer(fp16=True)`` does on a T4, step by step: fp16 autocast and a GradScaler."""
    model = prepare_model(base_model, "lora", r=4, alpha=8).train()
    output_dtypes = set()
    record_output_dtypes(model, output_dtypes)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    scaler = torch.amp.GradScaler("cpu")
    before = [p.detach().clone() for p in trainable]

    with torch.autocast("cpu", dtype=torch.float16):
        loss = model(**batch, labels=torch.tensor([0, 1, 2, 0])).loss
    scaler.scale(loss).backward()
    grad_dtypes = {p.grad.dtype for p in trainable}
    scaler.step(optimizer)
    scaler.update()

    assert output_dtypes == {torch.float16}
    assert grad_dtypes == {torch.float32}
    assert set(trainable_dtypes(model).values()) == {torch.float32}
    changed = [not torch.equal(b, p) for b, p in zip(before, trainable, strict=True)]
    assert any(changed), "the step changed nothing"


def test_the_model_a_mixed_precision_run_returns_computes_in_fp32(tmp_path, monkeypatch):
    """Trainer wraps the model's forward in autocast, in place; run() must undo that, or every
    later use of the returned model (merging, checks, predictions) runs in 16 bits."""
    monkeypatch.setattr(lorakit.train, "current_precision", lambda: "bf16")
    result = run("emotion", "lora", r=4, alpha=8, output_dir=tmp_path, **FAST)
    texts = result.predictions["text"].head(8).tolist()

    output_dtypes = set()
    for module in result.model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda _m, _in, out: output_dtypes.add(out.dtype))
    logits = predict_logits(result.model, result.tokenizer, texts, max_length=64)
    assert output_dtypes == {torch.float32}

    fresh, tokenizer = load_base("emotion", FAST["profile"])
    load_peft_adapter(fresh, result.run_dir / "adapter")
    expected = predict_logits(fresh, tokenizer, texts, max_length=64)
    torch.testing.assert_close(torch.from_numpy(logits), torch.from_numpy(expected),
                               rtol=0, atol=1e-6)


def test_notebook_04s_checks_hold_after_a_mixed_precision_run(tmp_path, monkeypatch):
    """bf16 on CPU stands in for a T4's fp16: after the run, notebook 04 merges a copy of the
    LoRA model, checks it against the LoRA model (1e-4) and serves it through a pipeline whose
    probabilities must equal the softmax of its logits (1e-5)."""
    monkeypatch.setattr(lorakit.train, "current_precision", lambda: "bf16")
    result = run("imdb", "lora", r=4, alpha=8, output_dir=tmp_path, **FAST)
    assert result.config["precision"] == "bf16"
    texts = result.predictions["text"].head(6).tolist()
    lora_model, tokenizer = result.model, result.tokenizer
    merged = merge_lora(copy.deepcopy(lora_model))
    assert not lora_layers(merged) and lora_layers(lora_model)
    merged_logits = predict_logits(merged, tokenizer, texts, 64)
    torch.testing.assert_close(torch.from_numpy(merged_logits),
                               torch.from_numpy(predict_logits(lora_model, tokenizer, texts, 64)),
                               atol=1e-4, rtol=1e-4)
    classifier = transformers.pipeline("text-classification", model=merged, tokenizer=tokenizer,
                                       top_k=None, device=merged.device)
    outputs = classifier(texts, truncation=True, max_length=64)
    names = merged.config.id2label
    probabilities = np.array([[next(o["score"] for o in out if o["label"] == names[i])
                               for i in range(len(names))] for out in outputs])
    expected = torch.softmax(torch.from_numpy(merged_logits).double(), dim=-1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_run_on_cuda_in_its_mixed_precision(tmp_path):
    result = run("emotion", "lora", output_dir=tmp_path, **FAST)
    capability = torch.cuda.get_device_capability()
    assert result.config["precision"] == ("bf16" if capability[0] >= 8 else "fp16")
    assert set(trainable_dtypes(result.model).values()) == {torch.float32}
    assert torch.isfinite(torch.tensor(result.metrics["test_loss"])), result.metrics


def test_the_precision_rule_per_device(monkeypatch):
    monkeypatch.setattr(lorakit.precision, "cpu_has_bf16_matrix_units", lambda: True)
    assert current_precision("cpu") == "bf16"
    monkeypatch.setattr(lorakit.precision, "cpu_has_bf16_matrix_units", lambda: False)
    assert current_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (7, 5))  # a T4
    assert current_precision("cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert current_precision() == "fp16", "no device given: CUDA where it is available"
    with pytest.raises(ValueError, match="device_type='mps'; choose 'cuda' or 'cpu'"):
        current_precision("mps")


def test_autocast_runs_matrix_products_in_the_precision_it_names():
    linear = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        with autocast("cpu", precision):
            assert linear(x).dtype == dtype
    with pytest.raises(ValueError, match="precision='int8'; choose one of fp16, bf16, fp32"):
        autocast("cpu", "int8")
