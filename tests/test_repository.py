"""What the repository promises about itself: clean notebooks, the notebook contract, the
learner's reading budget, and notebooks that open on Colab with a T4."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CORE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
APPENDICES = sorted((ROOT / "notebooks" / "appendix").glob("*.ipynb"))
ALL = CORE + APPENDICES
BADGE = re.compile(r"\(https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/"
                   r"([^)]+)\)")
SOURCE = re.compile(r'LORAKIT_SOURCE = "git\+https://github\.com/([^@"]+)@([^"]+)"')
READING_BUDGET = {"words": 13_000, "code lines": 1_600}  # about 2½ hours for the core path


def cells(path):
    return json.loads(path.read_text())["cells"]


def sources(path):
    return ["".join(c["source"]) for c in cells(path)]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run nbstripout {path}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_follows_the_contract(path):
    text = sources(path)
    assert text[0].startswith("# ") and "colab-badge.svg" in text[0], "title and badge"
    assert "**Time:**" in text[0] and "min to read" in text[0], "how long it reads, at the top"
    assert "LORAKIT_SOURCE" in text[1], "the Colab setup cell comes first"
    assert any("resolve_profile()" in s for s in text[:5]), "a profile cell near the top"
    assert "What we learned" in text[-1], "a closing 'what we learned' section"
    if path in CORE:
        assert "After this notebook you can" in " ".join(text[0].split()), "the promise"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_a_badge_opens_this_notebook_and_the_setup_installs_from_the_same_place(path):
    text = sources(path)
    repo, ref, notebook = BADGE.search(text[0]).groups()
    assert notebook == path.relative_to(ROOT).as_posix()
    assert SOURCE.search(text[1]).groups() == (repo, ref)
    assert "%pip install" in text[1], "the install shows in the cell's output"
    metadata = json.loads(path.read_text())["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"


def test_every_notebook_points_at_one_repository_and_ref():
    pairs = {BADGE.search(sources(path)[0]).groups()[:2] for path in ALL}
    assert len(pairs) == 1, f"badges point at {pairs}: run make colab REPO=... REF=..."


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_notebook_cell_decides_a_device(path):
    code = [s for c, s in zip(cells(path), sources(path), strict=True) if c["cell_type"] == "code"]
    offending = [s for s in code if "torch.cuda" in s or '"cuda"' in s or ".cuda(" in s]
    assert not offending, "heavy work runs where lorakit.precision.compute_device() says"


def test_the_core_path_fits_the_learners_reading_budget():
    words = lines = 0
    for path in CORE:
        for cell, text in zip(cells(path), sources(path), strict=True):
            if cell["cell_type"] == "markdown":
                words += len(re.findall(r"\w+", text))
            else:
                lines += len(text.splitlines())
    assert words <= READING_BUDGET["words"] and lines <= READING_BUDGET["code lines"], (
        f"{words:,} words and {lines:,} lines of code: move depth to notebooks/appendix/")


@pytest.mark.parametrize("path", APPENDICES, ids=lambda p: p.name)
def test_every_appendix_is_linked_from_the_core_path(path):
    link = f"appendix/{path.name}"
    assert any(link in "".join(sources(core)) for core in CORE), f"nothing links to {link}"


def test_03s_literal_recipe_is_the_full_profiles():
    """03 writes DistilBERT's settings as literals a reader copies; they must be what the `full`
    profile trains with, or a reader would copy numbers the series never ran."""
    from lorakit.profiles import PROFILES

    code = "\n".join(sources(ROOT / "notebooks" / "03_peft_comparison.ipynb"))
    model = re.search(r'^MODEL = "([^"]+)"', code, re.MULTILINE).group(1)
    rate = float(re.search(r"^LEARNING_RATE = ([\d.e-]+)", code, re.MULTILINE).group(1))
    rest = re.search(r"^EPOCHS, BATCH_SIZE, WARMUP, MAX_LENGTH = ([\d., ]+?)\s*(#|$)", code,
                     re.MULTILINE).group(1)
    epochs, batch_size, warmup, max_length = (float(v) for v in rest.split(","))
    full = PROFILES["full"]
    recipe = full.recipe("emotion")
    assert model == full.model
    assert rate == recipe.learning_rates["lora"]
    assert (epochs, batch_size, warmup, max_length) == (
        recipe.epochs, recipe.batch_size, recipe.warmup_fraction, recipe.max_length)
