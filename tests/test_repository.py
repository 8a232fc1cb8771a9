"""What the repository promises about itself: clean notebooks, the notebook contract."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run nbstripout {path}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_contract(path):
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells]
    assert sources[0].startswith("# ") and "colab-badge.svg" in sources[0], "title and badge"
    assert "**Time:**" in sources[0], "the time it takes, at the top"
    assert "LORAKIT_SOURCE" in sources[1], "the Colab setup cell comes first"
    assert any("resolve_profile()" in s for s in sources[:5]), "a profile cell near the top"
    assert "What we learned" in sources[-1], "a closing 'what we learned' section"
