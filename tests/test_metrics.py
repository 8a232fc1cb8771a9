"""Tests for lorakit.metrics: scores against hand-worked answers, probabilities, loss."""

import dataclasses
import json
import math
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

from lorakit.metrics import (
    bootstrap_interval,
    choose,
    classification_metrics,
    compare,
    comparison_table,
    log_softmax,
    mcnemar_exact,
    paired_difference_interval,
    prediction_table,
    seed_spread,
    tied,
    trainer_compute_metrics,
)

NAMES = ["neg", "pos"]


def random_logits(n: int = 50, c: int = 6, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=(n, c))


# classification_metrics


def test_accuracy_and_macro_f1_of_a_small_binary_confusion():
    # neg: TP 2, FP 1, FN 0 → F1 = 2·(2/3)·1 / (2/3 + 1) = 0.8; pos: TP 1, FP 0, FN 1 → F1 = 2/3
    scores = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], NAMES)

    assert scores["accuracy"] == pytest.approx(3 / 4)
    assert scores["per_class_f1"] == pytest.approx({"neg": 0.8, "pos": 2 / 3})
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert scores["per_class_support"] == {"neg": 2, "pos": 2}


def test_macro_f1_of_a_three_class_confusion_worked_by_hand():
    # a: P 1/2, R 1/2 → 0.5;  b: P 2/3, R 1 → 0.8;  c: P 1, R 1/2 → 2/3
    scores = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c"])

    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["per_class_f1"] == pytest.approx({"a": 0.5, "b": 0.8, "c": 2 / 3})
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_a_class_never_seen_nor_predicted_counts_as_f1_zero_in_the_macro_average():
    scores = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos", "unused"])

    assert scores["per_class_f1"]["unused"] == 0.0
    assert scores["per_class_support"]["unused"] == 0
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)


def test_metrics_are_plain_python_numbers_that_json_can_write():
    labels = np.array([0, 1, 1, 0], dtype=np.int32)
    scores = classification_metrics(labels, torch.tensor([0, 1, 0, 0]), NAMES)

    assert type(scores["accuracy"]) is float and type(scores["macro_f1"]) is float
    assert all(type(v) is float for v in scores["per_class_f1"].values())
    assert all(type(v) is int for v in scores["per_class_support"].values())
    assert json.loads(json.dumps(scores)) == scores


def test_metrics_agree_with_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 6, 200), rng.integers(0, 6, 200)
    scores = classification_metrics(labels, predictions, [f"c{i}" for i in range(6)])

    assert scores["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert scores["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro"))


def test_metrics_reject_lists_of_different_lengths():
    with pytest.raises(ValueError, match=r"lengths differ \(labels: 3, predictions: 2\)"):
        classification_metrics([0, 1, 1], [0, 1], NAMES)


def test_metrics_reject_a_class_id_without_a_name():
    with pytest.raises(ValueError, match=r"predictions contain class id 2, outside 0\.\.1"):
        classification_metrics([0, 1], [0, 2], NAMES)


def test_metrics_reject_label_names_given_as_strings_instead_of_ids():
    with pytest.raises(ValueError, match="integer class ids"):
        classification_metrics(["neg", "pos"], [0, 1], NAMES)


def test_metrics_reject_empty_inputs():
    with pytest.raises(ValueError, match="at least one example"):
        classification_metrics([], [], NAMES)


# Log-probabilities


def test_log_softmax_accepts_a_half_precision_torch_tensor():
    logits = torch.tensor([[1.0, 2.0]], dtype=torch.bfloat16)

    np.testing.assert_allclose(np.exp(log_softmax(logits)).sum(), 1.0)


def test_log_softmax_is_stable_for_huge_logits():
    np.testing.assert_allclose(log_softmax(np.array([[1000.0, 0.0]])), [[0.0, -1000.0]])


def test_log_softmax_rejects_a_single_row_without_a_batch_dimension():
    with pytest.raises(ValueError, match=r"expected \(N, C\).*logits\[None, :\]"):
        log_softmax(np.array([0.1, 0.9]))


# prediction_table


def small_table() -> pd.DataFrame:
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.0]])
    return prediction_table(["good", "bad", "fine", "meh"], [0, 1, 1, 0], logits, NAMES)


def test_prediction_table_has_names_ids_probabilities_and_loss():
    table = small_table()

    assert list(table.columns) == [
        "text", "label", "prediction", "label_id", "prediction_id", "confidence",
        "prob_neg", "prob_pos", "loss",
    ]
    assert table["label"].tolist() == ["neg", "pos", "pos", "neg"]
    assert table["prediction"].tolist() == ["neg", "pos", "neg", "neg"]
    assert table["prediction_id"].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(table["prob_neg"] + table["prob_pos"], 1.0)
    np.testing.assert_allclose(table["confidence"], table[["prob_neg", "prob_pos"]].max(axis=1))
    # "fine" is labelled pos with p(pos) = 1 / (1 + e): loss = log(1 + e)
    assert table.loc[2, "loss"] == pytest.approx(np.log1p(np.e))


def test_per_example_loss_equals_torch_cross_entropy():
    logits = random_logits(n=64, c=6, seed=3, scale=10.0)
    labels = np.random.default_rng(4).integers(0, 6, 64)
    table = prediction_table([f"t{i}" for i in range(64)], labels, logits, list("abcdef"))

    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(labels), reduction="none")
    np.testing.assert_allclose(table["loss"], expected.numpy(), rtol=0, atol=1e-6)


def test_per_example_loss_is_finite_for_a_confidently_wrong_huge_logit():
    table = prediction_table(["x"], [0], np.array([[0.0, 1000.0]]), NAMES)

    assert table.loc[0, "loss"] == pytest.approx(1000.0)


def test_prediction_table_rejects_logits_with_the_wrong_number_of_classes():
    with pytest.raises(ValueError, match=r"logits have 3 columns but there are 2 label names"):
        prediction_table(["a", "b"], [0, 1], np.zeros((2, 3)), NAMES)


def test_prediction_table_rejects_texts_and_logits_of_different_lengths():
    with pytest.raises(ValueError, match=r"texts: 3, labels: 2, logits: 2"):
        prediction_table(["a", "b", "c"], [0, 1], np.zeros((2, 2)), NAMES)


def test_prediction_table_rejects_repeated_label_names():
    with pytest.raises(ValueError, match="repeat a name"):
        prediction_table(["a"], [0], np.zeros((1, 2)), ["pos", "pos"])


# the Trainer hook


def test_trainer_compute_metrics_takes_an_eval_prediction_with_a_tuple_of_outputs():
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.0]])
    hidden = np.zeros((4, 5, 8))
    labels = np.array([0, 1, 1, 0])

    from_tuple = trainer_compute_metrics(EvalPrediction((logits, hidden), labels))
    from_array = trainer_compute_metrics(EvalPrediction(logits, labels))

    assert from_tuple == from_array
    assert from_tuple == pytest.approx({"accuracy": 0.75, "macro_f1": (0.8 + 2 / 3) / 2})
    assert all(type(v) is float for v in from_tuple.values())


def test_trainer_compute_metrics_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="lengths differ"):
        trainer_compute_metrics(EvalPrediction(np.zeros((3, 2)), np.array([0, 1])))


def test_bootstrap_interval_recomputes_each_resample_like_scikit_learn():
    rng = np.random.default_rng(3)
    labels, predictions = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    predictions[:30] = labels[:30]  # half right by construction, the rest by chance
    draws = np.random.default_rng(7).integers(0, 60, size=(200, 60))  # the function's own draws
    for metric, score in (("accuracy", lambda t, p: accuracy_score(t, p)),
                          ("macro_f1", lambda t, p: f1_score(t, p, labels=range(4),
                                                             average="macro", zero_division=0))):
        values = [score(labels[d], predictions[d]) for d in draws]
        expected = tuple(np.quantile(values, [0.05, 0.95]))
        got = bootstrap_interval(labels, predictions, 4, metric, resamples=200, confidence=0.9,
                                 seed=7)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        point = score(labels, predictions)
        assert got[0] <= point <= got[1] and got[1] - got[0] > 0.05, (metric, got, point)


def test_bootstrap_interval_narrows_with_more_examples_and_is_a_point_when_all_are_right():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 2500):
        labels = rng.integers(0, 2, n)
        predictions = np.where(rng.random(n) < 0.8, labels, 1 - labels)  # about 80% right
        low, high = bootstrap_interval(labels, predictions, 2)
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # 25x the examples: about 1/5 the width
    assert bootstrap_interval([0, 1, 1], [0, 1, 1], 2) == (1.0, 1.0)


def test_bootstrap_interval_rejects_an_unknown_metric_and_a_confidence_above_one():
    with pytest.raises(ValueError, match="metric='f1'"):
        bootstrap_interval([0, 1], [0, 1], 2, "f1")
    with pytest.raises(ValueError, match="confidence=95"):
        bootstrap_interval([0, 1], [0, 1], 2, confidence=95)


def macro_f1(labels, predictions, num_classes):
    return f1_score(labels, predictions, labels=range(num_classes), average="macro",
                    zero_division=0)


def test_paired_difference_interval_scores_both_runs_on_the_same_draws():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 80)
    a = np.where(rng.random(80) < 0.85, labels, rng.integers(0, 3, 80))
    b = np.where(rng.random(80) < 0.7, labels, rng.integers(0, 3, 80))
    draws = np.random.default_rng(2).integers(0, 80, size=(300, 80))  # the function's own draws
    for metric, score in (("accuracy", lambda t, p: accuracy_score(t, p)),
                          ("macro_f1", lambda t, p: macro_f1(t, p, 3))):
        differences = [score(labels[d], a[d]) - score(labels[d], b[d]) for d in draws]
        got = paired_difference_interval(labels, a, b, 3, metric, resamples=300, seed=2)
        assert got[0] == pytest.approx(score(labels, a) - score(labels, b), abs=1e-12)
        np.testing.assert_allclose(got[1:], np.quantile(differences, [0.025, 0.975]), atol=1e-12)


def test_a_paired_interval_sees_a_difference_that_two_overlapping_intervals_hide():
    labels = np.array([0, 1] * 60)
    b = labels.copy()
    b[:30] = 1 - labels[:30]  # b: 90 of 120 right
    a = b.copy()
    a[:8] = labels[:8]  # a: the same answers, and 8 of b's mistakes fixed
    (a_low, a_high), (b_low, b_high) = (bootstrap_interval(labels, p, 2) for p in (a, b))
    assert a_low < b_high  # the separate intervals overlap
    difference, low, high = paired_difference_interval(labels, a, b, 2)
    assert difference == pytest.approx(8 / 120) and low > 0  # the paired one excludes 0
    assert paired_difference_interval(labels, a, a, 2) == (0.0, 0.0, 0.0)


def test_mcnemar_exact_counts_the_disagreements_and_tests_them_against_a_fair_coin():
    right_a = np.array([True] * 10 + [False] * 2 + [True] * 20)
    right_b = np.array([False] * 10 + [True] * 2 + [True] * 20)
    only_a, only_b, p = mcnemar_exact(right_a, right_b)
    assert (only_a, only_b) == (10, 2)
    assert p == pytest.approx(2 * sum(math.comb(12, k) for k in range(3)) / 2**12)  # 0.0386
    assert mcnemar_exact(right_a, right_a) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        mcnemar_exact([True, False], [True])


# seed_spread and tied


def test_seed_spread_is_the_range_of_a_settings_scores():
    assert seed_spread([0.93, 0.96, 0.95]) == pytest.approx(0.03)
    assert seed_spread([0.9]) == 0.0


def test_a_difference_inside_the_seed_spread_is_a_tie_and_one_outside_is_not():
    default = [0.93, 0.96, 0.95]  # mean 0.9467, spread 0.03
    assert tied(default, [0.92])  # 0.0267 below the mean
    assert not tied(default, [0.90])  # 0.0467 below
    assert tied([0.90], default) == tied(default, [0.90])  # symmetric
    assert not tied([0.80, 0.81], [0.90, 0.91])  # both spreads 0.01, means 0.1 apart


def test_seed_checks_refuse_what_says_nothing_about_the_seed():
    with pytest.raises(ValueError, match="one score per seed"):
        seed_spread([])
    with pytest.raises(ValueError, match="2 or more seeds"):
        tied([0.9], [0.8])
    with pytest.raises(ValueError, match="yardstick"):
        tied([0.9], [0.8], yardstick=-0.1)


def test_two_single_seed_settings_are_compared_against_a_yardstick_spread():
    assert tied([0.90], [0.92], yardstick=0.03)
    assert not tied([0.90], [0.95], yardstick=0.03)
    assert not tied([0.90, 0.905], [0.95], yardstick=0.5)  # a measured spread comes first


# --- the series' comparison rule ---------------------------------------------------------------

def seed_table(labels, right):
    """A prediction table whose prediction is the label where ``right``, another class else."""
    labels = np.asarray(labels)
    wrong_class = (labels + 1) % (labels.max() + 1)
    return pd.DataFrame({"label_id": labels, "prediction_id": np.where(right, labels, wrong_class)})


def seeds_right(accuracies, n=200, rng=0):
    """One boolean row per seed: which of ``n`` examples that seed gets right, at random."""
    generator = np.random.default_rng(rng)
    return [generator.random(n) < accuracy for accuracy in accuracies]


def test_a_noisy_method_does_not_tie_with_everything():
    labels = np.arange(200) % 2
    steady = [seed_table(labels, right) for right in seeds_right([0.9, 0.9, 0.9], rng=1)]
    noisy = [seed_table(labels, right) for right in seeds_right([0.55, 0.95, 0.7], rng=2)]
    verdict = compare(steady, noisy, "accuracy", names=("steady", "noisy"))
    assert verdict.verdict == "better" and verdict.p_value < 0.05
    assert compare(noisy, steady, "accuracy").verdict == "worse"


def test_a_small_loss_on_every_seed_is_worse_when_the_seeds_are_pooled():
    labels = np.arange(120) % 2
    base = np.ones(120, dtype=bool)
    base[:30] = False  # both miss the first 30
    winner, loser = [], []
    for seed in range(3):  # per seed the loser misses 6 more and gets 1 the winner misses
        right_w, right_l = base.copy(), base.copy()
        right_l[30 + 10 * seed: 36 + 10 * seed] = False
        right_w[100 + seed] = False
        winner.append(seed_table(labels, right_w))
        loser.append(seed_table(labels, right_l))
    one_seed = compare(loser[:1], winner[:1], "accuracy")
    assert (one_seed.only_a, one_seed.only_b) == (1, 6)
    assert one_seed.verdict == "cannot tell apart"  # p = 0.125 on 7 discordant examples
    pooled = compare(loser, winner, "accuracy", names=("loser", "winner"))
    assert (pooled.only_a, pooled.only_b) == (3, 18) and pooled.verdict == "worse"
    assert "loser is worse" in pooled.sentence() and "McNemar p = " in pooled.sentence()


def test_macro_f1_is_compared_by_a_paired_interval_over_the_examples():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 10)
    good = pd.DataFrame({"label_id": labels, "prediction_id": labels})
    no_rare = good.assign(prediction_id=np.where(labels == 2, 0, labels))  # never says 2
    verdict = compare([good], [no_rare], "macro_f1", "test", names=("all", "no rare class"))
    assert verdict.verdict == "better" and verdict.low > 0
    assert "95% paired interval" in verdict.sentence()
    same = compare([good], [good.copy()], "macro_f1")
    assert same.verdict == "cannot tell apart" and same.low == same.high == 0
    assert "95% paired interval 0 to 0 points" in same.sentence()  # "+0.0" would read as above 0


def test_comparison_table_puts_each_comparisons_scores_evidence_and_verdict_in_a_row():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 10)
    good = pd.DataFrame({"label_id": labels, "prediction_id": labels})
    no_rare = good.assign(prediction_id=np.where(labels == 2, 0, labels))
    by_f1 = compare([good], [no_rare], "macro_f1", names=("all", "no rare class"))
    same = compare([good], [good.copy()], "macro_f1", names=("all", "all again"))
    by_accuracy = compare([no_rare], [good], "accuracy", names=("no rare class", "all"))
    table = comparison_table([by_f1, same])

    assert list(table.index) == ["all against no rare class", "all against all again"]
    assert table.loc["all against all again", "evidence"] == "0 to 0"  # contains 0: no verdict
    assert table.loc["all against all again", "verdict"] == "cannot tell apart"
    assert table.loc["all against no rare class", "verdict"] == "better"
    assert table["difference (points)"].iloc[0] == f"{100 * by_f1.difference:+.1f}"
    assert comparison_table([by_accuracy])["evidence"].iloc[0].startswith("McNemar p = ")
    with pytest.raises(ValueError, match="no comparisons"):
        comparison_table([])


def test_a_bound_that_rounds_to_zero_still_says_its_side():
    verdict = compare([pd.DataFrame({"label_id": [0, 1], "prediction_id": [0, 1]})],
                      [pd.DataFrame({"label_id": [0, 1], "prediction_id": [0, 1]})], "macro_f1")
    near_zero = dataclasses.replace(verdict, low=0.0002, high=0.014)  # 0.02 points above 0
    assert "95% paired interval +0.02 to +1.4 points" in near_zero.sentence()


def test_compare_refuses_other_examples_or_other_seeds():
    table = seed_table(np.arange(10) % 2, np.ones(10, dtype=bool))
    with pytest.raises(ValueError, match="same seeds"):
        compare([table, table], [table])
    with pytest.raises(ValueError, match="different examples"):
        compare([table], [table.iloc[::-1].reset_index(drop=True)])


def test_seeds_may_hold_other_examples_as_long_as_each_pair_shares_them():
    # IMDB carves its validation split with the run's seed: seed 1's examples are not seed 0's
    first, second = np.arange(40) % 2, (np.arange(40) + 1) % 2
    right = np.ones(40, dtype=bool)
    a = [seed_table(first, right), seed_table(second, right)]
    b = [seed_table(first, ~right), seed_table(second, ~right)]
    assert compare(a, b, "accuracy").verdict == "better"
    assert compare(a, b, "macro_f1").verdict == "better"


def test_choose_takes_the_cheapest_of_what_the_best_cannot_be_told_apart_from():
    labels = np.arange(300) % 3
    big = seeds_right([0.9, 0.9, 0.9], n=300, rng=3)
    small = [right.copy() for right in big]
    for right in small:  # two more mistakes and one fewer than big's, seed by seed
        right[np.flatnonzero(right)[:2]] = False
        right[np.flatnonzero(~right)[-1]] = True
    broken = seeds_right([0.5, 0.55, 0.52], n=300, rng=4)
    candidates = {name: [seed_table(labels, right) for right in rows]
                  for name, rows in (("big", big), ("small", small), ("broken", broken))}
    choice = choose(candidates, cost={"big": 1000, "small": 10, "broken": 1}, metric="accuracy")
    assert choice.best == "big" and set(choice.tied) == {"big", "small"}
    assert choice.chosen == "small" and choice.comparisons["broken"].verdict == "worse"
    assert "cheapest" in choice.sentence() and "broken is worse" in choice.sentence()
    cheap_best = choose(candidates, cost={"big": 1, "small": 10, "broken": 100},
                        metric="accuracy")
    assert cheap_best.chosen == "big" and set(cheap_best.tied) == {"big", "small"}
    assert "The best is also the cheapest of those (1 trainable parameters), so big is chosen" \
        in cheap_best.sentence()
    beyond_head = choose(candidates, cost={"big": 1000, "small": 10, "broken": 1},
                         metric="accuracy", cost_unit="trained beyond the head")
    assert "The cheapest of those, small (10 trained beyond the head), is chosen" \
        in beyond_head.sentence()


def test_choose_leaves_out_a_diverged_candidate_and_says_so():
    labels = np.arange(60) % 2
    table = seed_table(labels, np.ones(60, dtype=bool))
    diverged = types.SimpleNamespace(run_dir=Path("lora-lr1"), diverged=True)
    choice = choose({"fine": [table], "lr 1": [diverged]}, cost={"fine": 1, "lr 1": 1})
    assert choice.chosen == "fine" and choice.diverged == ["lr 1"]
    assert "Diverged, so left out: lr 1" in choice.sentence()
