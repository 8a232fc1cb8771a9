"""The fixture samples in lorakit/fixtures: well formed, complete, and reproducible."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "lorakit" / "fixtures"
GENERATOR = REPO_ROOT / "scripts" / "make_fixtures.py"

NUM_LABELS = {"imdb": 2, "emotion": 6}
SPLITS = {"imdb": ("train", "test"), "emotion": ("train", "validation", "test")}
TASK_SPLITS = [(task, split) for task, splits in SPLITS.items() for split in splits]


def read_rows(task: str, split: str) -> list[dict]:
    path = FIXTURES_DIR / task / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def load_generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("task", "split"), TASK_SPLITS)
def test_rows_are_text_and_label_in_range(task, split):
    rows = read_rows(task, split)
    assert rows
    for row in rows:
        assert set(row) == {"text", "label"}
        assert isinstance(row["text"], str) and row["text"].strip()
        assert isinstance(row["label"], int) and 0 <= row["label"] < NUM_LABELS[task]


@pytest.mark.parametrize(("task", "split"), TASK_SPLITS)
def test_every_class_appears_in_every_split(task, split):
    labels = {row["label"] for row in read_rows(task, split)}
    assert labels == set(range(NUM_LABELS[task]))


@pytest.mark.parametrize("task", SPLITS)
def test_no_text_repeats_within_or_across_splits(task):
    texts = [row["text"] for split in SPLITS[task] for row in read_rows(task, split)]
    assert len(texts) == len(set(texts))


def test_imdb_has_reviews_longer_than_200_words():
    lengths = [len(row["text"].split()) for row in read_rows("imdb", "train")]
    assert sum(length > 200 for length in lengths) >= 0.1 * len(lengths)


def generated_files(root: Path) -> list[Path]:
    """The files the generator writes (data and README), relative to ``root``."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in {".jsonl", ".md"})


def test_generator_reproduces_committed_files(tmp_path):
    load_generator().build_fixtures(tmp_path)
    generated = generated_files(tmp_path)
    assert generated == generated_files(FIXTURES_DIR)
    for relative in generated:
        assert (tmp_path / relative).read_bytes() == (FIXTURES_DIR / relative).read_bytes()
