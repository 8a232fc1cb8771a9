"""Tests for lorakit.plots: each function draws a titled Figure from small synthetic data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lorakit import analysis, plots  # noqa: E402
from lorakit.metrics import prediction_table  # noqa: E402

NAMES = ["sadness", "joy", "love"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def title_of(fig: Figure) -> str:
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return suptitle or fig.axes[0].get_title()


def check(fig) -> Figure:
    assert isinstance(fig, Figure)
    assert title_of(fig).strip()
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
    return fig


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    texts = [" ".join(["word"] * int(k)) for k in rng.integers(1, 200, size=60)]
    return prediction_table(texts, rng.integers(0, 3, 60), rng.normal(scale=2, size=(60, 3)),
                            NAMES)


def log_history(shift: float = 0.0) -> pd.DataFrame:
    nan = np.nan
    return pd.DataFrame({
        "step": [10, 20, 20, 30, 40, 40, 40],
        "epoch": [0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.0],
        "loss": [1.2 + shift, 0.9 + shift, nan, 0.7 + shift, 0.6 + shift, nan, nan],
        "eval_loss": [nan, nan, 0.8 + shift, nan, nan, 0.65 + shift, nan],
        "eval_accuracy": [nan, nan, 0.7, nan, nan, 0.8, nan],
        "eval_macro_f1": [nan, nan, 0.6, nan, nan, 0.75, nan],
        "train_loss": [nan] * 6 + [0.8],
    })


def test_training_curves_show_loss_and_eval_panels_for_each_run():
    fig = check(plots.training_curves({"lora": log_history(), "full": log_history(0.1)},
                                      title="IMDB, two methods"))

    assert fig.get_suptitle() == "IMDB, two methods"  # the caller's title, not a panel's
    assert [ax.get_title() for ax in fig.axes] == [
        "Training loss", "Evaluation loss", "Evaluation accuracy and macro-F1 (dashed)"
    ]
    assert len(fig.axes[0].lines) == 2
    epoch_ticks = fig.axes[1].get_xticks()
    assert np.array_equal(epoch_ticks, np.round(epoch_ticks))  # whole epochs, no 1.25


def test_training_curves_without_eval_logs_draw_only_the_loss_panel():
    history = log_history()[["step", "epoch", "loss"]]
    fig = check(plots.training_curves(history))

    assert len(fig.axes) == 1


def test_training_curves_smooth_the_loss_over_the_steps_asked_for():
    fig = check(plots.training_curves(log_history(), panels=("loss",), smooth=2))

    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx([1.2, 1.05, 0.8, 0.65])  # pairs of 4 losses
    assert "moving average over 2 steps" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="smooth=0"):
        plots.training_curves(log_history(), smooth=0)


def test_label_balance_from_a_dict_a_series_and_a_splits_frame():
    check(plots.label_balance({"neg": 12, "pos": 8}, title="IMDB labels"))
    check(plots.label_balance(pd.Series([5, 9, 2], index=NAMES)))
    splits = pd.DataFrame({"train": [5, 9, 2], "test": [2, 3, 1]}, index=NAMES)
    check(plots.label_balance(splits))


def test_label_balance_of_six_labels_in_three_splits_fits_a_notebook_page():
    counts = pd.DataFrame({split: range(1, 7) for split in ("train", "validation", "test")},
                          index=[f"label {i}" for i in range(6)])
    fig = check(plots.label_balance(counts))

    assert fig.get_size_inches()[0] == plots.MAX_WIDTH_INCHES  # 18 bars would ask for 18.2


def test_per_class_f1_labels_every_bar_and_names_each_class_with_its_support():
    scores = pd.DataFrame({"LoRA": [0.9, 0.0, 0.5], "head only": [0.8, 0.0, 0.25]}, index=NAMES)
    fig = check(plots.per_class_f1(scores, {"sadness": 40, "joy": 52, "love": 4}))

    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sadness (40)", "joy (52)", "love (4)"]
    values = [t.get_text() for t in ax.texts]  # a bar of height 0 still says 0.00
    assert values == ["0.90", "0.00", "0.50", "0.80", "0.00", "0.25"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LoRA", "head only"]


def test_per_class_f1_names_a_class_without_support():
    scores = pd.DataFrame({"LoRA": [0.9, 0.1, 0.5]}, index=NAMES)
    with pytest.raises(ValueError, match=r"no count for \['love'\]"):
        plots.per_class_f1(scores, {"sadness": 40, "joy": 52})


def test_length_histogram_marks_max_length():
    fig = check(plots.length_histogram([10, 50, 120, 300, 80], max_length=128, title="Lengths"))

    assert any("truncated" in text.get_text() for text in fig.axes[0].get_legend().get_texts())


def test_confusion_heatmap_writes_each_share_over_its_count(predictions):
    counts = analysis.confusion(predictions, NAMES)
    fig = check(plots.confusion_heatmap(counts))
    row_sums = counts.sum(axis=1).to_numpy()
    expected = [f"{count / row_sums[i]:.0%}\n({count})" if row_sums[i] else "–"
                for i, row in enumerate(counts.to_numpy()) for count in row]
    assert [text.get_text() for text in fig.axes[0].texts] == expected
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == [f"{name} (n={n})" for name, n in zip(NAMES, row_sums, strict=True)]
    shares_only = check(plots.confusion_heatmap(analysis.confusion(predictions, NAMES, "true")))
    assert all("(" not in text.get_text() for text in shares_only.axes[0].texts)


def test_error_analysis_figures(predictions):
    check(plots.confusion_heatmap(analysis.confusion(predictions, NAMES)))
    bins = analysis.calibration_bins(predictions)
    fig = check(plots.reliability_diagram(bins, analysis.expected_calibration_error(predictions)))
    assert "ECE" in fig.axes[0].get_title()
    over = bins["count"].gt(0) & bins["mean_confidence"].gt(bins["accuracy"])
    legend = {text.get_text() for text in fig.axes[0].get_legend().get_texts()}
    assert {"overconfident: accuracy below confidence", "underconfident: accuracy above it"} \
        <= legend
    red = [bar for bar in fig.axes[0].patches if bar.get_hatch() == "//"
           and bar.get_edgecolor()[:3] == matplotlib.colors.to_rgb("crimson")]
    assert len(red) == over.sum()  # one red gap per overconfident bin
    buckets = analysis.length_buckets(predictions, max_length=100)
    fig = check(plots.accuracy_by_length(buckets))
    assert fig.axes[0].get_xlabel() == "text length (words)"
    check(plots.accuracy_by_length(analysis.length_buckets(predictions)))


def test_plots_reject_empty_data():
    with pytest.raises(ValueError, match="no log histories"):
        plots.training_curves({})


def test_settings_comparison_draws_one_bar_per_setting_in_each_panel_with_seed_ranges():
    table = pd.DataFrame({"setting": ["q+v", "every linear", "full"],
                          "macro_f1": [0.90, 0.93, 0.80], "macro_f1_low": [0.88, 0.90, 0.80],
                          "macro_f1_high": [0.92, 0.95, 0.80],
                          "trainable_parameters": [224_000, 482_000, 22_700_000],
                          "train_seconds": [9.2, 12.4, 19.3]})
    fig = check(plots.settings_comparison(table, metrics=("macro_f1", "trainable_parameters",
                                                          "train_seconds")))
    assert len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(table["setting"])
    assert [len(ax.patches) for ax in fig.axes] == [0, 3, 3]  # ranges are dots, not bars
    assert fig.axes[1].get_xscale() == "log"  # parameter counts span orders of magnitude
    labels = [t.get_text().strip() for t in fig.axes[1].texts]
    assert labels == ["224k", "482k", "22.7M"]
    low, high = fig.axes[0].get_xlim()
    assert 0.7 < low < 0.8 and 0.95 < high < 1.1  # zoomed to the ranges 0.80-0.95
    assert len(fig.axes[2].collections) == 0  # no ranges: plain bars
    with pytest.raises(ValueError, match="saved_mb"):
        plots.settings_comparison(table, metrics=("saved_mb",))


def test_a_count_of_zero_keeps_the_log_axis_and_is_labelled_at_its_left_end():
    table = pd.DataFrame({"method": ["LoRA", "head only", "IA³", "full"],
                          "beyond_head": [258_048, 0, 13_824, 22_564_608]})
    ax = check(plots.settings_comparison(table, metrics=("beyond_head",), label="method")).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "trained beyond the head"
    left, _ = ax.get_xlim()
    assert left == pytest.approx(13_824 / 3)  # the smallest count other than 0 shows
    labels = {t.get_text().strip(): t.get_position()[0] for t in ax.texts}
    assert labels == {"258k": 258_048, "0": left, "13.8k": 13_824, "22.6M": 22_564_608}


def test_rate_curves_draw_a_line_per_group_and_panel_with_each_best_circled():
    grid = pd.DataFrame([
        {"scaling": scaling, "r": r, "lr": lr, "val_macro_f1": score}
        for scaling, scores in (("α/r", {2: (0.5, 0.8, 0.7), 32: (0.4, 0.6, 0.9)}),
                                ("α/√r", {2: (0.6, 0.9, 0.7), 32: (0.8, 0.7, 0.3)}))
        for r, by_rate in scores.items()
        for lr, score in zip((9e-3, 3e-3, 1e-3), by_rate[::-1], strict=True)])  # high rate first
    fig = check(plots.rate_curves(grid, group="r", panel="scaling",
                                  title="Best rate against rank"))
    assert [ax.get_title() for ax in fig.axes] == ["scaling α/r", "scaling α/√r"]
    for ax, best in zip(fig.axes, ([(3e-3, 0.8), (9e-3, 0.9)], [(3e-3, 0.9), (1e-3, 0.8)]),
                        strict=True):
        assert ax.get_xscale() == "log"
        assert len(ax.get_lines()) == 2  # one line per rank
        circled = [tuple(float(v) for v in c.get_offsets()[0]) for c in ax.collections]
        assert circled == best  # each line's highest point, in rank order
        assert list(ax.get_lines()[0].get_xdata()) == [1e-3, 3e-3, 9e-3]  # sorted by rate
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["2", "32"]
    one_panel = check(plots.rate_curves(grid[grid["scaling"] == "α/r"], group="r"))
    assert len(one_panel.axes) == 1
    with pytest.raises(ValueError, match="lr"):
        plots.rate_curves(grid.drop(columns="lr"), group="r")


def test_percent_ticks_are_round_numbers_where_the_axis_prints_whole_percents():
    rates = pd.DataFrame({"method": ["LoRA"] * 3 + ["full"] * 2,
                          "lr": [1e-3, 3e-3, 9e-3, 2e-4, 6e-4],
                          "val_macro_f1": [0.767, 0.937, 0.910, 0.874, 0.774]})
    fig = plots.rate_curves(rates)
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_yticks() if 0.75 <= t <= 0.95]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all(round(100 * t, 6).is_integer() for t in ticks)  # no 82.5% shown as "82%"
    assert len(set(labels)) == len(labels)
