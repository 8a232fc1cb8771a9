"""A task's data, loaded from wherever it is, and tokenized (the tasks: ``lorakit.tasks``).

``load_task`` returns the same shape from every source, a ``datasets.DatasetDict`` with the splits
``train``, ``validation`` and ``test`` and exactly two columns, ``text`` (str) and ``label`` (a
``datasets.ClassLabel`` with the task's names)::

    data = load_task("emotion")                     # the Hub, or the bundled samples offline
    data = load_task("imdb", data_files={"train": "IMDB Dataset.csv", "test": "test.csv"})

Sources, first match wins: local files given as ``data_files`` (CSV, TSV, JSON lines, Parquet,
or the ``text;label`` lines of the Kaggle copy of Emotion), the samples bundled in
``lorakit/fixtures`` when the profile says so (``offline``, ``tiny``), else the Hugging Face Hub.
A source without a validation split (IMDB has none) gives up a seeded 10% of its training split.
Reading and checking local files, and the errors bad data gets, are in ``lorakit.local_files``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import datasets
from datasets.fingerprint import Hasher
from huggingface_hub.errors import LocalEntryNotFoundError

from lorakit.checks import require_int
from lorakit.local_files import (
    REQUIRED_SPLITS,
    SPLITS,
    cap_rows,
    carve_validation,
    check_data_files,
    normalise_split,
    one_line,
    progress_bars_off,
    read_splits,
)
from lorakit.profiles import ENV_VARIABLE, resolve_profile
from lorakit.tasks import FIXTURES_DIR, HubUnavailableError, TaskSpec, get_task

QUIET_BELOW = 10_000  # datasets' progress bars stay off for splits smaller than this


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
    settings = profile.recipe(spec.name)
    require_int("seed", seed, 0, example=0)
    max_train, max_eval = _caps(max_train, max_eval, settings)
    if data_files is not None:
        raw = read_splits(check_data_files(data_files))
    elif profile.data == "fixtures":
        raw = read_splits(_fixture_files(spec))
    else:
        raw = _hub_splits(spec)

    splits = {
        split: normalise_split(dataset, split, where, spec, text_column, label_column)
        for split, (dataset, where) in raw.items()
    }
    if "validation" not in splits:
        splits["train"], splits["validation"] = carve_validation(
            splits["train"], raw["train"][1], spec.validation_fraction, seed
        )
    caps = {"train": max_train, "validation": max_eval, "test": max_eval}
    return datasets.DatasetDict(
        {split: cap_rows(splits[split], caps[split], seed) for split in SPLITS}
    )


def write_csv_files(dataset_dict: datasets.DatasetDict, directory) -> dict[str, Path]:
    """Each split of ``load_task``'s data as ``directory/<split>.csv``, a text and a label *name*
    per row: data shaped like a reader's own, for a recipe that starts from CSV files.

    Returns {split: path}; the directory is created if needed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, dataset in dataset_dict.items():
        names = dataset.features["label"].names
        table = dataset.to_pandas()
        paths[split] = directory / f"{split}.csv"
        table.assign(label=table["label"].map(names.__getitem__)).to_csv(paths[split], index=False)
    return paths


def _caps(max_train: int | None, max_eval: int | None, recipe) -> tuple[int | None, int | None]:
    """``load_task``'s caps, checked, None taking the profile's recipe's."""
    profile_value = "or None for the profile's value"
    if max_train is not None:
        max_train = require_int("max_train", max_train, example=f"max_train=1000, {profile_value}")
    if max_eval is not None:
        max_eval = require_int("max_eval", max_eval, example=f"max_eval=500, {profile_value}")
    return (recipe.max_train if max_train is None else max_train,
            recipe.max_eval if max_eval is None else max_eval)


def tokenize_task(
    dataset_dict: datasets.DatasetDict, tokenizer, max_length: int
) -> datasets.DatasetDict:
    """Add ``input_ids`` and ``attention_mask`` to every split, truncated to ``max_length`` tokens.

    Nothing is padded here: ``transformers.DataCollatorWithPadding`` pads each batch to its own
    longest example. ``text`` and ``label`` are kept (the label is the model's target).
    """
    require_int("max_length", max_length, 2, example="max_length=128 (tokens, special included)")
    for split, dataset in dataset_dict.items():
        if "text" not in dataset.column_names:
            raise ValueError(
                f"split {split!r} has no 'text' column (columns: {', '.join(dataset.column_names)})"
                "; tokenize the DatasetDict that load_task returns"
            )

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    small = all(len(dataset) < QUIET_BELOW for dataset in dataset_dict.values())
    with progress_bars_off(small):
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
# Sources: each gives {split: (raw Dataset, where it came from)}; local files: lorakit.local_files


def _fixture_files(spec: TaskSpec) -> dict[str, Path]:
    """The bundled sample files of ``spec``'s task, ``{split: path}`` (validation if bundled);
    a FileNotFoundError when the train or test sample is missing."""
    folder = FIXTURES_DIR / spec.name
    files = {split: folder / f"{split}.jsonl" for split in SPLITS}
    for split in REQUIRED_SPLITS:
        if not files[split].is_file():
            raise FileNotFoundError(
                f"the bundled sample {files[split]} is missing; reinstall lorakit, or regenerate "
                "the samples with scripts/make_fixtures.py in a source checkout"
            )
    return {split: path for split, path in files.items() if path.is_file()}


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
    """The task's splits from the Hub, ``{split: (Dataset, "the Hub dataset '<id>'")}``.

    A HubUnavailableError when the Hub cannot be reached, a ValueError when it has no train or
    test split.
    """
    try:
        loaded = _load_from_hub(spec)
    except _network_errors() as error:
        raise HubUnavailableError(
            f"could not reach the Hugging Face Hub for dataset '{spec.hub_id}' "
            f"({type(error).__name__}: {one_line(error)}); pass local files instead "
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

