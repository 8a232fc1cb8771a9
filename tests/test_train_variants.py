"""The variants as methods of lorakit.train.run: each trains, and its saved adapter gives back
the trained model's outputs when loaded into a fresh base model."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import set_seed

from lorakit.inference import predict_logits
from lorakit.lora import lora_layers
from lorakit.models import load_base
from lorakit.peft_format import load_peft_adapter
from lorakit.train import default_run_name, run
from lorakit.variants import DoRALinear

FAST = {"profile": "tiny", "epochs": 1, "max_train": 64, "max_eval": 32, "max_length": 64}
TEXTS = ["i feel so happy and calm today", "this makes me furious", "what a surprise that was"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {method: run("emotion", method, r=4, alpha=8, output_dir=out, progress=False, **FAST)
            for method in ("dora", "pissa", "loraplus", "vera", "ia3")}


def trained_logits(result):
    return predict_logits(result.model, result.tokenizer, TEXTS, max_length=64)


def fresh_base():
    set_seed(0)
    return load_base("emotion", "tiny")[0]


@pytest.mark.parametrize("method", ["dora", "pissa", "loraplus", "vera", "ia3"])
def test_each_variant_trains_and_writes_a_peft_adapter(runs, method):
    result = runs[method]
    assert result.metrics["train_seconds"] > 0
    assert 0 < result.metrics["trainable_parameters"] < result.metrics["total_parameters"]
    config = json.loads((result.run_dir / "adapter" / "adapter_config.json").read_text())
    expected_type = {"vera": "VERA", "ia3": "IA3"}.get(method, "LORA")
    assert config["peft_type"] == expected_type
    assert (method == "dora") == bool(config.get("use_dora"))


@pytest.mark.parametrize("method", ["dora", "pissa", "loraplus", "vera", "ia3"])
def test_peft_loads_each_adapter_into_the_unchanged_base(runs, method):
    result = runs[method]
    loaded = PeftModel.from_pretrained(fresh_base(), result.run_dir / "adapter")
    logits = predict_logits(loaded, result.tokenizer, TEXTS, max_length=64)
    torch.testing.assert_close(torch.from_numpy(logits), torch.from_numpy(trained_logits(result)),
                               rtol=0, atol=1e-5)


def test_a_pissa_run_saves_a_standard_adapter_of_twice_the_rank(runs):
    result = runs["pissa"]
    config = json.loads((result.run_dir / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (8, 16)  # rank 2r, the same alpha / r
    assert config.get("init_lora_weights") in (True, None), "a plain LoRA adapter, not PiSSA's"


def test_a_dora_run_reloads_into_lorakit_as_dora(runs):
    result = runs["dora"]
    model = load_peft_adapter(fresh_base(), result.run_dir / "adapter")
    assert all(isinstance(layer, DoRALinear) for layer in lora_layers(model).values())
    torch.testing.assert_close(torch.from_numpy(predict_logits(model, result.tokenizer, TEXTS, 64)),
                               torch.from_numpy(trained_logits(result)), rtol=0, atol=1e-5)


def test_run_names_say_what_each_method_sets():
    assert default_run_name("dora", 8, 16, 0) == "dora-r8-a16-seed0"
    assert default_run_name("vera", 256, 16, 1) == "vera-r256-seed1"
    assert default_run_name("ia3", 8, 16, 0) == "ia3-seed0"
