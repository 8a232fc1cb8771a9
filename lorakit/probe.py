"""A linear probe: logistic regression on a frozen encoder's features.

The baseline fine-tuning has to beat is not chance but what the pretrained encoder already
knows. A probe reads it: run the frozen encoder once over each text, keep one vector per text,
and fit a logistic regression on the training texts' vectors (Alain and Bengio, 2016,
"Understanding intermediate layers using linear classifier probes"). Nothing in the encoder
changes, so whatever the probe gets right was in the features before any fine-tuning.

Two ways to turn a text's token vectors into one vector (``POOLINGS``):

    cls   the vector at the first token, [CLS]: what DistilBERT's classification head reads
    mean  the mean of the token vectors, padding left out: how sentence encoders such as
          all-MiniLM-L6-v2 were trained to summarise a text
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from lorakit.inference import forward_over_texts

POOLINGS = ("cls", "mean")


def encoder_features(model, tokenizer, texts: Sequence[str], max_length: int,
                     poolings: Sequence[str] = POOLINGS,
                     batch_size: int = 64) -> dict[str, np.ndarray]:
    """One vector per text and pooling from the frozen encoder (``model.base_model``) of a
    ``*ForSequenceClassification`` model: ``{pooling: (N, hidden size) float32}``, texts cut at
    ``max_length`` tokens, the encoder run once for all poolings, on the compute device and in
    the run's precision (``lorakit.inference.forward_over_texts``). The head is not used."""
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown or not poolings:
        raise ValueError(f"poolings={list(poolings)!r}; choose from {', '.join(POOLINGS)}")
    if len(texts) == 0:
        raise ValueError("texts is empty; features need at least one text")

    def pooled(batch: dict, model) -> dict[str, torch.Tensor]:
        hidden = model.base_model(**batch).last_hidden_state.float()  # (batch, tokens, hidden)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (batch, tokens, 1)
        vectors = {"cls": hidden[:, 0], "mean": (hidden * mask).sum(dim=1) / mask.sum(dim=1)}
        return {pooling: vectors[pooling] for pooling in poolings}  # each (batch, hidden)

    return forward_over_texts(model, tokenizer, list(texts), max_length, pooled,
                              batch_size=batch_size, description="encoding")


def fit_probe(features: np.ndarray, labels, seed: int = 0) -> LogisticRegression:
    """A multinomial logistic regression fitted on ``features`` (N, D) and class ids ``labels``
    (N,), with scikit-learn's defaults (L2 penalty, C = 1, not tuned)."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(labels) or len(labels) == 0:
        raise ValueError(f"features of shape {features.shape} and {len(labels)} labels; "
                         "expected (N, D) features and N > 0 class ids")
    return LogisticRegression(max_iter=2000, random_state=seed).fit(features, np.asarray(labels))
