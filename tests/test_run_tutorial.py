"""scripts/run_tutorial.py: which profile `make tutorial` picks, and what build/results.md says."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from lorakit import profiles

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run_tutorial.py"


@pytest.fixture
def tutorial():
    spec = importlib.util.spec_from_file_location("run_tutorial", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_hub_falls_back_to_offline_and_says_so(tutorial, monkeypatch, capsys):
    monkeypatch.delenv("LORAKIT_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "hub_reachable", lambda: False)
    assert tutorial.choose_profile() == "offline"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == printed[-1] == "=" * 78, "the banner is framed by two rules"
    assert not any("{" in line for line in printed), "every placeholder is filled in"
    assert any("not IMDB or Emotion results" in line for line in printed)


def test_an_asked_for_profile_is_kept_without_asking_the_hub(tutorial, monkeypatch, capsys):
    monkeypatch.setenv("LORAKIT_PROFILE", "quick")
    monkeypatch.setattr(profiles, "hub_reachable", lambda: pytest.fail("the Hub was asked"))
    assert tutorial.choose_profile() == "quick"
    assert capsys.readouterr().out == ""


def test_results_name_the_sample_profile_and_each_notebook(tutorial, monkeypatch, tmp_path):
    monkeypatch.setattr(tutorial, "BUILD", tmp_path)
    path = tutorial.write_results([("01_a.ipynb", 12.34, "ok"), ("02_b.ipynb", 5.0, "failed: X")],
                                  "offline")
    text = path.read_text()
    assert "not IMDB or Emotion results" in text
    assert "| 01_a.ipynb | 12.3 | ok |" in text and "| 02_b.ipynb | 5.0 | failed: X |" in text
    assert "## Runs" not in text, "no run directories, no runs table"


def test_every_outcome_is_recorded_and_the_series_goes_on(tutorial, monkeypatch, tmp_path):
    notebooks, build = tmp_path / "notebooks", tmp_path / "build"
    notebooks.mkdir()
    cells = {"01_dies": "import os\nos._exit(1)", "02_slow": "import time\ntime.sleep(120)",
             "03_fails": "raise ValueError('a bad value')", "04_fine": "print('fine')"}
    for name, source in cells.items():
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]),
                       notebooks / f"{name}.ipynb")
    monkeypatch.setattr(tutorial, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(tutorial, "BUILD", build)
    monkeypatch.setattr(sys, "argv", ["run_tutorial.py", "--timeout", "5"])
    for variable in ("LORAKIT_PROFILE", "LORAKIT_RUNS_DIR"):  # main() sets them; undone after
        monkeypatch.setenv(variable, "tiny")
    assert tutorial.main() == 1
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[2].rstrip(" |")
            for line in (build / "results.md").read_text().splitlines() if ".ipynb" in line}
    assert rows["01_dies.ipynb"].startswith("kernel died")
    assert rows["02_slow.ipynb"] == "timed out: a cell ran longer than 5 s"
    assert rows["03_fails.ipynb"].startswith("failed: ValueError: a bad value")
    assert rows["04_fine.ipynb"] == "ok"
    assert sorted(p.name for p in build.glob("*.ipynb")) == sorted(f"{n}.ipynb" for n in cells)
