"""Run directories → one results table, as a DataFrame, results.csv and results.md.

``lorakit.train.run`` writes one directory per run::

    runs/<task>/<run-name>/config.json    what was run: task, method, r, alpha, profile, ...
    runs/<task>/<run-name>/metrics.json   how it went: accuracy, macro_f1, parameters, time, memory

``report("runs")`` reads every such directory and returns one row per run, sorted by task, then
method (head, lora, peft, full, then any other), then rank. A key missing from a run's files
becomes an empty cell, so runs written by older versions still appear.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lorakit.methods import METHOD_NAMES
from lorakit.profiles import SAMPLE_PROFILES
from lorakit.run_files import CONFIG, METRICS

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
MISSING = "—"

# Columns of the results table; where a column's key in config.json/metrics.json differs from
# its name, SOURCE_KEYS names the key.
COLUMNS = (
    "task", "run", "method", "profile", "r", "alpha", "trainable_parameters", "trainable_percent",
    "train_seconds", "samples_per_second", "peak_memory_mb", "peak_memory_kind", "accuracy",
    "macro_f1",
)
SOURCE_KEYS = {"run": "run_name", "samples_per_second": "train_samples_per_second"}
TEXT_COLUMNS = ("task", "run", "method", "profile", "peak_memory_kind")
INTEGER_COLUMNS = ("r", "trainable_parameters")
MEMORY_KINDS = {
    "cuda": "the peak GPU memory allocated by PyTorch (torch.cuda.max_memory_allocated)",
    "cpu-rss-run": "the peak resident memory of the whole process during the run (Python, "
    "libraries, data and weights included; the peak restarts with each run), so not comparable "
    "with GPU numbers",
    "cpu-rss": "the peak resident memory of the whole process since it started (Python, "
    "libraries and data included), so not comparable with GPU numbers",
}


def find_runs(runs_dir) -> list[Path]:
    """The run directories of ``runs_dir``: ``<task>/<run-name>/`` holding config.json and
    metrics.json, or ``<run-name>/`` when ``runs_dir`` is one task's directory.

    Deeper directories are not runs of this directory (notebook 03 keeps its own runs in a
    sub-directory). Sorted by path; an empty list when there are none or ``runs_dir`` does not
    exist, so that a notebook can train a model only when ``find_runs(...)`` finds none.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    configs = [*runs_dir.glob(f"*/{CONFIG}"), *runs_dir.glob(f"*/*/{CONFIG}")]
    return sorted(c.parent for c in configs if (c.parent / METRICS).is_file())


def _read_json_object(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; a run directory holds {CONFIG} and {METRICS}, "
            "written by lorakit.train.run (or `lorakit train`)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); delete that run directory or train it again"
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, expected an object {{...}}")
    return data


def load_run(path) -> dict:
    """One run: config.json and metrics.json merged into one dict, plus ``run_dir`` (a Path).

    Metrics win if both files have the same key. Nested values (``versions``,
    ``per_class_f1``) stay nested.
    """
    path = Path(path)
    config = _read_json_object(path / CONFIG)
    metrics = _read_json_object(path / METRICS)
    return {**config, **metrics, "run_dir": path}


def _row(run: dict) -> dict:
    """The results-table row for one loaded run; a missing key gives None."""
    row = {column: run.get(SOURCE_KEYS.get(column, column)) for column in COLUMNS}
    if row["run"] is None and "run_dir" in run:
        row["run"] = Path(run["run_dir"]).name
    return row


def _integer_column(values: pd.Series) -> pd.Series:
    """Numbers as nullable integers (8, not 8.0, in the CSV) when they are all whole."""
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.dropna()
    if (whole == np.round(whole)).all():
        return numbers.round().astype("Int64")
    return numbers


def _method_rank(methods: pd.Series) -> pd.Series:
    order = {method: i for i, method in enumerate(METHOD_NAMES)}  # lorakit.methods' order
    return methods.map(lambda m: order.get(m, len(order)))


def results_table(runs: Iterable[dict]) -> pd.DataFrame:
    """One row per loaded run (see ``load_run``), typed and sorted like ``report``'s table."""
    table = pd.DataFrame([_row(run) for run in runs], columns=list(COLUMNS))
    for column in COLUMNS:
        if column in INTEGER_COLUMNS:
            table[column] = _integer_column(table[column])
        elif column not in TEXT_COLUMNS:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
        else:
            table[column] = table[column].astype(object).where(table[column].notna(), None)
    table["_method_rank"] = _method_rank(table["method"])
    keys = ["task", "_method_rank", "method", "r", "alpha", "run"]
    table = table.sort_values(keys, na_position="last", kind="stable")
    return table.drop(columns="_method_rank").reset_index(drop=True)


def report(runs_dir="runs", write: bool = True) -> pd.DataFrame:
    """Collect every run under ``runs_dir`` into one table; also write results.csv/.md there.

    Columns: task, run, method, profile, r, alpha, trainable_parameters, trainable_percent,
    train_seconds, samples_per_second, peak_memory_mb, peak_memory_kind, accuracy, macro_f1
    (accuracy and macro_f1 as fractions in [0, 1]; a key a run lacks is an empty cell).
    Raises ValueError when ``runs_dir`` holds no run directory.
    """
    paths = find_runs(runs_dir)
    if not paths:
        state = "does not exist" if not Path(runs_dir).exists() else "holds none"
        raise ValueError(
            f"no run directories were found under {runs_dir} ({state}); a run directory holds "
            f"{CONFIG} and {METRICS}. Make one with `lorakit train` (see "
            "`lorakit train --help`) or lorakit.train.run(...), or pass the runs_dir it wrote to"
        )
    table = results_table(load_run(path) for path in paths)
    if write:
        runs_dir = Path(runs_dir)
        table.to_csv(runs_dir / RESULTS_CSV, index=False)
        (runs_dir / RESULTS_MD).write_text(to_markdown(table, source=str(runs_dir)))
    return table


# Markdown


def _percent_of_one(value: float) -> str:
    return f"{100 * value:.2f}%"


def _significant_percent(value: float) -> str:
    """3 significant digits without scientific notation: 0.774%, 0.000924%, 100%."""
    digits = np.format_float_positional(
        value, precision=3, unique=False, fractional=False, trim="-"
    )
    return digits + "%"


FORMATS: dict[str, tuple[str, Callable[[float], str]]] = {
    # column: (Markdown header, formatter for a present value)
    "r": ("r", lambda v: f"{int(v)}"),
    "alpha": ("α", lambda v: f"{v:g}"),
    "trainable_parameters": ("trainable params", lambda v: f"{int(v):,}"),
    "trainable_percent": ("of total", _significant_percent),
    "train_seconds": ("train time (s)", lambda v: f"{v:,.1f}"),
    "samples_per_second": ("samples/s", lambda v: f"{v:,.1f}"),
    "peak_memory_mb": ("peak memory (MB)", lambda v: f"{v:,.0f}"),
    "accuracy": ("accuracy", _percent_of_one),
    "macro_f1": ("macro-F1", _percent_of_one),
}


def _is_missing(value) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and dicts are present values
        return False


def _cell(column: str, value) -> str:
    if _is_missing(value):
        return MISSING
    if column in FORMATS and isinstance(value, (int, float, np.number)):
        if isinstance(value, float) and math.isinf(value):
            return str(value)
        return FORMATS[column][1](value)
    return str(value)


def markdown_table(
    rows: Iterable[Mapping], columns: Mapping[str, str], right: Collection[str] = (),
) -> str:
    """A GitHub Markdown table, its cells padded so that the raw text lines up too.

    ``columns`` maps a row's key to its header, in order; the keys in ``right`` are
    right-aligned. Each cell is ``format_cell`` of the row's value (a missing key: empty).
    """
    header = list(columns.values())
    cells = [[format_cell(row.get(key)) for key in columns] for row in rows]
    layout = [(max(3, len(h), *(len(row[i]) for row in cells)), key in right)
              for i, (key, h) in enumerate(columns.items())]

    def line(texts: list[str]) -> str:
        padded = [t.rjust(w) if r else t.ljust(w) for t, (w, r) in zip(texts, layout, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in layout) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in cells)])


def format_cell(value) -> str:
    """A table cell: None empty, a bool yes/no, a float to about 3 significant digits (1,234 and
    12.3 and 0.0123), an int with thousands separators, anything else as text with ``|``
    escaped and line breaks as spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _memory_note(kinds: list[str]) -> str:
    described = [f"`{k}` is {MEMORY_KINDS.get(k, 'as the run measured it')}" for k in kinds]
    return "Peak memory: " + "; ".join(described) + "."


def to_markdown(
    table: pd.DataFrame, title: str | None = "LoRA fine-tuning results", source: str | None = None
) -> str:
    """The results table as Markdown: a title line, the table, and notes on what was measured.

    ``title`` becomes a ``# title`` heading (``None`` leaves it out, to nest the table under a
    heading of your own); ``source``, the runs directory, is named in the line under it.

    Accuracy and macro-F1 are shown as percentages with 2 decimals (91.23%), parameter counts
    with thousands separators, seconds with 1 decimal, memory in MB with none; a missing value
    is "—". Takes ``report``'s table (any subset of its columns; other columns are shown as text).
    """
    kinds = []
    if "peak_memory_kind" in table.columns:
        kinds = sorted({k for k in table["peak_memory_kind"] if not _is_missing(k)})
    mixed_memory = len(kinds) > 1
    columns = [c for c in table.columns if c != "peak_memory_kind" or mixed_memory]
    headers = {c: FORMATS.get(c, (c.replace("_", " "),))[0] for c in columns}
    rows = [{c: _cell(c, record[c]) for c in columns} for record in table.to_dict("records")]

    runs = f"{len(table)} run{'s' if len(table) != 1 else ''}"
    where = f" under `{source}`" if source else ""
    lines = [f"# {title}", ""] if title else []
    lines += [f"{runs}{where}; accuracy and macro-F1 on each task's test split.", "",
              markdown_table(rows, headers, right=set(FORMATS))]
    if kinds:
        lines += ["", _memory_note(kinds)]
    on_samples = sorted(set(table.get("profile", ())) & set(SAMPLE_PROFILES))
    if on_samples:
        lines += ["", f"Runs with profile {' or '.join(f'`{p}`' for p in on_samples)} train on "
                  "the sample texts bundled with lorakit (written for this project, shaped like "
                  "IMDB and Emotion): their numbers are not IMDB or Emotion results."]
    return "\n".join(lines) + "\n"
