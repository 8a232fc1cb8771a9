"""Helpers the tests share: tiny models built from configs (no download, milliseconds each),
LoRA factors made to matter, and token batches with padding. Fixtures live in conftest.py."""

import importlib.util
from pathlib import Path

import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    """scripts/<name>.py imported as a module, for testing what it defines."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

TARGETS = ("q_lin", "v_lin", "lin1", "lin2")
HEAD = ("pre_classifier", "classifier")  # DistilBERT's classification head: trains fully


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


def token_batch(vocab_size: int, size: int, length: int, padded_from: int) -> dict:
    """Seeded random ids (size, length); the second example is padding from ``padded_from``."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, padded_from:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def training_losses(model: torch.nn.Module, batch: dict, steps: int, lr: float,
                    weight_decay: float = 0.01, seed: int = 0) -> list[float]:
    """The losses of ``steps`` AdamW steps on one batch (with labels), torch seeded first so
    that two models draw the same dropout masks."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    torch.manual_seed(seed)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses
