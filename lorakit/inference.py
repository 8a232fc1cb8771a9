"""Running a model over many texts: on the device and in the precision that training uses.

Run-pipeline tier. Every function that runs a model over a dataset goes through
``forward_over_texts``, which holds the one rule for where that work happens: the model moves to
``lorakit.precision.compute_device()`` (the GPU when there is one), computes under the autocast
of ``current_precision()`` (fp16 on a T4), sorts the texts by length so that each batch pads
little, and shows a progress bar when there are many batches. A notebook never picks a device::

    logits = predict_logits(model, tokenizer, texts, max_length=128)   # (N, num_labels)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lorakit.precision import autocast, compute_device, current_precision

BAR_FROM_BATCHES = 20  # fewer batches than this take a moment: no progress bar


def padded_batches(texts: Sequence[str], tokenizer, max_length: int, batch_size: int
                   ) -> tuple[np.ndarray, Iterator[dict[str, torch.Tensor]]]:
    """``texts`` tokenized once (cut at ``max_length``), sorted from the fewest tokens to the
    most and padded batch by batch, so that each batch pads to little more than its texts.

    Returns ``(order, batches)``: batch after batch holds ``texts[order[i]]`` in turn; ``batches``
    yields the tokenizer's tensors (CPU), lazily."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            yield {key: _padded([values[i] for i in chosen],
                                tokenizer.pad_token_id if key == "input_ids" else 0)
                   for key, values in encoded.items()}

    return order, batches()


def _padded(rows: list[list[int]], pad: int) -> torch.Tensor:
    """Rows of ids as one (len(rows), longest) tensor, right-padded with ``pad``."""
    padded = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
    for i, row in enumerate(rows):
        padded[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return padded


def forward_over_texts(model: torch.nn.Module, tokenizer, texts: Sequence[str], max_length: int,
                       read: Callable[[dict, torch.nn.Module], dict[str, torch.Tensor]],
                       batch_size: int = 64, description: str = "predicting",
                       precision: str | None = None) -> dict[str, np.ndarray]:
    """``read(batch, model)`` over every text, on the compute device, in the run's precision
    (``precision="fp32"`` turns autocast off where a comparison needs every product in fp32).

    ``read`` takes a batch (a dict of id tensors, on the device) and the model, and returns named
    float tensors with one row per text of the batch. Returns each name's rows for all
    ``texts``, in the order of ``texts``, as float32 arrays. The model is left on the compute
    device, in eval mode.
    """
    device, precision = compute_device(), precision or current_precision()
    model.to(device).eval()
    order, batches = padded_batches(texts, tokenizer, max_length, batch_size)
    parts: dict[str, list[np.ndarray]] = {}
    count = -(-len(order) // batch_size)
    with torch.no_grad(), autocast(device.type, precision):
        for batch in tqdm(batches, total=count, desc=description, unit="batch", leave=False,
                          disable=count < BAR_FROM_BATCHES):
            on_device = {key: tensor.to(device) for key, tensor in batch.items()}
            for name, rows in read(on_device, model).items():
                parts.setdefault(name, []).append(rows.float().cpu().numpy())
    unsorted = np.empty_like(order)
    unsorted[order] = np.arange(len(order))
    return {name: np.concatenate(rows)[unsorted] for name, rows in parts.items()}


def predict_logits(model: torch.nn.Module, tokenizer, texts: Sequence[str],
                   max_length: int = 512, batch_size: int = 64,
                   precision: str | None = None) -> np.ndarray:
    """Logits (N, num_labels) of a ``*ForSequenceClassification`` model for raw ``texts``, in
    eval mode, on the compute device and in the run's precision unless ``precision`` names
    another (``forward_over_texts``)."""
    if len(texts) == 0:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    return forward_over_texts(model, tokenizer, list(texts), max_length,
                              lambda batch, m: {"logits": m(**batch).logits},
                              batch_size=batch_size, precision=precision)["logits"]
