"""Local data files read and checked, and a source's splits brought to ``text`` and ``label``.

``lorakit.data.load_task`` calls these; a reader comes here for what a file may hold and for the
message a bad one gets. The steps, for local files::

    files = check_data_files({"train": "train.csv", "test": "test.csv"})   # {split: Path}
    raw = read_splits(files)          # {split: (Dataset with the file's own columns, its path)}
    train = normalise_split(raw["train"][0], "train", raw["train"][1], spec, None, None)
    train, validation = carve_validation(train, raw["train"][1], spec.validation_fraction, seed)
    train = cap_rows(train, 1000, seed)

``normalise_split``, ``carve_validation`` and ``cap_rows`` serve the Hub's splits and the bundled
samples the same way.

Formats, by extension: .csv, .tsv, .jsonl/.json (JSON lines), .parquet, and .txt with one
``text;label`` per line (the Kaggle copy of Emotion). Errors are one line: ``ValueError`` for bad
data, naming the file, split and rows; ``FileNotFoundError`` for a missing file.
"""

from __future__ import annotations

import codecs
import glob
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq

from lorakit.tasks import TaskSpec

SPLITS = ("train", "validation", "test")
REQUIRED_SPLITS = ("train", "test")
# file extension → (format, how the format is called in messages)
FORMATS = {
    ".csv": ("csv", "CSV"),
    ".tsv": ("tsv", "TSV (tab-separated)"),
    ".jsonl": ("json", "JSON lines"),
    ".json": ("json", "JSON lines"),
    ".parquet": ("parquet", "Parquet"),
    ".txt": ("txt", "'text;label' lines"),
}
SHOWN = 5  # how many bad values or row numbers an error message lists


# ---------------------------------------------------------------------------------------------
# Which files: {split: path}, all checked before any is read


def check_data_files(data_files) -> dict[str, Path]:
    """``load_task``'s ``data_files`` (split → path) checked, as ``{split: Path}`` with ``~``
    expanded and the splits mapped to None left out.

    A TypeError when ``data_files`` is no mapping or a path no str or ``os.PathLike``; a
    ValueError for a split other than train, validation and test, or without train or test.
    Nothing is read: ``read_splits`` checks that the files exist.
    """
    if not isinstance(data_files, Mapping):
        raise TypeError(
            f"data_files={data_files!r} is a {type(data_files).__name__}; pass a dict of files "
            "by split, e.g. {'train': 'train.csv', 'test': 'test.csv'} ('validation' optional)"
        )
    files = {split: path for split, path in data_files.items() if path is not None}
    unknown = [split for split in files if split not in SPLITS]
    if unknown:
        raise ValueError(
            f"data_files has splits {unknown}; use the splits {', '.join(SPLITS)}"
        )
    missing = [split for split in REQUIRED_SPLITS if split not in files]
    if missing:
        raise ValueError(
            f"data_files has no {' or '.join(map(repr, missing))} file; train and test are "
            "required (--train-file, --test-file), validation is carved from train when absent"
        )
    for split, path in files.items():
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"data_files[{split!r}]={path!r} is a {type(path).__name__}; pass a file path"
            )
    return {split: Path(path).expanduser() for split, path in files.items()}


def read_splits(files: dict[str, Path]) -> dict[str, tuple[datasets.Dataset, str]]:
    """Read the file of each split: ``{split: (Dataset with the file's own columns, its path)}``.

    The path, as a str, is the ``where`` that later messages name. A FileNotFoundError for a
    missing file, a one-line ValueError for an unknown extension or a file that cannot be read.
    """
    for path in files.values():  # fail on a wrong path or extension before reading any file
        _check_file(path)
    loaded: dict[Path, datasets.Dataset] = {}  # a file given for two splits is read once
    for path in files.values():
        if path not in loaded:
            loaded[path] = _read_file(path)
    return {split: (loaded[path], str(path)) for split, path in files.items()}


# ---------------------------------------------------------------------------------------------
# Reading one local file into a raw Dataset (whatever columns it has)


def file_format(path: str | os.PathLike) -> str:
    """The format a file is read as, from its extension: csv, tsv, json, parquet or txt."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path} has the extension {suffix or '(none)'!r}, which lorakit does not read; "
            f"use one of {', '.join(FORMATS)} (.txt holds one 'text;label' per line)"
        )
    return FORMATS[suffix][0]


def _read_file(path: Path) -> datasets.Dataset:
    """Read ``path`` with ``datasets.load_dataset``; every failure becomes a one-line error.

    The Dataset has the file's own columns (``text`` and ``label`` for .txt) and may be empty.
    """
    fmt = _check_file(path)
    if fmt != "parquet" and not _has_utf8_content(path):
        return datasets.Dataset.from_dict({})
    reader = {"csv": _read_csv, "tsv": _read_csv, "json": _read_json, "parquet": _read_parquet,
              "txt": _read_lines}[fmt]
    try:
        dataset = reader(path, fmt)
    except Exception as error:  # datasets wraps parser failures in DatasetGenerationError
        format_name = FORMATS[path.suffix.lower()][1]
        raise ValueError(f"could not read {path} as {format_name}: {one_line(error)}") from error
    return _split_text_label_lines(dataset, path) if fmt == "txt" else dataset


def _check_file(path: Path) -> str:
    """The file's format; a ValueError for an unknown extension, FileNotFoundError if absent."""
    fmt = file_format(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"data file {path} {what}; check the path")
    return fmt


def _load(builder: str, path: Path, **kwargs) -> datasets.Dataset:
    """``datasets.load_dataset(builder)`` on the one file ``path``, quietly: its ``train`` split."""
    # data_files are glob patterns to datasets; escape them so that 'a[1].csv' means that file
    with progress_bars_off(), _no_download_count():
        return datasets.load_dataset(
            builder, data_files=glob.escape(str(path.resolve())), split="train", **kwargs
        )


def _read_csv(path: Path, fmt: str) -> datasets.Dataset:
    """A CSV (``fmt`` "csv") or TSV ("tsv") file, every column as strings."""
    separator = "\t" if fmt == "tsv" else ","
    # Every column is read as text exactly as written: no "NA"/"null" turned into missing
    # values, no digits-only texts turned into numbers. Labels are parsed later.
    options = {"sep": separator, "keep_default_na": False}
    head = pd.read_csv(path, nrows=1, dtype=str, **options)
    if len(head) == 0:  # only a header line
        return datasets.Dataset.from_dict({str(c): [] for c in head.columns})
    features = datasets.Features({str(c): datasets.Value("string") for c in head.columns})
    return _load("csv", path, features=features, **options)


def _read_json(path: Path, fmt: str) -> datasets.Dataset:
    """A JSON lines file, one object per line."""
    return _load("json", path)


def _read_parquet(path: Path, fmt: str) -> datasets.Dataset:
    """A Parquet file; an empty one gives its columns with no rows."""
    metadata = pq.read_metadata(path)
    if metadata.num_rows == 0:
        return datasets.Dataset.from_dict({name: [] for name in metadata.schema.names})
    return _load("parquet", path)


def _read_lines(path: Path, fmt: str) -> datasets.Dataset:
    """A text file as one ``text`` row per line."""
    return _load("text", path)


def _split_text_label_lines(lines: datasets.Dataset, path: Path) -> datasets.Dataset:
    """``text;label`` lines (the Kaggle copy of Emotion) → text and label; the label follows the
    LAST ';', so a text may contain ';'. Blank lines are skipped."""
    numbered = [(n, line) for n, line in enumerate(lines["text"], start=1) if line.strip()]
    no_separator = [n for n, line in numbered if ";" not in line]
    if no_separator:
        raise ValueError(
            f"{path} has lines without a ';' (line {_few(no_separator)}, counting from 1); each "
            "line of a .txt file must be 'text;label', e.g. 'i feel great;joy'"
        )
    pairs = [line.rpartition(";") for _, line in numbered]
    with progress_bars_off():
        return datasets.Dataset.from_dict(
            {"text": [text for text, _, _ in pairs], "label": [label for _, _, label in pairs]},
            features=datasets.Features(
                {"text": datasets.Value("string"), "label": datasets.Value("string")}
            ),
        )


def _has_utf8_content(path: Path, chunk_size: int = 1 << 20) -> bool:
    """Whether a text file holds anything but whitespace; a ValueError if it is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    content, offset = False, 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(chunk_size)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                byte = error.object[error.start]
                raise ValueError(
                    f"{path} is not UTF-8 (byte 0x{byte:02x} at offset {offset + error.start}); "
                    "re-save it as UTF-8 (e.g. in pandas: pd.read_csv(path, encoding='latin-1')"
                    ".to_csv(path, index=False))"
                ) from None
            content = content or bool(text.strip())
            if not chunk:
                return content
            offset += len(chunk)


# ---------------------------------------------------------------------------------------------
# One split → exactly `text` (str) and `label` (ClassLabel), or a ValueError naming the rows


def normalise_split(
    dataset: datasets.Dataset, split: str, where: str, spec: TaskSpec,
    text_column: str | None, label_column: str | None,
) -> datasets.Dataset:
    """One split (from a file, the Hub or the samples) as exactly ``text`` (str) and ``label``
    (a ClassLabel with ``spec``'s names), rows in their order.

    ``where`` names the source in messages. The text and label columns are ``text_column`` /
    ``label_column``, or when None the first of ``spec.text_columns`` / ``spec.label_columns``
    present. A one-line ValueError, naming the rows, for no rows, a missing column, texts that
    are empty or not strings, or labels that are no label of the task.
    """
    if len(dataset) == 0:
        raise ValueError(f"split {split!r} from {where} has no rows")
    text_name = _find_column(dataset, split, where, "text", text_column, spec.text_columns)
    label_name = _find_column(dataset, split, where, "label", label_column, spec.label_columns)
    texts = list(dataset[text_name])
    _check_texts(texts, split, where, text_name)
    ids = _label_ids(list(dataset[label_name]), dataset.features[label_name], split, where, spec)
    label = datasets.ClassLabel(names=list(spec.label_names))
    features = datasets.Features({"text": datasets.Value("string"), "label": label})
    with progress_bars_off():
        return datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)


def _find_column(
    dataset: datasets.Dataset, split: str, where: str, role: str, chosen: str | None,
    accepted: tuple[str, ...],
) -> str:
    """The column for ``role`` (text or label): ``chosen``, or the first of ``accepted`` that
    ``dataset`` has; a ValueError listing its columns when there is none."""
    candidates = (chosen,) if chosen is not None else accepted
    for name in candidates:
        if name in dataset.column_names:
            return name
    looked_for = " or ".join(repr(name) for name in candidates)
    raise ValueError(
        f"split {split!r} from {where} has no {role} column {looked_for}; its columns are "
        f"{', '.join(map(repr, dataset.column_names))}; name the {role} column with "
        f"--{role}-column NAME ({role}_column=NAME in Python)"
    )


def _check_texts(texts: list, split: str, where: str, column: str) -> None:
    """A ValueError naming the rows when a text is not a str, or is missing or blank."""
    not_strings = [i for i, t in enumerate(texts) if t is not None and not isinstance(t, str)]
    if not_strings:
        kinds = sorted({type(texts[i]).__name__ for i in not_strings})
        raise ValueError(
            f"split {split!r} from {where} has {len(not_strings)} {column!r} values that are not "
            f"text ({', '.join(kinds)}) at row {_few(not_strings)} (rows count from 0); is "
            f"{column!r} the text column? name it with --text-column"
        )
    empty = [i for i, t in enumerate(texts) if t is None or not t.strip()]
    if empty:
        raise ValueError(
            f"split {split!r} from {where} has {len(empty)} empty or missing texts at row "
            f"{_few(empty)} (rows count from 0); remove those rows or fill in their text"
        )


def _label_ids(
    values: list, feature, split: str, where: str, spec: TaskSpec
) -> list[int]:
    """Label ids for ``values`` (ids, numeric strings, names or aliases, any case)."""
    if isinstance(feature, datasets.ClassLabel):
        # ids of another ClassLabel go through their names, so a different order cannot scramble
        values = [feature.names[v] if isinstance(v, int) and 0 <= v < feature.num_classes else v
                  for v in values]
    lookup = spec.label_lookup()
    ids = [_label_id(value, lookup, len(spec.label_names)) for value in values]
    bad_rows = [i for i, label_id in enumerate(ids) if label_id is None]
    if bad_rows:
        bad_values = list(dict.fromkeys(repr(values[i]) for i in bad_rows))
        raise ValueError(
            f"split {split!r} from {where} has {len(bad_rows)} labels that are not "
            f"{spec.name} labels, e.g. {', '.join(bad_values[:SHOWN])} at row "
            f"{_few(bad_rows)} (rows count from 0); {spec.name}'s labels are "
            f"{spec.describe_labels()}"
        )
    return ids


def _label_id(value, lookup: dict[str, int], num_labels: int) -> int | None:
    """The id ``value`` stands for, or None when it is no label of the task."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # CSV readers turn a column of ints into floats around a gap
    if isinstance(value, str):
        key = value.strip()
        if key.isascii() and key.isdigit():
            value = int(key)
        else:
            return lookup.get(key.lower())
    if isinstance(value, int) and 0 <= value < num_labels:
        return value
    return None


# ---------------------------------------------------------------------------------------------
# Carving and capping


def carve_validation(
    train: datasets.Dataset, where: str, fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a seeded ``fraction`` (at least one row) off ``train``: ``(train, validation)``.

    ``where`` names the source in the ValueError raised when ``train`` has under two rows.
    """
    if len(train) < 2:
        raise ValueError(
            f"split 'train' from {where} has {len(train)} row, too few to carve a validation "
            "split from it; add rows or pass a validation file (--validation-file)"
        )
    size = min(len(train) - 1, max(1, round(fraction * len(train))))
    with progress_bars_off():
        parts = train.train_test_split(test_size=size, seed=seed)
    return parts["train"], parts["test"]


def cap_rows(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset of ``limit`` rows, or ``dataset`` itself when it is no larger."""
    if limit is None or len(dataset) <= limit:
        return dataset
    with progress_bars_off():
        return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


# ---------------------------------------------------------------------------------------------
# Small helpers


def _few(numbers: list[int]) -> str:
    """'3, 17, 20' or '3, 17, 20, 31, 40, … (12 in all)'."""
    shown = ", ".join(str(n) for n in numbers[:SHOWN])
    return shown if len(numbers) <= SHOWN else f"{shown}, … ({len(numbers)} in all)"


def one_line(error: BaseException, limit: int = 300) -> str:
    """The error's message on one line, with its cause's (datasets wraps the useful one), cut to
    ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        text += f" ({type(cause).__name__}: {' '.join(str(cause).split())})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def _no_download_count() -> Iterator[None]:
    """Stop datasets from pinging its download counter on the network for a local file.

    Without this, ``load_dataset("csv", ...)`` sends a HEAD request to S3 (3 s timeout, more when
    DNS hangs) on every call, even offline, which slows notebooks and tests on machines without
    network access. Same as ``HF_UPDATE_DOWNLOAD_COUNTS=0``, for this call only.
    """
    previous = getattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", None)
    if previous is not None:
        datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        yield
    finally:
        if previous is not None:
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = previous


@contextmanager
def progress_bars_off(quiet: bool = True) -> Iterator[None]:
    """Switch datasets' progress bars off for small work (``quiet``), restoring the previous
    state; with ``quiet=False`` it changes nothing."""
    was_enabled = datasets.is_progress_bar_enabled()
    if quiet and was_enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if quiet and was_enabled:
            datasets.enable_progress_bars()
