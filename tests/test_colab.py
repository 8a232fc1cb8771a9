"""The Colab side (lorakit.colab and scripts/point_colab.py): the setup line, the restart
request, runs kept on Drive, and notebooks pointed at a fork."""

import importlib.util
import os
import sys
import types
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

from lorakit import colab
from lorakit.profiles import RUNS_DIR_VARIABLE


@pytest.fixture
def point_colab():
    return load_script("point_colab")


@pytest.fixture
def fake_drive(monkeypatch, tmp_path):
    """google.colab.drive as on Colab, mounting nothing; Drive's runs folder in tmp_path."""
    mounted = []
    drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(drive=drive))
    monkeypatch.setitem(sys.modules, "google", types.SimpleNamespace(
        colab=sys.modules["google.colab"]))
    monkeypatch.setattr(colab, "DRIVE_RUNS", tmp_path / "MyDrive" / "lorakit" / "runs")
    monkeypatch.delenv(RUNS_DIR_VARIABLE, raising=False)
    return mounted


def test_a_library_imported_before_the_install_asks_for_a_restart(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", types.SimpleNamespace(__version__="0.0.1"))
    assert colab.changed_since_import() == [
        f"peft 0.0.1 in memory, {importlib.metadata.version('peft')} installed"]
    with pytest.raises(RuntimeError, match=r"^Restart the runtime \(Runtime → Restart session\)"):
        colab.setup(keep_runs_on_drive=False)


def test_runs_go_to_drive_and_the_setup_says_so_in_one_line(fake_drive, capsys):
    line = colab.setup(keep_runs_on_drive=True)
    assert capsys.readouterr().out.strip() == line and "\n" not in line
    assert line.startswith("lorakit ") and "transformers " in line and "peft " in line
    assert "runs kept on Google Drive" in line and "0 runs, 0 MB there now" in line
    assert os.environ[RUNS_DIR_VARIABLE] == str(colab.DRIVE_RUNS)


def test_drive_is_mounted_and_made_the_runs_directory(fake_drive):
    folder = colab.runs_on_drive()
    assert fake_drive == [str(colab.DRIVE)] and folder.is_dir()
    assert os.environ[RUNS_DIR_VARIABLE] == str(folder)


def test_without_drive_the_setup_warns_that_runs_end_with_the_runtime(capsys, monkeypatch):
    monkeypatch.delenv(RUNS_DIR_VARIABLE, raising=False)
    assert "gone when the runtime disconnects" in colab.setup(keep_runs_on_drive=False)


def test_runs_are_counted_with_their_size(tmp_path):
    (tmp_path / "emotion" / "lora-seed0").mkdir(parents=True)
    (tmp_path / "emotion" / "lora-seed0" / "metrics.json").write_bytes(b"x" * 2_000_000)
    assert colab.runs_summary(tmp_path) == "1 run, 2 MB"


def test_a_notebook_is_pointed_at_a_fork(point_colab):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(
            "# 01 · Title\n\n[![Open In Colab](https://colab.research.google.com/assets/"
            "colab-badge.svg)](https://colab.research.google.com/github/a/b/blob/main/x)"),
        nbformat.v4.new_code_cell('LORAKIT_SOURCE = "git+https://github.com/a/b@main"')])
    path = Path("notebooks/01_lora_math.ipynb")
    point_colab.point(notebook, "you/lorakit", "v2", path)
    assert ("(https://colab.research.google.com/github/you/lorakit/blob/v2/notebooks/"
            "01_lora_math.ipynb)") in notebook.cells[0].source
    assert notebook.cells[1].source == 'LORAKIT_SOURCE = "git+https://github.com/you/lorakit@v2"'
    assert notebook.metadata["accelerator"] == "GPU"
    assert notebook.metadata["colab"]["gpuType"] == "T4"
    with pytest.raises(ValueError, match="owner/name"):
        point_colab.point(notebook, "not a repo", "main", path)
