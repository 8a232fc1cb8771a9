"""The two tasks, IMDB and Emotion: what they are, where their data comes from, and tokenization.

``load_task`` returns the same shape from every source, a ``datasets.DatasetDict`` with the splits
``train``, ``validation`` and ``test`` and exactly two columns, ``text`` (str) and ``label`` (a
``datasets.ClassLabel`` with the task's names)::

    data = load_task("emotion")                     # the Hub, or the bundled samples offline
    data = load_task("imdb", data_files={"train": "IMDB Dataset.csv", "test": "test.csv"})

Sources, first match wins: local files given as ``data_files`` (CSV, TSV, JSON lines, Parquet,
or the ``text;label`` lines of the Kaggle copy of Emotion), the samples bundled in
``lorakit/fixtures`` when the profile says so (``offline``, ``tiny``), else the Hugging Face Hub.
A source without a validation split (IMDB has none) gives up a seeded 10% of its training split.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq
from datasets.fingerprint import Hasher
from huggingface_hub.errors import LocalEntryNotFoundError

from lorakit.profiles import ENV_VARIABLE, resolve_profile

FIXTURES_DIR = Path(__file__).parent / "fixtures"
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
QUIET_BELOW = 10_000  # datasets' progress bars stay off for splits smaller than this


@dataclass(frozen=True)
class TaskSpec:
    """One classification task: where it lives on the Hub, its labels and its column names.

    ``label_names[i]`` is the name of label id ``i``. ``label_aliases`` maps other spellings found
    in copies of the dataset (e.g. the Kaggle IMDB CSV's ``positive``) to a label name.
    ``text_columns`` / ``label_columns`` are the column names accepted for text and label, tried
    in order. ``validation_from_train``: the source has no validation split, so
    ``validation_fraction`` of the training split (seeded) becomes one. ``hub_config`` names the
    dataset's configuration on the Hub (never left to the card's default), and
    ``hub_data_files``, when set, lists the only files to download, by split; ``hub_sizes`` are
    the examples per split there.
    """

    name: str
    hub_id: str
    hub_config: str
    label_names: tuple[str, ...]
    label_aliases: dict[str, str] = field(default_factory=dict, hash=False)
    text_columns: tuple[str, ...] = ("text",)
    label_columns: tuple[str, ...] = ("label",)
    validation_from_train: bool = False
    validation_fraction: float = 0.1
    description: str = ""
    hub_sizes: dict[str, int] = field(default_factory=dict, hash=False)
    hub_data_files: dict[str, str] | None = field(default=None, hash=False)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def label_lookup(self) -> dict[str, int]:
        """Lower-cased label names and aliases → label id."""
        lookup = {name.lower(): i for i, name in enumerate(self.label_names)}
        for alias, name in self.label_aliases.items():
            lookup[alias.lower()] = self.label2id[name]
        return lookup

    def describe_labels(self) -> str:
        """E.g. ``0=neg, 1=pos (also accepted: positive, negative)``."""
        text = ", ".join(f"{i}={name}" for i, name in enumerate(self.label_names))
        if self.label_aliases:
            text += f" (also accepted: {', '.join(self.label_aliases)})"
        return text


TASKS = {
    "imdb": TaskSpec(
        name="imdb",
        hub_id="stanfordnlp/imdb",
        hub_config="plain_text",
        label_names=("neg", "pos"),
        label_aliases={"positive": "pos", "negative": "neg"},
        text_columns=("text", "review"),  # "review"/"sentiment": the Kaggle "IMDB Dataset.csv"
        label_columns=("label", "sentiment"),
        validation_from_train=True,
        description="movie reviews, positive or negative (Maas et al., 2011)",
        hub_sizes={"train": 25_000, "test": 25_000},  # the dataset card of stanfordnlp/imdb
        # not the 50,000 unlabelled reviews of its "unsupervised" split (label -1)
        hub_data_files={"train": "plain_text/train-*", "test": "plain_text/test-*"},
    ),
    "emotion": TaskSpec(
        name="emotion",
        hub_id="dair-ai/emotion",
        hub_config="split",  # its other configuration, "unsplit", is all the tweets in one split
        label_names=("sadness", "joy", "love", "anger", "fear", "surprise"),
        description="English tweets labelled with one of six emotions (Saravia et al., 2018)",
        hub_sizes={"train": 16_000, "validation": 2_000, "test": 2_000},  # its dataset card
    ),
}


class HubUnavailableError(RuntimeError):
    """The Hugging Face Hub could not be reached (no network, or offline mode is set)."""


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The ``TaskSpec`` called ``name`` (case-insensitive); a TaskSpec is returned as it is."""
    if isinstance(name, TaskSpec):
        return name
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[key]


def label_names(task: str | TaskSpec) -> list[str]:
    """The task's label names in label-id order, e.g. ``['neg', 'pos']``."""
    return list(get_task(task).label_names)


def load_task(
    task: str | TaskSpec,
    profile=None,
    data_files: Mapping[str, str | os.PathLike] | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    seed: int = 0,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> datasets.DatasetDict:
    """Load a task's train/validation/test splits as ``text`` (str) and ``label`` (ClassLabel).

    Args:
        task: ``"imdb"`` or ``"emotion"`` (or a TaskSpec).
        profile: a profile name or ``Profile``; None resolves it (``$LORAKIT_PROFILE``, hardware).
            It says where the data comes from (bundled samples or the Hub) and the default caps.
        data_files: local files by split, e.g. ``{"train": "train.csv", "test": "test.csv"}``;
            ``train`` and ``test`` are required, ``validation`` is optional (a split mapped to
            None counts as absent). The format follows the extension: .csv, .tsv, .jsonl/.json
            (JSON lines), .parquet, or .txt with one ``text;label`` per line.
        text_column, label_column: the columns holding text and label; by default ``text`` and
            ``label`` (IMDB also accepts the Kaggle CSV's ``review`` and ``sentiment``).
        seed: seeds the carving of validation from train and the subsets drawn by the caps.
        max_train, max_eval: keep at most this many examples of train / of each evaluation split
            (a seeded random subset); None takes the profile's value (None there keeps all).
            Validation is carved from the whole training split first, then the caps apply.

    Labels may be ids (``0``, ``"1"``) or names in any case (``"Pos"``, ``" joy "``, and the
    aliases of ``TaskSpec.label_aliases``). Rows keep their order unless a cap draws a subset.
    Raises ``ValueError`` (one line, naming the file and rows) for bad data,
    ``FileNotFoundError`` for a missing file, ``HubUnavailableError`` when the Hub cannot be
    reached.
    """
    spec = get_task(task)
    profile = resolve_profile(profile)
    settings = profile.settings(spec.name)
    _check_int("seed", seed, minimum=0)
    keep_all = " (or None for the profile's value)"
    if max_train is not None:
        max_train = _check_int("max_train", max_train, hint=keep_all)
    if max_eval is not None:
        max_eval = _check_int("max_eval", max_eval, hint=keep_all)
    max_train = settings.max_train if max_train is None else max_train
    max_eval = settings.max_eval if max_eval is None else max_eval

    if data_files is not None:
        raw = _local_splits(_check_data_files(data_files))
    elif profile.data == "fixtures":
        raw = _local_splits(_fixture_files(spec))
    else:
        raw = _hub_splits(spec)

    splits = {
        split: _normalise(dataset, split, where, spec, text_column, label_column)
        for split, (dataset, where) in raw.items()
    }
    if "validation" not in splits:
        splits["train"], splits["validation"] = _carve_validation(
            splits["train"], raw["train"][1], spec.validation_fraction, seed
        )
    caps = {"train": max_train, "validation": max_eval, "test": max_eval}
    return datasets.DatasetDict(
        {split: _cap(splits[split], caps[split], seed) for split in SPLITS}
    )


def split_sizes(task: str | TaskSpec, profile=None) -> dict[str, int]:
    """The examples each split holds in this profile, known without downloading anything: the
    bundled samples are counted, the Hub's sizes come from its dataset card (``hub_sizes``),
    with the same validation carve and caps as ``load_task``."""
    spec, profile = get_task(task), resolve_profile(profile)
    if profile.data == "fixtures":
        return {split: rows.num_rows for split, rows in load_task(spec, profile).items()}
    settings = profile.settings(spec.name)
    sizes = dict(spec.hub_sizes)
    if spec.validation_from_train:
        sizes["validation"] = max(1, round(spec.validation_fraction * sizes["train"]))
        sizes["train"] -= sizes["validation"]
    caps = {"train": settings.max_train, "validation": settings.max_eval,
            "test": settings.max_eval}
    return {split: min(sizes[split], caps[split] or sizes[split]) for split in SPLITS}


def tokenize_task(
    dataset_dict: datasets.DatasetDict, tokenizer, max_length: int
) -> datasets.DatasetDict:
    """Add ``input_ids`` and ``attention_mask`` to every split, truncated to ``max_length`` tokens.

    Nothing is padded here: ``transformers.DataCollatorWithPadding`` pads each batch to its own
    longest example. ``text`` and ``label`` are kept (the label is the model's target).
    """
    _check_int("max_length", max_length, minimum=2, hint=" (tokens, special tokens included)")
    for split, dataset in dataset_dict.items():
        if "text" not in dataset.column_names:
            raise ValueError(
                f"split {split!r} has no 'text' column (columns: {', '.join(dataset.column_names)})"
                "; tokenize the DatasetDict that load_task returns"
            )

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    small = all(len(dataset) < QUIET_BELOW for dataset in dataset_dict.values())
    with _progress_bars_off(small):
        return datasets.DatasetDict({
            split: dataset.map(encode, batched=True, new_fingerprint=_tokenized_fingerprint(
                dataset, tokenizer, max_length))
            for split, dataset in dataset_dict.items()
        })


def _tokenized_fingerprint(dataset: datasets.Dataset, tokenizer, max_length: int) -> str | None:
    """The cache key of ``dataset`` tokenized by ``tokenizer``, or None to let datasets work it out.

    datasets would pickle and hash the whole tokenizer object for it, 1.5 s for BERT's on our CPU,
    at every run; a fast tokenizer's JSON and the Python-side settings that change its output
    identify it as well, in milliseconds.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = json.loads(backend.to_str())
    for state in ("truncation", "padding"):  # set by the last call, not part of what it is
        spec.pop(state, None)
    vocabulary_and_rules = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    identity = (dataset._fingerprint, type(tokenizer).__name__, vocabulary_and_rules,
                list(tokenizer.model_input_names), max_length)
    return Hasher.hash(identity)


# ---------------------------------------------------------------------------------------------
# Sources: each gives {split: (raw Dataset, where it came from)}


def _check_data_files(data_files) -> dict[str, Path]:
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


def _fixture_files(spec: TaskSpec) -> dict[str, Path]:
    folder = FIXTURES_DIR / spec.name
    files = {split: folder / f"{split}.jsonl" for split in SPLITS}
    for split in REQUIRED_SPLITS:
        if not files[split].is_file():
            raise FileNotFoundError(
                f"the bundled sample {files[split]} is missing; reinstall lorakit, or regenerate "
                "the samples with scripts/make_fixtures.py in a source checkout"
            )
    return {split: path for split, path in files.items() if path.is_file()}


def _local_splits(files: dict[str, Path]) -> dict[str, tuple[datasets.Dataset, str]]:
    for path in files.values():  # fail on a wrong path or extension before reading any file
        _check_file(path)
    loaded: dict[Path, datasets.Dataset] = {}  # a file given for two splits is read once
    for path in files.values():
        if path not in loaded:
            loaded[path] = _read_file(path)
    return {split: (loaded[path], str(path)) for split, path in files.items()}


def _load_from_hub(spec: TaskSpec) -> datasets.DatasetDict:
    """Download the task's configuration, only the files of ``spec.hub_data_files`` when set (or
    read them from the local cache): the only call that needs network."""
    return datasets.load_dataset(spec.hub_id, spec.hub_config, data_files=spec.hub_data_files)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning 'the Hub is unreachable', whichever HTTP client huggingface_hub uses."""
    # datasets turns offline mode and failed connections into the built-in ConnectionError
    # (huggingface_hub's OfflineModeIsEnabled is one too); the others can escape from downloads.
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, LocalEntryNotFoundError]
    for module, names in (
        ("httpx2", ("TransportError",)),  # huggingface_hub >= 1.0 (datasets 5)
        ("httpx", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),  # huggingface_hub < 1.0
    ):
        try:
            imported = importlib.import_module(module)
        except ImportError:
            continue
        errors += [getattr(imported, name) for name in names if hasattr(imported, name)]
    return tuple(errors)


def _hub_splits(spec: TaskSpec) -> dict[str, tuple[datasets.Dataset, str]]:
    try:
        loaded = _load_from_hub(spec)
    except _network_errors() as error:
        raise HubUnavailableError(
            f"could not reach the Hugging Face Hub for dataset '{spec.hub_id}' "
            f"({type(error).__name__}: {_one_line(error)}); pass local files instead "
            "(data_files={'train': ..., 'test': ...} in Python, --train-file/--test-file on the "
            f"command line) or set {ENV_VARIABLE}=offline to use the bundled samples"
        ) from error
    where = f"the Hub dataset '{spec.hub_id}'"
    missing = [split for split in REQUIRED_SPLITS if split not in loaded]
    if missing:
        raise ValueError(
            f"{where} has no {' or '.join(map(repr, missing))} split (it has "
            f"{', '.join(loaded)}); pass local files with data_files=..."
        )
    return {split: (loaded[split], where) for split in SPLITS if split in loaded}


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
        raise ValueError(f"could not read {path} as {format_name}: {_one_line(error)}") from error
    return _split_text_label_lines(dataset, path) if fmt == "txt" else dataset


def _check_file(path: Path) -> str:
    """The file's format; a ValueError for an unknown extension, FileNotFoundError if absent."""
    fmt = file_format(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"data file {path} {what}; check the path")
    return fmt


def _load(builder: str, path: Path, **kwargs) -> datasets.Dataset:
    # data_files are glob patterns to datasets; escape them so that 'a[1].csv' means that file
    with _progress_bars_off(), _no_download_count():
        return datasets.load_dataset(
            builder, data_files=glob.escape(str(path.resolve())), split="train", **kwargs
        )


def _read_csv(path: Path, fmt: str) -> datasets.Dataset:
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
    return _load("json", path)


def _read_parquet(path: Path, fmt: str) -> datasets.Dataset:
    metadata = pq.read_metadata(path)
    if metadata.num_rows == 0:
        return datasets.Dataset.from_dict({name: [] for name in metadata.schema.names})
    return _load("parquet", path)


def _read_lines(path: Path, fmt: str) -> datasets.Dataset:
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
    with _progress_bars_off():
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


def _normalise(
    dataset: datasets.Dataset, split: str, where: str, spec: TaskSpec,
    text_column: str | None, label_column: str | None,
) -> datasets.Dataset:
    if len(dataset) == 0:
        raise ValueError(f"split {split!r} from {where} has no rows")
    text_name = _find_column(dataset, split, where, "text", text_column, spec.text_columns)
    label_name = _find_column(dataset, split, where, "label", label_column, spec.label_columns)
    texts = list(dataset[text_name])
    _check_texts(texts, split, where, text_name)
    ids = _label_ids(list(dataset[label_name]), dataset.features[label_name], split, where, spec)
    label = datasets.ClassLabel(names=list(spec.label_names))
    features = datasets.Features({"text": datasets.Value("string"), "label": label})
    with _progress_bars_off():
        return datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)


def _find_column(
    dataset: datasets.Dataset, split: str, where: str, role: str, chosen: str | None,
    accepted: tuple[str, ...],
) -> str:
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


def _carve_validation(
    train: datasets.Dataset, where: str, fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a seeded ``fraction`` (at least one row) off ``train`` as the validation split."""
    if len(train) < 2:
        raise ValueError(
            f"split 'train' from {where} has {len(train)} row, too few to carve a validation "
            "split from it; add rows or pass a validation file (--validation-file)"
        )
    size = min(len(train) - 1, max(1, round(fraction * len(train))))
    with _progress_bars_off():
        parts = train.train_test_split(test_size=size, seed=seed)
    return parts["train"], parts["test"]


def _cap(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset of ``limit`` rows, or ``dataset`` itself when it is no larger."""
    if limit is None or len(dataset) <= limit:
        return dataset
    with _progress_bars_off():
        return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


# ---------------------------------------------------------------------------------------------
# Small helpers


def _check_int(name: str, value, minimum: int = 1, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} is a {type(value).__name__}; pass an int{hint}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}{hint}")
    return value


def _few(numbers: list[int]) -> str:
    """'3, 17, 20' or '3, 17, 20, 31, 40, … (12 in all)'."""
    shown = ", ".join(str(n) for n in numbers[:SHOWN])
    return shown if len(numbers) <= SHOWN else f"{shown}, … ({len(numbers)} in all)"


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The error's message on one line, with its cause's (datasets wraps the useful one)."""
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
def _progress_bars_off(quiet: bool = True) -> Iterator[None]:
    """Switch datasets' progress bars off for small work, restoring the previous state."""
    was_enabled = datasets.is_progress_bar_enabled()
    if quiet and was_enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if quiet and was_enabled:
            datasets.enable_progress_bars()
