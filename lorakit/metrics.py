"""Classification metrics: accuracy, macro-F1, per-class scores, and a table of predictions.

Everything here works on plain arrays: ``labels`` and ``predictions`` are class ids (N,),
``logits`` are the model's raw scores (N, C) for C classes, in the order of ``label_names``.
Scores come from scikit-learn and are returned as plain Python floats and ints, so that a
metrics dict goes straight into ``json.dump``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

from lorakit.checks import require_number


def _as_logits(
    logits, label_names: Sequence[str] | None = None, require_finite: bool = True
) -> np.ndarray:
    """Logits as a float64 array (N, C); torch tensors (any dtype or device) are accepted."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(
            f"logits have shape {logits.shape}; expected (N, C): one row of class scores per "
            "example (for a single example, pass logits[None, :])"
        )
    if label_names is not None and logits.shape[1] != len(label_names):
        raise ValueError(
            f"logits have {logits.shape[1]} columns but there are {len(label_names)} label names "
            f"{list(label_names)}; pass the label names of the task the model was trained on, "
            "one per output class, in the model's class order"
        )
    if require_finite and not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinity; the model diverged or the input is bad")
    return logits


def _as_class_ids(values, what: str, num_classes: int) -> np.ndarray:
    """Class ids as an int64 array (N,), each in [0, num_classes)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    ids = np.asarray(values)
    if ids.ndim != 1:
        raise ValueError(f"{what} have shape {ids.shape}; expected (N,): one class id per example")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        if not np.issubdtype(ids.dtype, np.floating) or not np.all(ids == np.round(ids)):
            raise ValueError(
                f"{what} must be integer class ids, got dtype {ids.dtype} (e.g. {ids[:3]}); "
                "map label names to ids first, e.g. label_names.index(name)"
            )
    ids = ids.astype(np.int64)
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        raise ValueError(
            f"{what} contain class id {bad[0]}, outside 0..{num_classes - 1} for {num_classes} "
            "label names; pass the label names of the task the ids come from"
        )
    return ids


def check_label_names(label_names: Sequence[str]) -> list[str]:
    """``label_names`` as a list of distinct class names (a single string is one name); a
    ValueError names what is wrong when it is empty or repeats a name."""
    names = [label_names] if isinstance(label_names, str) else list(label_names)
    if not names:
        raise ValueError("label_names is empty; pass one name per class, e.g. ['neg', 'pos']")
    if len(set(names)) != len(names):
        raise ValueError(f"label_names {names} repeat a name; each class needs its own name")
    return names


def _check_same_length(**arrays) -> None:
    lengths = {name: len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise ValueError(
            f"lengths differ ({described}); pass one entry per example in the same order"
        )


def softmax_probabilities(logits) -> np.ndarray:
    """Class probabilities (N, C) from logits (N, C); each row sums to 1.

    Subtracting each row's maximum before ``exp`` keeps it stable for large logits (1000 and
    1001 give probabilities 0.269 and 0.731, not NaN).
    """
    logits = _as_logits(logits)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def log_softmax(logits) -> np.ndarray:
    """Log-probabilities (N, C) from logits (N, C): ``z - logsumexp(z)``, computed stably."""
    logits = _as_logits(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def classification_metrics(labels, predictions, label_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class F1 and support for class ids (N,).

    Macro-F1 averages the F1 of every class in ``label_names``, counting a class that never
    occurs and is never predicted as F1 = 0 (scikit-learn's ``zero_division=0``); on imbalanced
    data such as Emotion it is the score that notices a model ignoring a rare class.

    Returns ``{"accuracy": float, "macro_f1": float, "per_class_f1": {name: float},
    "per_class_support": {name: int}}``, fractions in [0, 1], support = true examples per class.
    """
    names = check_label_names(label_names)
    _check_same_length(labels=labels, predictions=predictions)
    if len(labels) == 0:
        raise ValueError("labels and predictions are empty; metrics need at least one example")
    y_true = _as_class_ids(labels, "labels", len(names))
    y_pred = _as_class_ids(predictions, "predictions", len(names))
    classes = list(range(len(names)))
    per_class = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    support = np.bincount(y_true, minlength=len(names))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro",
                                   zero_division=0)),
        "per_class_f1": {name: float(f1) for name, f1 in zip(names, per_class, strict=True)},
        "per_class_support": {name: int(n) for name, n in zip(names, support, strict=True)},
    }


def _check_metric(metric: str) -> None:
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"metric={metric!r}; expected 'accuracy' or 'macro_f1'")


def _check_interval_arguments(metric: str, confidence: float) -> None:
    _check_metric(metric)
    require_number("confidence", confidence, 0, 1, low_open=True, high_open=True, example=0.95)


def _scores(true: np.ndarray, predicted: np.ndarray, metric: str, num_classes: int) -> np.ndarray:
    """``metric`` per row of class ids ``true``, ``predicted``: (resamples, N) -> (resamples,)."""
    if metric == "accuracy":
        return (true == predicted).mean(axis=1)
    f1 = []
    for c in range(num_classes):  # F1 = 2 tp / (2 tp + fp + fn), 0 when the class is absent
        tp = ((true == c) & (predicted == c)).sum(axis=1)
        wrong = ((true == c) != (predicted == c)).sum(axis=1)  # fp + fn
        denominator = 2 * tp + wrong
        f1.append(np.divide(2 * tp, denominator, out=np.zeros(len(true)), where=denominator > 0))
    return np.mean(f1, axis=0)


def _middle(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_interval(labels, predictions, num_classes: int, metric: str = "accuracy",
                       resamples: int = 1000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """A percentile-bootstrap interval for ``metric`` ("accuracy" or "macro_f1") of class ids
    ``labels`` and ``predictions`` (N,): the test examples are drawn again with replacement
    ``resamples`` times, and the interval holds the middle ``confidence`` of the metric's values.

    It measures how much the score depends on which examples the test split happens to hold, not
    the run-to-run spread of training (seeds measure that). To compare two runs scored on the same
    examples, use ``paired_difference_interval``: two intervals that overlap can still hide a
    difference that the paired one shows.
    """
    _check_interval_arguments(metric, confidence)
    _check_same_length(labels=labels, predictions=predictions)
    if len(labels) == 0:
        raise ValueError("labels and predictions are empty; an interval needs examples")
    y_true = _as_class_ids(labels, "labels", num_classes)
    y_pred = _as_class_ids(predictions, "predictions", num_classes)
    draws = np.random.default_rng(seed).integers(0, len(y_true), size=(resamples, len(y_true)))
    return _middle(_scores(y_true[draws], y_pred[draws], metric, num_classes), confidence)


def paired_difference_interval(labels, predictions_a, predictions_b, num_classes: int,
                               metric: str = "accuracy", resamples: int = 1000,
                               confidence: float = 0.95,
                               seed: int = 0) -> tuple[float, float, float]:
    """``metric`` of run a minus run b on the same examples, with a paired bootstrap interval.

    ``labels``, ``predictions_a`` and ``predictions_b`` are class ids (N,). Each resample draws
    the examples with replacement once and scores both runs on that same draw, so the luck of
    which examples the split holds cancels between the two. Returns ``(difference, low, high)``;
    an interval that holds 0 means this split cannot tell the two runs apart.
    """
    _check_interval_arguments(metric, confidence)
    _check_same_length(labels=labels, predictions_a=predictions_a, predictions_b=predictions_b)
    if len(labels) == 0:
        raise ValueError("labels and predictions are empty; an interval needs examples")
    y_true = _as_class_ids(labels, "labels", num_classes)
    a = _as_class_ids(predictions_a, "predictions_a", num_classes)
    b = _as_class_ids(predictions_b, "predictions_b", num_classes)
    difference = float(_scores(y_true[None], a[None], metric, num_classes)[0]
                       - _scores(y_true[None], b[None], metric, num_classes)[0])
    draws = np.random.default_rng(seed).integers(0, len(y_true), size=(resamples, len(y_true)))
    differences = (_scores(y_true[draws], a[draws], metric, num_classes)
                   - _scores(y_true[draws], b[draws], metric, num_classes))
    return (difference, *_middle(differences, confidence))


def mcnemar_exact(right_a, right_b) -> tuple[int, int, float]:
    """Two runs on the same examples, compared where they disagree: McNemar's test, exact form.

    ``right_a`` and ``right_b`` are booleans (N,): whether each run got each example right. Only
    the examples one run gets right and the other wrong can say which is better; if the runs
    were equally good, each such example would fall on either side with probability 1/2. Returns
    ``(only_a, only_b, p)``: the two counts and the two-sided exact binomial p-value (1.0 when
    they never disagree).
    """
    _check_same_length(right_a=right_a, right_b=right_b)
    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return only_a, only_b, float(p)


def one_example_swing(labels, predictions, num_classes: int, metric: str = "macro_f1") -> float:
    """The largest change of ``metric`` that changing one prediction of ``predictions`` can make.

    ``labels`` and ``predictions`` are class ids (N,). Every example is given, in turn, every
    other class as its prediction; the result is the largest |change| of the score. On a split
    with a rare class it is large: one example of a class with 4 examples moves that class's F1,
    and macro-F1 weighs it like every other class. Two scores closer than this differ by less than
    one example can account for.
    """
    _check_metric(metric)
    _check_same_length(labels=labels, predictions=predictions)
    if len(labels) == 0:
        raise ValueError("labels and predictions are empty; a swing needs examples")
    y_true = _as_class_ids(labels, "labels", num_classes)
    y_pred = _as_class_ids(predictions, "predictions", num_classes)
    changed = np.repeat(y_pred[None].astype(np.int16), len(y_pred) * num_classes, axis=0)
    # changed: (N * C, N)
    rows = np.arange(len(changed))
    changed[rows, rows // num_classes] = rows % num_classes  # row i*C + c: example i predicted c
    base = _scores(y_true[None], y_pred[None], metric, num_classes)[0]
    swings = np.abs(_scores(np.broadcast_to(y_true, changed.shape), changed, metric,
                            num_classes) - base)
    return float(swings.max())


def seed_spread(scores) -> float:
    """How far one setting's score moves with the seed alone: max − min over its seeds (one
    score per seed; 0.0 for a single seed)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"scores has shape {values.shape}; give one score per seed, e.g. "
                         "[0.93, 0.95, 0.94]")
    return float(values.max() - values.min())


def tied(scores_a, scores_b, yardstick: float | None = None) -> bool:
    """Whether two settings are a tie: their mean scores differ by no more than the larger of
    their seed spreads (``seed_spread``), so the seed alone could account for the difference.

    Each argument holds one score per seed. When both have one seed, neither says how far the
    seed moves a score: ``yardstick`` is then the spread to use, e.g. the ``seed_spread`` of a
    reference setting trained with several seeds; without it that is a ValueError.
    """
    spread = max(seed_spread(scores_a), seed_spread(scores_b))
    if len(scores_a) < 2 and len(scores_b) < 2:
        if yardstick is None:
            raise ValueError("both settings have one seed: train one of them with 2 or more "
                             "seeds, or pass yardstick=, the seed spread of a setting that has")
        spread = require_number("yardstick", yardstick, low=0, example=0.02)
    return bool(abs(float(np.mean(scores_a)) - float(np.mean(scores_b))) <= spread)


def prediction_table(
    texts: Sequence[str], labels, logits, label_names: Sequence[str]
) -> pd.DataFrame:
    """One row per example: the text, true and predicted label, probabilities and loss.

    Args:
        texts: N input texts.
        labels: N true class ids.
        logits: (N, C) raw model scores, columns in the order of ``label_names``.
        label_names: C class names.

    Columns: ``text``, ``label`` and ``prediction`` (names), ``label_id``, ``prediction_id``,
    ``confidence`` (the largest probability), ``prob_<name>`` for each class, and ``loss``:
    the example's cross-entropy in nats, ``-log p(true label)``, from a stable log-softmax.
    Written as predictions.csv in a run directory; notebook 06 sorts it by loss.
    """
    names = check_label_names(label_names)
    logits = _as_logits(logits, names)
    texts = list(texts)
    _check_same_length(texts=texts, labels=labels, logits=logits)
    label_ids = _as_class_ids(labels, "labels", len(names))
    log_probs = log_softmax(logits)
    probs = np.exp(log_probs)
    predicted = logits.argmax(axis=1)
    table = pd.DataFrame(
        {
            "text": texts,
            "label": [names[i] for i in label_ids],
            "prediction": [names[i] for i in predicted],
            "label_id": label_ids,
            "prediction_id": predicted.astype(np.int64),
            "confidence": probs.max(axis=1),
        }
    )
    for c, name in enumerate(names):
        table[f"prob_{name}"] = probs[:, c]
    table["loss"] = -log_probs[np.arange(len(label_ids)), label_ids]
    return table


def trainer_compute_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for ``transformers.Trainer``: accuracy and macro-F1 of the argmax.

    Takes an ``EvalPrediction`` (or a ``(predictions, label_ids)`` pair) whose predictions are
    logits (N, C), or a tuple whose first element is; label_ids are class ids (N,).
    """
    predictions, label_ids = eval_prediction[0], eval_prediction[1]
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    if isinstance(label_ids, (tuple, list)):
        label_ids = label_ids[0]
    # A diverged model's NaN logits are scored (badly), not allowed to stop the training run.
    logits = _as_logits(predictions, require_finite=False)
    num_classes = logits.shape[1]
    labels = np.asarray(label_ids)
    _check_same_length(label_ids=labels, predictions=logits)
    names = [str(c) for c in range(num_classes)]
    scores = classification_metrics(labels, logits.argmax(axis=1), names)
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
