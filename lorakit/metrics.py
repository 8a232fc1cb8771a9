"""Classification metrics: accuracy, macro-F1, per-class scores, and a table of predictions.

Everything here works on plain arrays: ``labels`` and ``predictions`` are class ids (N,),
``logits`` are the model's raw scores (N, C) for C classes, in the order of ``label_names``.
Scores come from scikit-learn and are returned as plain Python floats and ints, so that a
metrics dict goes straight into ``json.dump``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


# ---------------------------------------------------------------------------------------------
# The series' one rule for comparing two settings, and for choosing among several

SIGNIFICANCE = 0.05  # a verdict other than "cannot tell apart" needs p < 0.05 (or a 95% interval)
VERDICTS = ("better", "worse", "cannot tell apart")


@dataclass(frozen=True)
class Comparison:
    """Setting ``a`` against setting ``b`` on the same examples, seed by seed (``compare``).

    Scores are means over the seeds. For accuracy, ``only_a`` and ``only_b`` count the
    (seed, example) pairs that only ``a`` or only ``b`` gets right, pooled over the seeds, and
    ``p_value`` is the exact McNemar test on them; for macro-F1, ``low`` and ``high`` bound the
    mean per-seed difference by a paired bootstrap over the examples.
    """

    a: str
    b: str
    metric: str
    split: str
    seeds: int
    examples: int
    a_score: float
    b_score: float
    verdict: str
    only_a: int | None = None
    only_b: int | None = None
    p_value: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def difference(self) -> float:
        return self.a_score - self.b_score

    def sentence(self) -> str:
        """The comparison in one sentence, its verdict last."""
        metric = "accuracy" if self.metric == "accuracy" else "macro-F1"
        seeds = f"{self.seeds} seed{'s' if self.seeds > 1 else ''}"
        head = (f"{self.a} against {self.b}, {self.split} {metric} ({seeds} × {self.examples} "
                f"examples): {self.a_score:.1%} against {self.b_score:.1%} "
                f"({100 * self.difference:+.1f} points); ")
        if self.metric == "accuracy":
            evidence = (f"right only for {self.a} {self.only_a} times, only for {self.b} "
                        f"{self.only_b} times, exact McNemar p = {self.p_value:.2g}")
        else:
            evidence = (f"95% paired interval {_signed_points(self.low)} to "
                        f"{_signed_points(self.high)} points")
        verdict = ("this split cannot tell them apart" if self.verdict == "cannot tell apart"
                   else f"{self.a} is {self.verdict}")
        return f"{head}{evidence}: {verdict}."


def comparison_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """Comparisons side by side, one row each, indexed "a against b": both scores, the
    difference in points, the evidence (the 95% paired interval in points, or the exact McNemar
    p for accuracy) and the verdict; what ``Comparison.sentence`` says, as a table."""
    if not comparisons:
        raise ValueError("comparison_table got no comparisons; pass compare(...) results")
    rows = {}
    for c in comparisons:
        evidence = (f"McNemar p = {c.p_value:.2g}" if c.metric == "accuracy" else
                    f"{_signed_points(c.low)} to {_signed_points(c.high)}")
        rows[f"{c.a} against {c.b}"] = {
            f"{c.split} {'accuracy' if c.metric == 'accuracy' else 'macro-F1'}":
                f"{c.a_score:.1%} against {c.b_score:.1%}",
            "difference (points)": f"{100 * c.difference:+.1f}", "evidence": evidence,
            "verdict": c.verdict}
    return pd.DataFrame.from_dict(rows, orient="index")


def compare(a, b, metric: str = "macro_f1", split: str = "validation",
            names: tuple[str, str] = ("a", "b"), resamples: int = 2000,
            seed: int = 0) -> Comparison:
    """The series' comparison rule: ``a`` against ``b``, paired, seed by seed, same examples.

    ``a`` and ``b`` are the runs of two settings, one per seed and in the same seed order: each
    a ``lorakit.train.RunResult`` (its ``split`` predictions are read) or a prediction table
    (``label_id`` and ``prediction_id`` columns). Choose on ``split="validation"``, report on
    ``"test"``. Accuracy: exact McNemar on the discordant pairs pooled over the seeds, "better"
    or "worse" when p < ``SIGNIFICANCE``. Macro-F1: a paired bootstrap over the examples of the
    mean per-seed difference, "better" or "worse" when its 95% interval excludes 0. Else
    "cannot tell apart".
    """
    _check_metric(metric)
    tables_a, tables_b = _seed_tables(a, split), _seed_tables(b, split)
    if len(tables_a) != len(tables_b) or not tables_a:
        raise ValueError(f"{names[0]} has {len(tables_a)} seed(s) and {names[1]} "
                         f"{len(tables_b)}; compare the same seeds of both, one run per seed")
    for table_a, table_b in zip(tables_a, tables_b, strict=True):
        if not np.array_equal(table_a["label_id"].to_numpy(), table_b["label_id"].to_numpy()):
            raise ValueError("a seed of each was scored on different examples; compare runs of "
                             "the same split, data, seed and order")
    num_classes = _num_classes([*tables_a, *tables_b])
    labels = [t["label_id"].to_numpy() for t in tables_a]  # one array per seed
    predicted_a = [t["prediction_id"].to_numpy() for t in tables_a]
    predicted_b = [t["prediction_id"].to_numpy() for t in tables_b]
    common = dict(a=names[0], b=names[1], metric=metric, split=split, seeds=len(tables_a),
                  examples=len(labels[0]),
                  a_score=mean_score(tables_a, metric), b_score=mean_score(tables_b, metric))
    if metric == "accuracy":
        right_a = np.concatenate([p == y for p, y in zip(predicted_a, labels, strict=True)])
        right_b = np.concatenate([p == y for p, y in zip(predicted_b, labels, strict=True)])
        only_a, only_b, p = mcnemar_exact(right_a, right_b)
        verdict = ("cannot tell apart" if p >= SIGNIFICANCE
                   else "better" if only_a > only_b else "worse")
        return Comparison(**common, verdict=verdict, only_a=only_a, only_b=only_b, p_value=p)
    low, high = _paired_seed_interval(labels, predicted_a, predicted_b, num_classes, resamples,
                                      seed)
    verdict = "better" if low > 0 else "worse" if high < 0 else "cannot tell apart"
    return Comparison(**common, verdict=verdict, low=low, high=high)


def _paired_seed_interval(labels: list[np.ndarray], predicted_a: list[np.ndarray],
                          predicted_b: list[np.ndarray], num_classes: int, resamples: int,
                          seed: int) -> tuple[float, float]:
    """95% percentile interval of the mean over seeds of macro-F1(a) − macro-F1(b): each seed's
    examples drawn again with replacement, the same draw for both settings."""
    rng = np.random.default_rng(seed)
    differences = np.zeros(resamples)
    for truth, a_seed, b_seed in zip(labels, predicted_a, predicted_b, strict=True):
        draws = rng.integers(0, len(truth), size=(resamples, len(truth)))
        differences += (_scores(truth[draws], a_seed[draws], "macro_f1", num_classes)
                        - _scores(truth[draws], b_seed[draws], "macro_f1", num_classes))
    return _middle(differences / len(labels), 1 - SIGNIFICANCE)


def _num_classes(tables: list[pd.DataFrame]) -> int:
    """The classes of prediction tables: one per ``prob_<name>`` column, as the runs' own
    metrics count them (a class absent from the split scores F1 = 0), else the largest id + 1."""
    columns = [column for column in tables[0].columns if str(column).startswith("prob_")]
    if columns:
        return len(columns)
    return 1 + max(int(max(t["label_id"].max(), t["prediction_id"].max())) for t in tables)


def mean_score(runs, metric: str = "macro_f1", split: str = "validation") -> float:
    """The mean over seeds of ``metric`` on ``split``; ``runs`` as in ``compare``."""
    _check_metric(metric)
    tables = _seed_tables(runs, split)
    classes = _num_classes(tables)
    return float(np.mean([_scores(t["label_id"].to_numpy()[None],
                                  t["prediction_id"].to_numpy()[None], metric, classes)[0]
                          for t in tables]))


def _seed_tables(runs, split: str) -> list[pd.DataFrame]:
    """One prediction table per seed: a RunResult's ``split`` predictions, or the table itself."""
    if isinstance(runs, pd.DataFrame) or hasattr(runs, "run_dir"):
        runs = [runs]
    tables = []
    for run in runs:
        if isinstance(run, pd.DataFrame):
            tables.append(run)
        elif getattr(run, "diverged", False):
            raise ValueError(f"{run.run_dir.name} diverged: it has no predictions to compare")
        else:
            tables.append(run.validation_predictions if split == "validation"
                          else run.predictions)
    return tables


@dataclass(frozen=True)
class Choice:
    """What ``choose`` decided: the ``best`` candidate, those the rule cannot tell apart from it
    (``tied``, the best included), the cheapest of them (``chosen``), every comparison with the
    best, and the candidates that diverged (left out)."""

    metric: str
    split: str
    scores: dict[str, float]
    best: str
    tied: list[str]
    chosen: str
    comparisons: dict[str, Comparison]
    cost: dict[str, float]
    diverged: list[str]
    cost_unit: str = "trainable parameters"

    def sentence(self) -> str:
        """The choice in words, with its reason."""
        metric = "accuracy" if self.metric == "accuracy" else "macro-F1"
        text = (f"On {self.split} {metric}, the best is {self.best} ({self.scores[self.best]:.1%})"
                "; ")
        others = [name for name in self.tied if name != self.best]
        worse = [name for name, c in self.comparisons.items() if c.verdict == "worse"]
        if others:
            text += (f"the rule cannot tell {', '.join(others)} apart from it"
                     + (f", and {', '.join(worse)} {'is' if len(worse) == 1 else 'are'} worse"
                        if worse else "") + ". ")
            if self.chosen == self.best:
                text += (f"The best is also the cheapest of those "
                         f"({self._cost()}), so {self.chosen} is chosen.")
            else:
                text += (f"The cheapest of those, {self.chosen} "
                         f"({self._cost()}), is chosen for being the cheapest.")
        else:
            text += f"every other candidate is worse, so {self.best} is chosen."
        if self.diverged:
            text += f" Diverged, so left out: {', '.join(self.diverged)}."
        return text

    def _cost(self) -> str:
        value = self.cost[self.chosen]
        return f"{value:,.0f} {self.cost_unit}" if float(value).is_integer() else f"{value:g}"


def _signed_points(difference: float) -> str:
    """A difference of scores in points, signed, to 0.1; a bound that rounds to 0.0 keeps enough
    digits to say on which side of 0 it lies, and exactly 0 reads "0" (it does not exclude 0)."""
    points = 100 * difference
    if abs(points) >= 0.05:
        return f"{points:+.1f}"
    return "0" if points == 0 else f"{points:+.1g}"


def choose(candidates: dict, cost: dict[str, float], metric: str = "macro_f1",
           split: str = "validation", cost_unit: str = "trainable parameters") -> Choice:
    """The series' rule for choosing among settings, stated before the results: take the one
    with the best mean ``split`` score over its seeds; keep every candidate that ``compare``
    cannot tell apart from it; choose the cheapest of those by ``cost`` (e.g. trainable
    parameters; ``cost_unit`` names it in the sentence), and say so. ``candidates`` maps a name
    to its runs, one per seed, the same seeds for all (see ``compare``); a candidate whose runs
    diverged is left out."""
    diverged = [name for name, runs in candidates.items()
                if any(getattr(run, "diverged", False) for run in _as_list(runs))]
    alive = {name: runs for name, runs in candidates.items() if name not in diverged}
    if not alive:
        raise ValueError("every candidate diverged: there is nothing to choose from")
    scores = {name: mean_score(runs, metric, split) for name, runs in alive.items()}
    best = max(scores, key=scores.get)
    comparisons = {name: compare(runs, alive[best], metric, split, (name, best))
                   for name, runs in alive.items() if name != best}
    tied = [best] + [name for name, c in comparisons.items() if c.verdict == "cannot tell apart"]
    chosen = min(tied, key=lambda name: cost[name])
    return Choice(metric, split, scores, best, tied, chosen, comparisons, dict(cost), diverged,
                  cost_unit)


def _as_list(runs) -> list:
    return [runs] if isinstance(runs, pd.DataFrame) or hasattr(runs, "run_dir") else list(runs)
