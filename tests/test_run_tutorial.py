"""scripts/run_tutorial.py: which profile `make tutorial` picks, and what build/results.md says."""

import importlib.util
from pathlib import Path

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
