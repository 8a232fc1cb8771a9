"""The figures notebooks 04–08 show: data overview, training curves, results, settings side by side,
error analysis.

Every function takes data (DataFrames, Series, dicts) and returns a ``matplotlib.figure.Figure``
with a title and labelled axes; none calls ``plt.show()``. The figures are made through pyplot,
so Jupyter draws them at the end of the cell; end the cell with ``plt.show()`` (or with ``;``)
so that a returned figure is not drawn twice, and in a script call ``fig.savefig(path)``. Close
figures you no longer need with ``plt.close(fig)``.

Shares and accuracies are fractions in [0, 1] (as ``lorakit.report`` and ``lorakit.analysis``
give them) and are shown as percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter

from lorakit.checks import require_type

PERCENT_METRICS = ("accuracy", "macro_f1", "val_macro_f1", "trainable_percent")
# A notebook's figure fits its page: about 1,100 pixels at the default 100 dpi.
MAX_WIDTH_INCHES = 11.0

METRIC_LABELS = {
    "accuracy": "test accuracy",  # report's and metrics.json's scores are the test split's
    "macro_f1": "test macro-F1",
    "val_macro_f1": "validation macro-F1",
    "trainable_parameters": "trainable parameters",
    "trainable_percent": "trainable parameters (% of total)",
    "train_seconds": "training time (s)",
    "samples_per_second": "training samples per second",
    "peak_memory_mb": "peak memory (MB)",
    "saved_mb": "saved to disk (MB)",
    "beyond_head": "trained beyond the head",
}


def _need_columns(frame, columns: Sequence[str], what: str, name: str) -> pd.DataFrame:
    """``frame`` after checking that it is a DataFrame (``name`` is the caller's parameter)
    with ``columns``."""
    require_type(name, frame, pd.DataFrame, "a pandas DataFrame", f"{what} draws from one")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} needs the columns {missing}, which the DataFrame lacks (it has "
            f"{list(frame.columns)})"
        )
    if len(frame) == 0:
        raise ValueError(f"{what} got an empty DataFrame; there is nothing to plot")
    return frame


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _percent_axis(axis) -> None:
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))


# Training


def _as_log_frame(history) -> pd.DataFrame:
    """A log history as a DataFrame: log_history.csv's table, or Trainer's list of dicts."""
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if "step" not in frame.columns:
        frame = frame.assign(step=np.arange(len(frame)))
    return frame


def _training_loss(frame: pd.DataFrame, smooth: int) -> tuple[pd.Series, pd.Series]:
    """The logged steps of a log frame and their training loss, as a moving average over
    ``smooth`` logged steps (1: as logged)."""
    train = frame[frame["loss"].notna()]
    return train["step"], train["loss"].rolling(smooth, min_periods=1).mean()


def training_curves(log_histories, title: str = "Training curves",
                    panels: Sequence[str] = ("loss", "eval_loss", "eval_accuracy"),
                    macro_f1: bool = True, smooth: int = 1) -> Figure:
    """Training loss against step for each run, and evaluation loss and accuracy per epoch.

    ``log_histories`` maps a run name to its log history: log_history.csv read with
    ``pd.read_csv`` (columns step, epoch, loss, eval_loss, eval_accuracy, eval_macro_f1, training
    and evaluation rows mixed, NaN where a row lacks a value) or ``trainer.state.log_history``;
    a single history is accepted too. Returns a figure with one panel, training loss against
    step, plus "evaluation loss" and "evaluation accuracy" panels (macro-F1 dashed unless
    ``macro_f1`` is False: on balanced classes it hides under accuracy) against epoch when any run
    logged them, of those named in ``panels``; each run keeps one colour across the panels.
    ``smooth`` > 1 draws the training loss as a moving average over that many logged steps.
    """
    if not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth={smooth!r} is not a number of logged steps; pass 1 (no "
                         "smoothing) or more")
    if isinstance(log_histories, pd.DataFrame) or not isinstance(log_histories, Mapping):
        log_histories = {"run": log_histories}
    if not log_histories:
        raise ValueError("training_curves got no log histories; pass {run name: log history}")
    frames = {str(name): _as_log_frame(history) for name, history in log_histories.items()}

    def has(column: str) -> bool:
        return any(column in f.columns and f[column].notna().any() for f in frames.values())

    panels = ["loss"] + [c for c in ("eval_loss", "eval_accuracy")
                         if c in panels and has(c) and has("epoch")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    axes = axes[0]
    colours = dict(zip(frames, sns.color_palette(n_colors=len(frames)), strict=True))
    for name, frame in frames.items():
        colour = colours[name]
        if "loss" in frame.columns:
            axes[0].plot(*_training_loss(frame, smooth), color=colour, label=name)
        for ax, column in zip(axes[1:], panels[1:], strict=True):
            if column not in frame.columns:
                continue
            rows = frame[frame[column].notna()]
            ax.plot(rows["epoch"], rows[column], marker="o", color=colour, label=name)
            if column == "eval_accuracy" and macro_f1 and "eval_macro_f1" in frame.columns:
                f1 = frame[frame["eval_macro_f1"].notna()]
                ax.plot(f1["epoch"], f1["eval_macro_f1"], marker="s", linestyle="--",
                        color=colour, label=f"{name} (macro-F1)")
    loss_title = "Training loss" + (f", moving average over {smooth} steps" if smooth > 1 else "")
    axes[0].set(title=loss_title, xlabel="step", ylabel="cross-entropy loss (nats)")
    if not has("loss"):
        axes[0].text(0.5, 0.5, "no training steps logged", ha="center", va="center",
                     transform=axes[0].transAxes)
    for ax, column in zip(axes[1:], panels[1:], strict=True):
        _label_evaluation_panel(ax, column, with_f1=macro_f1 and has("eval_macro_f1"))
    for ax in axes[:-1]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if axes[-1].get_legend_handles_labels()[0]:  # the busiest panel: its legend goes beside it
        axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _label_evaluation_panel(ax, column: str, with_f1: bool) -> None:
    """Title, labels and ticks of one of ``training_curves``' per-epoch panels."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # evaluated after whole epochs
    if column == "eval_loss":
        ax.set(title="Evaluation loss", xlabel="epoch", ylabel="cross-entropy loss (nats)")
        return
    ax.set(title="Evaluation accuracy" + (" and macro-F1 (dashed)" if with_f1 else ""),
           xlabel="epoch", ylabel="accuracy, macro-F1" if with_f1 else "accuracy")
    _percent_axis(ax.yaxis)


# Data overview


def label_balance(counts, title: str = "Examples per label") -> Figure:
    """Bar chart of examples per label, each bar annotated with its count and share.

    ``counts`` is a Series or dict {label: count} (e.g. ``pd.Series(labels).value_counts()``),
    or a DataFrame labels × splits for grouped bars, one colour per split.
    """
    if isinstance(counts, Mapping) and not isinstance(counts, pd.Series):
        counts = pd.Series(counts)
    if isinstance(counts, pd.Series):
        counts = counts.to_frame(name=counts.name or "examples")
    _need_columns(counts, [], "label_balance", "counts")
    counts = counts.rename(columns=str)
    long = counts.rename_axis("_label").reset_index().melt(
        id_vars="_label", var_name="_split", value_name="_count"
    )
    long["_label"] = long["_label"].astype(str)
    several = len(counts.columns) > 1
    bars = len(counts) * len(counts.columns)
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_INCHES, max(5.0, 0.9 * bars + 2)), 4))
    sns.barplot(data=long, x="_label", y="_count", hue="_split" if several else None, ax=ax)
    for container in ax.containers:
        values = container.datavalues
        total = values.sum()
        labels = [f"{v:,.0f}\n({v / total:.0%})" if total else f"{v:,.0f}" for v in values]
        ax.bar_label(container, labels=labels, fontsize="small" if bars <= 12 else "x-small")
    if several:
        ax.legend(title="split")
    ax.margins(y=0.2)
    ax.set(title=title, xlabel="label", ylabel="examples")
    fig.tight_layout()
    return fig


def length_histogram(
    lengths, max_length: int | None = None, title: str = "Text lengths", unit: str = "tokens",
    bins: int = 50,
) -> Figure:
    """Histogram of text lengths, with the model's ``max_length`` marked by a vertical line.

    ``lengths`` is a sequence or Series of lengths in ``unit`` (e.g. ``analysis.text_lengths``).
    The line's legend entry says what share of the texts is longer than ``max_length``, i.e.
    truncated.
    """
    values = pd.Series(lengths, dtype="float64").dropna()
    if values.empty:
        raise ValueError("length_histogram got no lengths; there is nothing to plot")
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.histplot(values, bins=bins, ax=ax)
    if max_length is not None:
        longer = float((values > max_length).mean())
        ax.axvline(max_length, color="crimson", linestyle="--",
                   label=f"max_length = {max_length} ({longer:.1%} of texts truncated)")
        ax.legend()
    ax.set(title=title, xlabel=f"length ({unit})", ylabel="texts")
    fig.tight_layout()
    return fig


# Results


def per_class_f1(scores: pd.DataFrame, support, title: str = "F1 per class") -> Figure:
    """Grouped bars of F1 per class, one colour per run, every bar labelled with its value.

    ``scores`` is a DataFrame classes × runs of F1 in [0, 1] (e.g. ``metrics["per_class_f1"]``
    of two runs side by side); ``support`` maps each class to its number of examples, shown
    under its name, so that a class scored on a handful of examples is seen as such.
    """
    _need_columns(scores, [], "per_class_f1", "scores")
    support = pd.Series(support)
    missing = [name for name in scores.index if name not in support.index]
    if missing:
        raise ValueError(f"support has no count for {missing}; give one per class of scores "
                         f"({list(scores.index)})")
    names = [f"{name} ({support[name]})" for name in scores.index]
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_INCHES, 1.5 * len(scores) + 3), 3.6))
    scores.set_axis(names).plot.bar(ax=ax)
    ax.set(title=title, ylabel="F1", ylim=(0, 1.05), xlabel="class (examples)")
    ax.tick_params(axis="x", labelrotation=0)
    for bars in ax.containers:  # a class at F1 = 0 has no bar, so every bar says its value
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


LOG_SCALE_METRICS = ("trainable_parameters", "beyond_head", "saved_mb")
# Tick spacings 1, 2 or 5 times a power of ten: 2.5 would print 82.5% as a whole "82%".
ROUND_TICK_STEPS = (1, 2, 5, 10)


def _zoomed_ticks(axis, limits: tuple[float, float], percent: bool, bins: int) -> None:
    """Round ticks on an axis zoomed to its data: spaced 1, 2 or 5 times a power of ten, and
    for scores whole percents unless the axis spans less than 3 of them."""
    axis.set_major_locator(MaxNLocator(bins, steps=ROUND_TICK_STEPS))
    if percent:
        axis.set_major_formatter(PercentFormatter(
            xmax=1.0, decimals=0 if abs(limits[1] - limits[0]) >= 0.03 else 1))


def _compact(value: float) -> str:
    """E.g. 224k, 22.7M, 9.7: three significant digits and a thousands suffix."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def settings_comparison(table: pd.DataFrame, metrics: Sequence[str] = (
        "macro_f1", "trainable_parameters", "train_seconds"), label: str = "setting",
        title: str = "Settings side by side") -> Figure:
    """One panel per metric, one horizontal bar per setting (a row of ``table``), its value at
    the bar's end, so that a score and what it costs are read along one line.

    ``table`` has a ``label`` column and one column per metric; a metric whose ``<metric>_low``
    and ``<metric>_high`` columns are there is drawn as a dot (e.g. the mean over seeds) with a
    line over that range (the lowest and highest seed), on an axis zoomed to the ranges.
    Trainable parameters (all, or ``beyond_head``) and saved megabytes use a log axis when their
    non-zero values span more than a factor of 20; a 0 is labelled at the axis' left end.
    """
    _need_columns(table, [label, *metrics], "settings_comparison", "table")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 2.2,
                                                       max(3.0, 0.42 * len(table) + 1.6)),
                             sharey=True, squeeze=False)
    positions = np.arange(len(table))
    colours = sns.color_palette(n_colors=len(table))
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = table[metric].to_numpy(dtype=np.float64)
        percent = metric in PERCENT_METRICS
        ranged = {f"{metric}_low", f"{metric}_high"} <= set(table.columns)
        if ranged:  # a dot at the mean, a line over the range, on an axis zoomed to them
            low, high = (table[f"{metric}_{end}"].to_numpy(dtype=np.float64)
                         for end in ("low", "high"))
            ax.errorbar(values, positions, xerr=[values - low, high - values], fmt="none",
                        ecolor="black", capsize=4, linewidth=1.2)
            ax.scatter(values, positions, color=colours, s=70, zorder=3)
            margin = 0.15 * (np.nanmax(high) - np.nanmin(low)) or 0.01
            ax.set_xlim(np.nanmin(low) - margin, np.nanmax(high) + 2.5 * margin)
        else:
            ax.barh(positions, values, color=colours)
        positive = values[values > 0]
        log_scale = (not ranged and metric in LOG_SCALE_METRICS and positive.size > 0
                     and np.nanmax(positive) > 20 * np.nanmin(positive))
        left = np.nanmin(positive) / 3 if log_scale else 0.0  # a bar of 0 shows its label there
        zero_labels = [_compact(0) if value == 0 else None for value in values]
        _label_values(ax, np.where(values == 0, left, values), positions, percent, above=ranged,
                      texts=zero_labels if log_scale else None)
        if ranged:
            _zoomed_ticks(ax.xaxis, ax.get_xlim(), percent, bins=4)
        elif log_scale:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # powers of ten only
            ax.set_xlim(left, np.nanmax(values) * 4)  # room for the value at the bar's end
        elif percent:
            _percent_axis(ax.xaxis)
            ax.set_xlim(0, 1.18)
        else:
            ax.set_xlim(0, np.nanmax(values) * 1.3)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _compact(x)))
            ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set(xlabel=_metric_label(metric), title=_capitalised(_metric_label(metric)))
    axes[0][0].set_yticks(positions, table[label].astype(str))
    axes[0][0].set_ylabel(label)
    axes[0][0].set_ylim(len(table) - 0.5, -0.8)  # the first row on top, room above it
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _label_values(ax, values: np.ndarray, positions: np.ndarray, percent: bool,
                  above: bool, texts: Sequence[str | None] | None = None) -> None:
    """Each value written at its bar's end, or ``above`` its dot (at the end of a range line it
    would read as the maximum); a ``texts`` entry that is not None is written instead."""
    texts = texts or [None] * len(values)
    for y, value, given in zip(positions, values, texts, strict=True):
        if not np.isfinite(value):
            continue
        text = given or (f"{value:.1%}" if percent else _compact(value))
        if above:
            ax.annotate(text, (value, y), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize="small")
        else:
            ax.text(value, y, f" {text}", va="center", fontsize="small")


def rate_curves(table: pd.DataFrame, group: str = "method", panel: str | None = None,
                metric: str = "val_macro_f1", title: str = "Learning rate against score") -> Figure:
    """A score against the learning rate (log axis): one line per value of ``group``, one panel
    per value of ``panel`` (or a single panel), each line's best point circled.

    ``table`` has an ``lr`` column, ``metric``, ``group`` and ``panel``: one row per run, e.g.
    LoRA and full fine-tuning at three rates each (``group="method"``), or LoRA at three ranks
    (``group="r"``) under two scalings (``panel="scaling"``). A run without a score (its
    ``metric`` is NaN: it diverged) is an ✕ at the foot of the axis. A best point at either end
    of its line is circled with a dashed line and labelled: the best rate may lie beyond the
    rates tried.
    """
    _need_columns(table, ["lr", metric, group] + ([panel] if panel else []), "rate_curves",
                  "table")
    panels = list(dict.fromkeys(table[panel])) if panel else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.0, 4.0),
                             sharey=True, squeeze=False)
    colours = dict(zip(dict.fromkeys(table[group]),
                       sns.color_palette(n_colors=table[group].nunique()), strict=True))
    scores = table[metric].dropna()
    low, high = (scores.min(), scores.max()) if len(scores) else (0.0, 1.0)
    margin = max(0.1 * (high - low), 0.02 * max(abs(high), 1e-12))
    for ax, value in zip(axes[0], panels, strict=True):
        rows = table if panel is None else table[table[panel] == value]
        for name, line in rows.groupby(group, sort=False):
            _rate_line(ax, line.sort_values("lr"), metric, colours[name], str(name),
                       foot=low - 0.6 * margin)
        ax.set_xscale("log")
        tried = sorted(rows["lr"].unique())  # the rates tried are the ticks
        # Slanted: two methods' grids meet on one axis, where level labels would overlap.
        ax.set_xticks(tried, [f"{lr:g}" for lr in tried], rotation=35, ha="right")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel="learning rate (log scale)",
               title=f"{panel} {value}" if panel else "best of each line circled")
    axes[0][0].set_ylim(low - margin, high + margin)  # zoomed to the scores: peaks show
    _zoomed_ticks(axes[0][0].yaxis, axes[0][0].get_ylim(), metric in PERCENT_METRICS, bins=6)
    axes[0][0].set_ylabel(_metric_label(metric))
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        more = ax.get_legend_handles_labels()
        handles += [h for h, lbl in zip(*more, strict=True) if lbl not in labels]
        labels += [lbl for lbl in more[1] if lbl not in labels]
    axes[0][-1].legend(handles, labels, title=group, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _rate_line(ax, line: pd.DataFrame, metric: str, colour, label: str, foot: float) -> None:
    """One line of ``rate_curves``: the scores, an ✕ for each diverged run, the best circled."""
    scored, diverged = line[line[metric].notna()], line[line[metric].isna()]
    ax.plot(scored["lr"], scored[metric], marker="o", color=colour, label=label)
    if len(diverged):
        ax.scatter(diverged["lr"], [foot] * len(diverged), marker="x", s=70, color=colour,
                   label="diverged (loss became NaN)")
    if scored.empty:
        return
    best = scored.loc[scored[metric].idxmax()]
    at_edge = best["lr"] in (line["lr"].min(), line["lr"].max())
    ax.scatter(best["lr"], best[metric], s=170, facecolors="none", edgecolors="black",
               linestyles="--" if at_edge else "-", zorder=3)
    if at_edge:
        ax.annotate("best at an end", (best["lr"], best[metric]), xytext=(0, 11),
                    textcoords="offset points", ha="center", fontsize="small")


# Error analysis


def confusion_heatmap(confusion_df: pd.DataFrame,
                      title: str = "Confusion matrix (share of each true label)") -> Figure:
    """Row-normalised confusion matrix: each cell is the share of a true label predicted so.

    ``confusion_df`` is ``analysis.confusion(...)``: counts (ints), which are normalised here and
    written under each share, e.g. "25% (1)", with each true label's number of examples beside
    its name; or ``normalize="true"`` shares, shown alone. The diagonal is per-class recall.
    """
    _need_columns(confusion_df, [], "confusion_heatmap", "confusion_df")
    counts = None
    if all(pd.api.types.is_integer_dtype(dtype) for dtype in confusion_df.dtypes):
        counts = confusion_df.to_numpy()
    values = confusion_df.astype(float)
    if counts is not None:
        values = values.div(values.sum(axis=1), axis=0)
        values.index = [f"{name} (n={n})" for name, n in zip(values.index, counts.sum(axis=1),
                                                               strict=True)]
        values.index.name = confusion_df.index.name
        annotations = np.array([[_share_and_count(share, count) for share, count in
                                 zip(shares, row, strict=True)]
                                for shares, row in zip(values.to_numpy(), counts, strict=True)])
    size = 0.9 * len(values) + 3
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(values, annot=annotations if counts is not None else True,
                fmt="" if counts is not None else ".0%", cmap="Blues", vmin=0, vmax=1,
                square=True, cbar_kws={"label": "share of the true label"}, ax=ax)
    ax.set(title=title, xlabel="predicted label", ylabel="true label")
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def _share_and_count(share: float, count: int) -> str:
    return "–" if np.isnan(share) else f"{share:.0%}\n({count})"


def reliability_diagram(calibration_bins_df: pd.DataFrame, ece: float | None = None,
                        title: str = "Reliability diagram") -> Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration.

    ``calibration_bins_df`` is ``analysis.calibration_bins`` (columns lower, upper, count,
    mean_confidence, accuracy). Bars show each bin's accuracy; hatched outlines mark the gap to its
    mean confidence, red where the bin is overconfident (accuracy below confidence), orange where
    it is underconfident. A lower panel shows how many
    examples fall in each bin. ``ece`` (``analysis.expected_calibration_error``) goes in the
    title.
    """
    columns = ["lower", "upper", "count", "mean_confidence", "accuracy"]
    bins = _need_columns(calibration_bins_df, columns, "reliability_diagram", "calibration_bins_df")
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(5.5, 7), gridspec_kw={"height_ratios": [3, 1]}
    )
    centres = (bins["lower"] + bins["upper"]) / 2
    widths = bins["upper"] - bins["lower"]
    filled = bins["count"] > 0
    ax.bar(centres[filled], bins["accuracy"][filled], width=widths[filled], edgecolor="black",
           color="steelblue", label="accuracy")
    gap_bottom = np.minimum(bins["accuracy"], bins["mean_confidence"])
    gap_height = (bins["accuracy"] - bins["mean_confidence"]).abs()
    over = bins["mean_confidence"] > bins["accuracy"]
    for side, colour, label in ((over, "crimson", "overconfident: accuracy below confidence"),
                                (~over, "darkorange", "underconfident: accuracy above it")):
        shown = filled & side
        ax.bar(centres[shown], gap_height[shown], bottom=gap_bottom[shown], width=widths[shown],
               color="none", edgecolor=colour, hatch="//", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence of the bin", ylabel="accuracy",
           title=title if ece is None else f"{title} (ECE = {ece:.1%})")
    ax.legend(loc="upper left", fontsize="small")
    _percent_axis(ax.xaxis)
    _percent_axis(ax.yaxis)
    ax_count.bar(centres, bins["count"], width=widths, color="grey", edgecolor="black")
    ax_count.set(xlim=(0, 1), xlabel="confidence (largest class probability)",
                 ylabel="examples")
    _percent_axis(ax_count.xaxis)
    fig.tight_layout()
    return fig


def accuracy_by_length(length_buckets_df: pd.DataFrame, title: str = "Accuracy by text length",
                       unit: str | None = None) -> Figure:
    """Accuracy per length bucket, each bar labelled with its number of examples.

    ``length_buckets_df`` is ``analysis.length_buckets`` (columns bucket, count, accuracy, and
    truncated when it was given max_length: truncated buckets are drawn in orange). A dashed
    line marks the overall accuracy. ``unit`` ("words", "tokens") names the x axis; by default
    it is read from the table's ``attrs["unit"]``, which ``length_buckets`` sets.
    """
    buckets = _need_columns(length_buckets_df, ["bucket", "count", "accuracy"],
                            "accuracy_by_length", "length_buckets_df")
    unit = unit or buckets.attrs.get("unit", "length")
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(buckets) + 2), 4))
    positions = np.arange(len(buckets))
    truncated = (buckets["truncated"].astype(bool).to_numpy() if "truncated" in buckets.columns
                 else np.zeros(len(buckets), dtype=bool))
    colours = np.where(truncated, "darkorange", "steelblue")
    bars = ax.bar(positions, buckets["accuracy"].fillna(0), color=colours, edgecolor="black")
    ax.bar_label(bars, labels=[f"n={n:,}" for n in buckets["count"]], fontsize="small")
    handles = []
    if truncated.any():
        handles = [Patch(color="steelblue", label="kept whole"),
                   Patch(color="darkorange", label="truncated at max_length")]
    total = buckets["count"].sum()
    if total:
        overall = float((buckets["accuracy"].fillna(0) * buckets["count"]).sum() / total)
        handles.append(ax.axhline(overall, color="grey", linestyle="--",
                                  label=f"overall {overall:.1%}"))
    ax.legend(handles=handles, fontsize="small", loc="upper center", ncol=len(handles))
    ax.set_xticks(positions, buckets["bucket"].astype(str))
    _percent_axis(ax.yaxis)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set(title=title, xlabel=f"text length ({unit})", ylabel="accuracy")
    fig.tight_layout()
    return fig
