"""Tests for lorakit.analysis: error-analysis tables on hand-made predictions with known answers."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from lorakit.analysis import (
    brier_score,
    calibration_bins,
    confusion,
    expected_calibration_error,
    fit_temperature,
    head_and_tail,
    highest_loss,
    length_buckets,
    load_predictions,
    text_lengths,
    top_confusions,
    with_temperature,
)
from lorakit.metrics import prediction_table

NAMES = ["sadness", "joy", "anger"]


def table_from_ids(labels, predictions, names=NAMES, confidence=None, loss=None, texts=None):
    """A prediction table with the columns prediction_table makes (probabilities left out)."""
    n = len(labels)
    return pd.DataFrame(
        {
            "text": texts if texts is not None else [f"text {i}" for i in range(n)],
            "label": [names[i] for i in labels],
            "prediction": [names[i] for i in predictions],
            "label_id": labels,
            "prediction_id": predictions,
            "confidence": confidence if confidence is not None else np.full(n, 0.9),
            "loss": loss if loss is not None else np.zeros(n),
        }
    )


def calibration_table(groups):
    """Examples at given confidences: groups is [(confidence, n, n_correct), ...]."""
    labels, predictions, confidence = [], [], []
    for conf, n, n_correct in groups:
        labels += [0] * n
        predictions += [0] * n_correct + [1] * (n - n_correct)
        confidence += [conf] * n
    return table_from_ids(labels, predictions, names=["neg", "pos"], confidence=confidence)


# Hand-worked three-class example: true → predicted
#   sadness: 3 right, 1 as joy            (support 4, 1 error)
#   joy:     1 right, 2 as sadness, 1 as anger (support 4, 3 errors)
#   anger:   2 right                      (support 2, 0 errors)
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
PREDICTIONS = [0, 0, 0, 1, 1, 0, 0, 2, 2, 2]


@pytest.fixture
def small():
    return table_from_ids(LABELS, PREDICTIONS)


# confusion


def test_confusion_counts_rows_true_columns_predicted_in_label_order(small):
    counts = confusion(small, NAMES)

    assert counts.index.tolist() == NAMES and counts.columns.tolist() == NAMES
    assert counts.to_numpy().tolist() == [[3, 1, 0], [2, 1, 1], [0, 0, 2]]
    assert counts.index.name == "true label" and counts.columns.name == "predicted label"


def test_confusion_normalised_by_true_label_gives_row_shares(small):
    shares = confusion(small, NAMES, normalize="true")

    np.testing.assert_allclose(shares.to_numpy(), [[0.75, 0.25, 0], [0.5, 0.25, 0.25], [0, 0, 1]])
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_confusion_of_a_class_without_examples_is_a_row_of_zeros_or_nan(small):
    names = [*NAMES, "fear"]
    assert confusion(small, names).loc["fear"].tolist() == [0, 0, 0, 0]
    assert confusion(small, names, normalize="true").loc["fear"].isna().all()


def test_confusion_works_from_label_names_when_id_columns_are_absent(small):
    names_only = small.drop(columns=["label_id", "prediction_id"])

    pd.testing.assert_frame_equal(confusion(names_only, NAMES), confusion(small, NAMES))


def test_confusion_rejects_an_unknown_normalize_and_unknown_labels(small):
    with pytest.raises(ValueError, match="normalize"):
        confusion(small, NAMES, normalize="rows")
    with pytest.raises(ValueError, match="'joy'"):
        confusion(small.drop(columns=["label_id", "prediction_id"]), ["sadness", "anger"])
    with pytest.raises(ValueError, match="class id"):
        confusion(small, ["sadness", "joy"])


def test_top_confusions_lists_the_most_frequent_mistakes_first(small):
    pairs = top_confusions(small, NAMES, n=2)

    assert pairs[["label", "prediction", "count"]].values.tolist() == [
        ["joy", "sadness", 2],
        ["sadness", "joy", 1],
    ]
    assert pairs["share_of_label"].tolist() == pytest.approx([0.5, 0.25])
    assert pairs["share_of_errors"].tolist() == pytest.approx([0.5, 0.25])


# highest loss


def test_highest_loss_overall_is_sorted_by_loss_descending():
    loss = [0.1, 2.0, 0.5, 3.0, 1.0, 0.05]
    table = table_from_ids([0, 0, 1, 1, 2, 2], [0, 1, 1, 0, 0, 2], loss=loss)

    top = highest_loss(table, n=3, per_class=False)

    assert top["loss"].tolist() == [3.0, 2.0, 1.0]
    assert top.index.tolist() == [3, 1, 4]  # original rows, to find them back in the table
    assert top.columns.tolist() == ["text", "label", "prediction", "confidence", "loss"]


def test_highest_loss_per_class_takes_the_top_n_of_each_true_label():
    loss = [0.1, 2.0, 0.7, 0.5, 3.0, 1.0, 0.05, 0.2]
    table = table_from_ids([0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 0, 1, 0, 0, 2, 2], loss=loss)

    top = highest_loss(table, n=2, per_class=True)

    assert top["label"].tolist() == ["sadness", "sadness", "joy", "joy", "anger", "anger"]
    assert top["loss"].tolist() == [2.0, 0.7, 3.0, 0.5, 1.0, 0.2]


def test_head_and_tail_keeps_the_first_and_last_words_of_a_long_text_only():
    long = " ".join(f"w{i}" for i in range(50))
    assert head_and_tail(long, head_words=2, tail_words=3) == "w0 w1 … w47 w48 w49"
    assert head_and_tail("a short review", head_words=2, tail_words=3) == "a short review"


# calibration


def test_ece_of_a_perfectly_calibrated_predictor_is_zero():
    table = calibration_table([(0.8, 100, 80), (0.6, 100, 60)])

    assert expected_calibration_error(table) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_predictor_is_the_gap():
    table = calibration_table([(0.9, 100, 60)])

    assert expected_calibration_error(table) == pytest.approx(0.3)


def test_ece_weights_each_bin_by_its_share_of_examples():
    # 0.9 with 60% right (gap 0.3) on 100 examples, 0.55 with 55% right (gap 0) on 300
    table = calibration_table([(0.9, 100, 60), (0.55, 300, 165)])

    assert expected_calibration_error(table) == pytest.approx(0.3 * 100 / 400)


def test_calibration_bins_are_equal_width_and_right_closed():
    # 0.8 belongs to (0.7, 0.8]; 0.85 to (0.8, 0.9]; 0 to the first bin; 1 to the last
    table = calibration_table([(0.8, 4, 3), (0.85, 2, 2), (0.0, 1, 0), (1.0, 1, 1)])

    bins = calibration_bins(table, n_bins=10)

    assert len(bins) == 10
    np.testing.assert_allclose(bins["lower"], np.arange(10) / 10)
    np.testing.assert_allclose(bins["upper"], np.arange(1, 11) / 10)
    assert bins["count"].tolist() == [1, 0, 0, 0, 0, 0, 0, 4, 2, 1]
    assert bins.loc[7, "accuracy"] == pytest.approx(0.75)
    assert bins.loc[7, "mean_confidence"] == pytest.approx(0.8)
    assert bins.loc[7, "gap"] == pytest.approx(-0.05)
    assert np.isnan(bins.loc[1, "accuracy"])
    assert bins["share"].sum() == pytest.approx(1.0)


def test_calibration_rejects_confidences_outside_zero_one():
    table = calibration_table([(0.9, 3, 2)])
    table.loc[0, "confidence"] = 3.5

    with pytest.raises(ValueError, match="3.5"):
        expected_calibration_error(table)


def test_calibration_of_a_real_prediction_table_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2, size=(200, 3))
    table = prediction_table([""] * 200, rng.integers(0, 3, 200), logits, NAMES)

    correct = (table["label_id"] == table["prediction_id"]).to_numpy()
    conf = table["confidence"].to_numpy()
    bin_of = np.clip(np.ceil(conf * 5).astype(int), 1, 5) - 1
    expected = sum(
        (bin_of == b).mean() * abs(correct[bin_of == b].mean() - conf[bin_of == b].mean())
        for b in range(5) if (bin_of == b).any()
    )
    assert expected_calibration_error(table, n_bins=5) == pytest.approx(expected)


# length buckets and truncation


def length_table():
    # word counts 2, 3, 5, 8, 10, 12; the two longest are wrong
    texts = [" ".join(["w"] * k) for k in (2, 3, 5, 8, 10, 12)]
    return table_from_ids([0] * 6, [0, 0, 0, 0, 1, 1], texts=texts,
                          loss=[0.1, 0.1, 0.1, 0.1, 2.0, 3.0])


def test_text_lengths_count_words_or_tokens():
    table = length_table()

    assert text_lengths(table).tolist() == [2, 3, 5, 8, 10, 12]
    chars = text_lengths(table, tokenizer=lambda text: list(text.replace(" ", "")))
    assert chars.name == "tokens" and chars.tolist() == [2, 3, 5, 8, 10, 12]


def test_text_lengths_use_a_transformers_tokenizer_with_special_tokens_and_no_truncation():
    class FakeTokenizer:
        model_input_names = ["input_ids", "attention_mask"]

        def __call__(self, texts, add_special_tokens, truncation, verbose):
            assert add_special_tokens and not truncation
            return {"input_ids": [[101, *range(len(t.split())), 102] for t in texts]}

    assert text_lengths(length_table(), FakeTokenizer()).tolist() == [4, 5, 7, 10, 12, 14]


def test_length_buckets_with_given_edges_are_right_closed():
    buckets = length_buckets(length_table(), edges=[0, 5, 10, math.inf])

    assert buckets["bucket"].tolist() == ["0–5", "6–10", ">10"]
    assert buckets["lower"].tolist() == [0, 6, 11]
    assert buckets["count"].tolist() == [3, 2, 1]
    assert buckets["correct"].tolist() == [3, 1, 0]
    np.testing.assert_allclose(buckets["accuracy"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(buckets["mean_loss"], [0.1, 1.05, 3.0])
    assert "truncated" not in buckets.columns
    assert buckets.attrs["unit"] == "words"


def test_length_buckets_split_at_max_length_and_flag_truncated_buckets():
    buckets = length_buckets(length_table(), edges=[0, 5, math.inf], max_length=9)

    assert buckets["bucket"].tolist() == ["0–5", "6–9", ">9"]
    assert buckets["count"].tolist() == [3, 1, 2]
    assert buckets["truncated"].tolist() == [False, False, True]
    np.testing.assert_allclose(buckets["accuracy"], [1.0, 1.0, 0.0])


def test_length_buckets_default_edges_cover_every_text_and_respect_max_length():
    buckets = length_buckets(length_table(), max_length=9, n_buckets=3)

    assert buckets["count"].sum() == 6
    assert (buckets["upper"] == 9).any()  # max_length is an edge
    assert buckets.loc[buckets["truncated"], "count"].sum() == 2


def test_length_buckets_reject_edges_that_leave_texts_out():
    with pytest.raises(ValueError, match="math.inf"):
        length_buckets(length_table(), edges=[0, 5, 10])


# loading and errors


def test_load_predictions_reads_a_run_directory(tmp_path):
    rng = np.random.default_rng(1)
    texts = ["NA", "null", "", "a good film"]  # strings pandas would otherwise read as missing
    table = prediction_table(texts, [0, 1, 1, 0], rng.normal(size=(4, 2)), ["neg", "pos"])
    table.to_csv(tmp_path / "predictions.csv", index=False)
    (tmp_path / "config.json").write_text(json.dumps({"label_names": ["neg", "pos"]}))

    loaded, names = load_predictions(tmp_path)

    assert names == ["neg", "pos"]
    assert loaded["text"].tolist() == texts
    pd.testing.assert_frame_equal(confusion(loaded, names), confusion(table, names))


def test_load_predictions_takes_label_names_from_prob_columns_without_config(tmp_path):
    table = prediction_table(["x"], [0], [[0.0, 1.0, 2.0]], NAMES)
    table.to_csv(tmp_path / "predictions.csv", index=False)

    assert load_predictions(tmp_path)[1] == NAMES
    with pytest.raises(FileNotFoundError, match="predictions.csv"):
        load_predictions(tmp_path / "missing")


def test_missing_columns_are_named_and_empty_tables_rejected(small):
    with pytest.raises(ValueError, match=r"\['loss'\]"):
        highest_loss(small.drop(columns="loss"))
    with pytest.raises(ValueError, match=r"\['confidence'\]"):
        calibration_bins(small.drop(columns="confidence"))
    with pytest.raises(ValueError, match="label_id and prediction_id, or label and prediction"):
        confusion(small[["text"]], NAMES)
    with pytest.raises(ValueError, match="empty"):
        confusion(small.iloc[:0], NAMES)
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error(small.iloc[:0])
    with pytest.raises(TypeError, match=r"table=\[1, 2\] has type list: use a pandas DataFrame"):
        confusion([1, 2], NAMES)


def test_brier_score_worked_by_hand_and_blind_spot_of_the_ece():
    names = ["neg", "pos"]
    logits = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    table = prediction_table(["a", "b", "c"], [0, 1, 1], logits, names)
    by_hand = ((0.9 - 1) ** 2 + 0.1**2 + 0.2**2 + (0.8 - 1) ** 2 + 0.6**2 + (0.4 - 1) ** 2) / 3
    assert brier_score(table, names) == pytest.approx(by_hand, abs=1e-12)
    # Always the base rate (3 of 4 positive): calibrated, so ECE 0, and still a poor forecast.
    base_rate = np.log(np.tile([0.25, 0.75], (4, 1)))
    constant = prediction_table(list("wxyz"), [1, 1, 1, 0], base_rate, names)
    assert expected_calibration_error(constant) == pytest.approx(0.0, abs=1e-12)
    assert brier_score(constant, names) == pytest.approx(0.375, abs=1e-12)  # 2 × 0.75 × 0.25


# temperature scaling


def overconfident_logits(temperature=2.5, n=4000, classes=4, seed=0):
    """Labels drawn from softmax(z), logits reported as z * temperature: too sure by that factor."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, classes))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return z * temperature, labels


def test_fit_temperature_recovers_the_factor_a_model_is_overconfident_by():
    logits, labels = overconfident_logits(temperature=2.5)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.1)
    calibrated, labels = overconfident_logits(temperature=1.0, seed=1)
    assert fit_temperature(calibrated, labels) == pytest.approx(1.0, rel=0.1)


def test_with_temperature_keeps_predictions_and_lowers_the_loss_of_an_overconfident_model():
    logits, labels = overconfident_logits(temperature=2.5, n=600, classes=3)
    table = prediction_table([f"t{i}" for i in range(600)], labels, logits, NAMES)
    temperature = fit_temperature(logits, labels)

    rescaled = with_temperature(table, NAMES, temperature)

    assert rescaled["prediction_id"].tolist() == table["prediction_id"].tolist()
    expected = prediction_table(table["text"], labels, logits / temperature, NAMES)
    np.testing.assert_allclose(rescaled["loss"], expected["loss"], rtol=1e-9, atol=1e-12)
    assert rescaled["loss"].mean() < table["loss"].mean()
    assert expected_calibration_error(rescaled) < expected_calibration_error(table)
    assert with_temperature(table, NAMES, 1.0)["loss"].to_numpy() == pytest.approx(
        table["loss"].to_numpy(), rel=1e-9)


def test_temperature_rejects_a_bad_temperature_and_mismatched_logits():
    table = prediction_table(["a", "b"], [0, 1], np.eye(3)[:2], NAMES)
    with pytest.raises(ValueError, match="temperature=0"):
        with_temperature(table, NAMES, 0)
    with pytest.raises(ValueError, match="3 labels"):
        fit_temperature(np.zeros((2, 3)), [0, 1, 2])
