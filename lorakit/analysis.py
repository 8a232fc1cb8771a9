"""Error analysis: tables computed from a prediction table, for notebook 06.

A prediction table has one row per test example, as ``lorakit.metrics.prediction_table`` makes
it and a run directory stores it in predictions.csv (``load_predictions`` reads it back)::

    text, label, prediction, label_id, prediction_id, confidence, prob_<name>..., loss

``label``/``prediction`` are class names, ``label_id``/``prediction_id`` their ids in the order
of ``label_names``, ``confidence`` the largest class probability and ``loss`` the example's
cross-entropy in nats. Every function here needs only some of these columns (a table without the
id columns still works; names are mapped through ``label_names``) and raises ValueError naming the
missing ones. Shares and accuracies are fractions in [0, 1].

The tables answer notebook 06's questions: which classes are confused with which (``confusion``,
``top_confusions``), which examples the model gets most wrong (``highest_loss``), whether its
confidence can be trusted and how to repair it (``calibration_bins``,
``expected_calibration_error``, ``brier_score``, ``fit_temperature``, ``with_temperature``), and
whether long or truncated texts fail more (``length_buckets``). ``lorakit.plots`` draws the
confusion matrix, the calibration bins and the length buckets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from lorakit.checks import require_int, require_number, require_type
from lorakit.metrics import check_label_names, log_softmax, prediction_table
from lorakit.run_files import CONFIG, PREDICTIONS

TEXT_COLUMNS = ("text", "label", "prediction")
NORMALIZE_CHOICES = (None, "true", "pred", "all")


# Checking and reading the table


def _check_table(table, required: Sequence[str], what: str) -> pd.DataFrame:
    """The table itself, after checking that it is a non-empty DataFrame with ``required``."""
    require_type("table", table, pd.DataFrame, "a pandas DataFrame of predictions",
                 "pass lorakit.metrics.prediction_table(...) or load_predictions(run_dir)")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ValueError(
            f"{what} needs the columns {missing}, which the table lacks (it has "
            f"{list(table.columns)}); pass the table from lorakit.metrics.prediction_table or "
            "load_predictions(run_dir)"
        )
    if len(table) == 0:
        raise ValueError(
            f"{what} got an empty prediction table (0 rows); it needs at least one example"
        )
    return table


def _class_ids(table: pd.DataFrame, names: list[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted class ids (N,) each, from the id columns or else the name columns."""
    _check_table(table, [], what)
    if {"label_id", "prediction_id"} <= set(table.columns):
        pairs = []
        for column in ("label_id", "prediction_id"):
            ids = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
            bad = ids[~np.isfinite(ids) | (ids < 0) | (ids >= len(names)) | (ids != np.round(ids))]
            if bad.size:
                raise ValueError(
                    f"{what}: column {column} holds {bad[0]}, not a class id in "
                    f"0..{len(names) - 1} for the {len(names)} label names {names}; pass the label "
                    "names of the task the predictions were made for"
                )
            pairs.append(ids.astype(np.int64))
        return pairs[0], pairs[1]
    if not {"label", "prediction"} <= set(table.columns):
        missing = sorted({"label", "prediction"} - set(table.columns))
        raise ValueError(
            f"{what} needs the columns label_id and prediction_id, or label and prediction; the "
            f"table lacks {missing} (it has {list(table.columns)}); pass the table from "
            "lorakit.metrics.prediction_table or load_predictions(run_dir)"
        )
    lookup = {str(name): i for i, name in enumerate(names)}
    pairs = []
    for column in ("label", "prediction"):
        values = table[column].astype(str)
        unknown = sorted(set(values) - set(lookup))
        if unknown:
            raise ValueError(
                f"{what}: column {column} holds {unknown[:5]}, not among the label names "
                f"{names}; pass the label names of the task the predictions were made for"
            )
        pairs.append(values.map(lookup).to_numpy(dtype=np.int64))
    return pairs[0], pairs[1]


def _correct(table: pd.DataFrame, what: str) -> np.ndarray:
    """Whether each example was classified correctly, a bool array (N,)."""
    _check_table(table, [], what)
    if {"label_id", "prediction_id"} <= set(table.columns):
        return (table["label_id"].to_numpy() == table["prediction_id"].to_numpy()).astype(bool)
    if not {"label", "prediction"} <= set(table.columns):
        raise ValueError(
            f"{what} needs the columns label_id and prediction_id, or label and prediction; the "
            f"table has only {list(table.columns)}; pass the table from "
            "lorakit.metrics.prediction_table or load_predictions(run_dir)"
        )
    return (table["label"].astype(str) == table["prediction"].astype(str)).to_numpy()


def load_predictions(run_dir) -> tuple[pd.DataFrame, list[str]]:
    """A run directory's predictions.csv and its label names.

    Returns ``(table, label_names)``: the prediction table (columns as ``prediction_table``
    wrote them; texts and label names stay strings, so a review reading "NA" is not a missing
    value) and the class names from config.json's ``label_names``, or, for a run without them,
    from the ``prob_<name>`` columns, which are in class order.
    """
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; lorakit.train.run (or `lorakit train`) writes it into each "
            "run directory. Pass a run directory (see lorakit.report.find_runs), or train one"
        )
    table = pd.read_csv(
        path, keep_default_na=False, na_values=[""], dtype={c: str for c in TEXT_COLUMNS}
    )
    for column in TEXT_COLUMNS:
        if column in table.columns:
            table[column] = table[column].fillna("")
    names = None
    config_path = run_dir / CONFIG
    if config_path.is_file():
        names = json.loads(config_path.read_text()).get("label_names")
    if not names:
        names = [c.removeprefix("prob_") for c in table.columns if c.startswith("prob_")]
    if not names:
        raise ValueError(
            f"no label names for {run_dir}: {config_path} has no label_names and {path} no "
            "prob_<name> columns; the run was not written by lorakit.train.run"
        )
    return table, [str(name) for name in names]


# Confusion between classes


def confusion(table: pd.DataFrame, label_names: Sequence[str], normalize: str | None = None):
    """The confusion matrix: rows are true labels, columns predicted labels, in label order.

    Returns a DataFrame (C, C) indexed by ``label_names`` (index name "true label", columns name
    "predicted label"). ``normalize=None`` gives counts (ints); ``"true"`` divides each row by
    its class's support, so a cell is the share of that class predicted as the column's class
    and the diagonal is per-class recall (a class with no examples gives a row of NaN);
    ``"pred"`` divides each column by how often it was predicted, ``"all"`` by N.
    """
    names = check_label_names(label_names)
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(
            f"normalize={normalize!r}; expected one of {list(NORMALIZE_CHOICES)}: None for "
            "counts, 'true' for shares of each true class (rows sum to 1)"
        )
    true_ids, predicted_ids = _class_ids(table, names, "confusion")
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(counts, (true_ids, predicted_ids), 1)
    values = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            values = counts / counts.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            values = counts / counts.sum(axis=0, keepdims=True)
        elif normalize == "all":
            values = counts / counts.sum()
    return pd.DataFrame(
        values,
        index=pd.Index(names, name="true label"),
        columns=pd.Index(names, name="predicted label"),
    )


def top_confusions(table: pd.DataFrame, label_names: Sequence[str], n: int = 5) -> pd.DataFrame:
    """The ``n`` most frequent mistakes as (true label, predicted label) pairs.

    Returns a DataFrame with columns ``label``, ``prediction``, ``count``, ``share_of_label``
    (count / support of the true label) and ``share_of_errors`` (count / all misclassified
    examples), sorted by count, largest first; fewer rows when there are fewer kinds of error.
    """
    names = check_label_names(label_names)
    require_int("n", n, example=10)
    counts = confusion(table, names)
    support = counts.sum(axis=1)
    pairs = counts.stack().rename("count").reset_index()
    pairs.columns = ["label", "prediction", "count"]
    pairs = pairs[(pairs["label"] != pairs["prediction"]) & (pairs["count"] > 0)]
    total_errors = pairs["count"].sum()
    pairs = pairs.assign(
        share_of_label=pairs["count"] / pairs["label"].map(support).to_numpy(),
        share_of_errors=pairs["count"] / total_errors if total_errors else np.nan,
    )
    pairs = pairs.sort_values("count", ascending=False, kind="stable").head(n)
    return pairs.reset_index(drop=True)


# The examples the model gets most wrong


def highest_loss(table: pd.DataFrame, n: int = 5, per_class: bool = True) -> pd.DataFrame:
    """The ``n`` examples with the highest loss, overall or per true class.

    Loss is the cross-entropy ``-log p(true label)``, so the top rows are confident mistakes (or
    mislabelled examples); per class, a class with fewer than ``n`` mistakes fills its rows with
    its least sure correct answers. Returns a DataFrame with columns ``text``, ``label``,
    ``prediction``, ``confidence``, ``loss``, keeping the rows' original index so they can be
    found in ``table``. Sorted by loss, highest first; with ``per_class`` (up to) n rows for each
    true class, classes in label-id order (or sorted by name when ids are absent).
    """
    columns = ["text", "label", "prediction", "confidence", "loss"]
    _check_table(table, columns, "highest_loss")
    require_int("n", n, example=10)
    ordered = table.sort_values("loss", ascending=False, kind="stable")
    if not per_class:
        return ordered.head(n)[columns]
    class_key = "label_id" if "label_id" in table.columns else "label"
    parts = [group.head(n) for _, group in ordered.groupby(class_key, sort=True)]
    return pd.concat(parts)[columns]


def head_and_tail(text: str, head_words: int = 10, tail_words: int = 20) -> str:
    """A long text shortened to its first and last words, "first … last": a review usually states
    its verdict at the end, which shortening from the end would cut. Short texts stay whole."""
    words = text.split()
    if len(words) <= head_words + tail_words:
        return text
    return f"{' '.join(words[:head_words])} … {' '.join(words[len(words) - tail_words:])}"


# Confidence and calibration


def calibration_bins(table: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Examples grouped by confidence into ``n_bins`` equal-width bins on [0, 1].

    Bins are right-closed, ``(lower, upper]``, and the first one also holds confidence 0:
    with 10 bins, 0.8 falls in (0.7, 0.8] and 0.85 in (0.8, 0.9]. Returns a DataFrame with one
    row per bin (``n_bins`` rows, empty bins included) and columns ``lower``, ``upper``,
    ``count``, ``share`` (count / N), ``mean_confidence``, ``accuracy`` (share correct) and
    ``gap`` (accuracy - mean_confidence: negative where the model is overconfident); the means
    are NaN in an empty bin. A perfectly calibrated model has accuracy = mean_confidence in
    every bin (Guo et al., 2017, "On Calibration of Modern Neural Networks", section 2).
    """
    _check_table(table, ["confidence"], "calibration_bins")
    n_bins = require_int("n_bins", n_bins, example=10)
    confidence = pd.to_numeric(table["confidence"], errors="coerce").to_numpy(np.float64)
    if not np.all((confidence >= 0) & (confidence <= 1)):
        bad = confidence[~((confidence >= 0) & (confidence <= 1))][0]
        raise ValueError(
            f"confidence {bad} is not a probability in [0, 1]; the confidence column must hold "
            "each example's largest class probability (softmax), not a logit"
        )
    correct = _correct(table, "calibration_bins").astype(np.float64)
    # Edges i/n computed exactly, so that a confidence written as 0.8 lands in (0.7, 0.8].
    edges = np.arange(n_bins + 1) / n_bins
    bins = np.clip(np.searchsorted(edges, confidence, side="left"), 1, n_bins) - 1
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    result = pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "share": count / len(confidence),
            "mean_confidence": mean_confidence,
            "accuracy": accuracy,
            "gap": accuracy - mean_confidence,
        }
    )
    result.index.name = "bin"
    return result


def expected_calibration_error(table: pd.DataFrame, n_bins: int = 10) -> float:
    """Expected calibration error: ``sum over bins b of (n_b / N) * |acc_b - conf_b|``.

    ``acc_b`` and ``conf_b`` are the accuracy and mean confidence of the ``n_b`` examples in bin
    b, with ``calibration_bins``' equal-width, right-closed bins on [0, 1] (empty bins add 0).
    Returns a float in [0, 1]: 0 for a perfectly calibrated model, 0.3 for one that says 90% and
    is right 60% of the time. Guo et al., 2017, "On Calibration of Modern Neural Networks"
    (ICML), equation 3.
    """
    bins = calibration_bins(table, n_bins)
    filled = bins[bins["count"] > 0]
    return float((filled["share"] * filled["gap"].abs()).sum())


def brier_score(table: pd.DataFrame, label_names: Sequence[str]) -> float:
    """Mean over examples of ``sum over classes c of (p_c - [y = c])²``, from the ``prob_<name>``
    columns of a prediction table: 0 for certain and right, 2 for certain and wrong.

    Unlike the ECE it scores every probability against the true label, so a model that gives
    every example the classes' base rates, calibrated and useless, scores badly on it (Brier,
    1950, "Verification of forecasts expressed in terms of probability").
    """
    names = check_label_names(label_names)
    _check_table(table, [f"prob_{name}" for name in names], "brier_score")
    true_ids, _ = _class_ids(table, names, "brier_score")
    probabilities = table[[f"prob_{name}" for name in names]].to_numpy(np.float64)  # (N, C)
    one_hot = np.eye(len(names))[true_ids]
    return float(((probabilities - one_hot) ** 2).sum(axis=1).mean())


def fit_temperature(logits, labels) -> float:
    """The temperature T > 0 that minimises the mean NLL of softmax(logits / T) on ``labels``.

    ``logits`` (N, C) and class ids ``labels`` (N,) should come from a split the model did not
    train on, the validation split (Guo et al., 2017, "On Calibration of Modern Neural
    Networks", section 4.2). T > 1 softens overconfident probabilities, T < 1 sharpens them; the
    predicted class never changes. The NLL is convex in 1/T, so the bounded search over log T in
    [-4, 4] finds the one minimum.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"logits of shape {logits.shape} and {len(labels)} labels; expected "
                         "(N, C) logits and N > 0 class ids")

    def mean_nll(log_temperature: float) -> float:
        log_probabilities = log_softmax(logits / math.exp(log_temperature))
        return float(-log_probabilities[np.arange(len(labels)), labels].mean())

    found = minimize_scalar(mean_nll, bounds=(-4.0, 4.0), method="bounded",
                            options={"xatol": 1e-6})
    return float(math.exp(found.x))


def with_temperature(table: pd.DataFrame, label_names: Sequence[str],
                     temperature: float) -> pd.DataFrame:
    """The prediction table again, its probabilities recomputed as softmax(log p / T).

    log p equals the logits up to a constant per example, which softmax ignores, so this is
    softmax(logits / T) without the logits. Predictions stay; confidence, loss and the
    ``prob_<name>`` columns change.
    """
    names = check_label_names(label_names)
    _check_table(table, ["text", *(f"prob_{name}" for name in names)], "with_temperature")
    require_number("temperature", temperature, 0, low_open=True, example=1.5)
    true_ids, _ = _class_ids(table, names, "with_temperature")
    probabilities = table[[f"prob_{name}" for name in names]].to_numpy(np.float64)
    log_probabilities = np.log(np.clip(probabilities, 1e-300, None))
    rescaled = prediction_table(table["text"].tolist(), true_ids,
                                log_probabilities / temperature, names)
    return rescaled.set_index(table.index)


# Text length and truncation


def _token_counts(texts: list[str], tokenizer) -> np.ndarray:
    """Tokens per text, special tokens included, without truncation."""
    if hasattr(tokenizer, "model_input_names"):  # a transformers tokenizer
        encoded = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
    if not callable(tokenizer):
        raise ValueError(
            f"tokenizer must be a transformers tokenizer or a function text -> tokens, got "
            f"{type(tokenizer).__name__}"
        )
    counts = []
    for text in texts:
        tokens = tokenizer(text)
        if isinstance(tokens, Mapping):
            tokens = tokens["input_ids"]
        counts.append(len(tokens))
    return np.array(counts, dtype=np.int64)


def text_lengths(table: pd.DataFrame, tokenizer: Callable | None = None) -> pd.Series:
    """Length of each text: whitespace-separated words, or tokens when a tokenizer is given.

    ``tokenizer`` is a transformers tokenizer (counted with its special tokens and without
    truncation, as the model would see the text before ``max_length`` cuts it) or any function
    ``text -> list of tokens``. Returns an int Series (N,) named "words" or "tokens", with the
    table's index.
    """
    _check_table(table, ["text"], "text_lengths")
    texts = table["text"].fillna("").astype(str).tolist()
    if tokenizer is None:
        counts = np.array([len(text.split()) for text in texts], dtype=np.int64)
        return pd.Series(counts, index=table.index, name="words")
    return pd.Series(_token_counts(texts, tokenizer), index=table.index, name="tokens")


def _default_edges(lengths: np.ndarray, n_buckets: int, max_length: int | None) -> list[float]:
    """Quantile edges (about equally many texts per bucket), 0 first and the longest text last."""
    quantiles = np.quantile(lengths, np.linspace(0, 1, n_buckets + 1)[1:-1])
    edges = {0.0, float(lengths.max()), *np.round(quantiles).astype(float).tolist()}
    if max_length is not None and max_length < lengths.max():
        edges.add(float(max_length))
    edges = sorted(edges)
    return edges if len(edges) > 1 else [0.0, 1.0]  # every text is empty


def _bucket_name(lower: float, upper: float, first: bool) -> str:
    low = int(lower) if first else int(lower) + 1
    if math.isinf(upper):
        return f">{int(lower)}"
    if low == int(upper):
        return f"{low}"
    return f"{low}–{int(upper)}"


def _checked_edges(edges: Sequence[float], lengths: np.ndarray, max_length: int | None
                   ) -> list[float]:
    """``length_buckets``' edges, sorted, with ``max_length`` added inside them; a ValueError
    when they are not increasing, start at ``max_length``, or miss a length."""
    edges = sorted(float(e) for e in edges)
    if len(edges) < 2 or len(set(edges)) != len(edges):
        raise ValueError(
            f"edges {list(edges)}: expected at least two distinct, increasing lengths, "
            "e.g. [0, 64, 128, 256, math.inf]"
        )
    if max_length is not None and edges[0] == max_length:
        raise ValueError(
            f"edges start at max_length={max_length}, so the first bucket would mix kept and "
            "truncated texts; start the edges below it, e.g. at 0"
        )
    if max_length is not None and edges[0] < max_length < edges[-1]:
        edges = sorted({*edges, float(max_length)})
    outside = lengths[(lengths < edges[0]) | (lengths > edges[-1])]
    if outside.size:
        raise ValueError(
            f"a text has length {outside[0]}, outside the edges [{edges[0]:g}, "
            f"{edges[-1]:g}]; widen them, e.g. end them with math.inf"
        )
    return edges


def length_buckets(
    table: pd.DataFrame,
    tokenizer: Callable | None = None,
    edges: Sequence[float] | None = None,
    max_length: int | None = None,
    n_buckets: int = 5,
) -> pd.DataFrame:
    """Accuracy by text length, in words (no tokenizer) or tokens (see ``text_lengths``).

    Buckets are right-closed, ``(edge[i], edge[i+1]]``, the first one also holding
    ``edges[0]``; the edges must cover every length (end with ``math.inf`` to be sure). The
    default edges split the lengths at quantiles into about ``n_buckets`` equally full buckets.
    With ``max_length`` (the model's limit, in the same unit) it becomes an edge, so that each
    bucket is either wholly kept or wholly truncated, and a ``truncated`` column says which:
    a text is truncated when its length exceeds ``max_length``. Counted in tokens that is
    exact; counted in words it is a lower bound, since a word is at least one token.

    Returns a DataFrame, one row per bucket (empty ones included) with columns ``bucket`` (a
    name such as "65–128"), ``lower`` and ``upper`` (the smallest and largest length it holds),
    ``count``, ``correct``, ``accuracy`` (NaN when empty), ``mean_loss`` (when the table has
    ``loss``), and ``truncated`` (bool, only with ``max_length``); ``attrs["unit"]`` is "words" or
    "tokens".
    """
    _check_table(table, ["text"], "length_buckets")
    correct = _correct(table, "length_buckets")
    lengths = text_lengths(table, tokenizer).to_numpy()
    if max_length is not None:
        require_int("max_length", max_length, example=128)
    if edges is None:
        edges = _default_edges(lengths, require_int("n_buckets", n_buckets, example=5), max_length)
    else:
        edges = _checked_edges(edges, lengths, max_length)
    edges_array = np.asarray(edges, dtype=np.float64)
    bucket = np.clip(np.searchsorted(edges_array, lengths, side="left"), 1, len(edges) - 1) - 1
    n = len(edges) - 1
    count = np.bincount(bucket, minlength=n)
    right = np.bincount(bucket, weights=correct.astype(np.float64), minlength=n)
    result = pd.DataFrame(
        {
            "bucket": [_bucket_name(edges[i], edges[i + 1], i == 0) for i in range(n)],
            "lower": [math.ceil(edges[0])] + [math.floor(e) + 1 for e in edges[1:-1]],
            "upper": [e if math.isinf(e) else math.floor(e) for e in edges[1:]],
            "count": count,
            "correct": right.astype(np.int64),
        }
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        result["accuracy"] = right / count
        if "loss" in table.columns:
            losses = pd.to_numeric(table["loss"], errors="coerce").to_numpy(np.float64)
            result["mean_loss"] = np.bincount(bucket, weights=losses, minlength=n) / count
    if max_length is not None:
        result["truncated"] = result["lower"] > max_length
    result.attrs["unit"] = "words" if tokenizer is None else "tokens"
    return result
