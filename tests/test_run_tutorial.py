"""scripts/run_tutorial.py: which profile `make tutorial` picks, and what build/results.md says."""

import io
import sys

import nbformat
import pytest
from helpers import load_script

from lorakit import profiles


@pytest.fixture
def tutorial():
    return load_script("run_tutorial")


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


def test_the_appendices_run_after_the_core_path_into_build_appendix(tutorial, monkeypatch,
                                                                    tmp_path):
    notebooks, build = tmp_path / "notebooks", tmp_path / "build"
    (notebooks / "appendix").mkdir(parents=True)
    for path in (notebooks / "01_a.ipynb", notebooks / "appendix" / "A1_b.ipynb"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    monkeypatch.setattr(tutorial, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(tutorial, "BUILD", build)
    monkeypatch.setattr(sys, "argv", ["run_tutorial.py"])
    for variable in ("LORAKIT_PROFILE", "LORAKIT_RUNS_DIR"):
        monkeypatch.setenv(variable, "tiny")
    assert tutorial.main() == 0
    assert (build / "01_a.ipynb").is_file() and (build / "appendix" / "A1_b.ipynb").is_file()
    text = (build / "results.md").read_text()
    assert text.index("| 01_a.ipynb |") < text.index("| appendix/A1_b.ipynb |")


def small_notebook():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("setup"),
        nbformat.v4.new_markdown_cell("## 1 · The data\ntext"),
        nbformat.v4.new_code_cell("estimate"),
        nbformat.v4.new_code_cell("train"),
    ])


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_without_a_terminal_progress_is_a_plain_line_at_most_every_ten_seconds(tutorial):
    notebook, clock, stream = small_notebook(), FakeClock(), io.StringIO()
    progress = tutorial.CellProgress(notebook, "04", stream=stream, interactive=False,
                                     every=10, clock=clock)
    progress.cell_started(notebook.cells[0], 0)
    clock.now = 4
    progress.cell_executed(notebook.cells[0], 0)  # 4 s after the start: no line yet
    clock.now = 5
    progress.cell_started(notebook.cells[2], 2)
    clock.now = 12
    notebook.cells[2].outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text="these 4 runs take about 2 min (steps only)\n")]
    progress.cell_executed(notebook.cells[2], 2)
    clock.now = 15
    progress.cell_started(notebook.cells[3], 3)  # 3 s after the last line: nothing
    clock.now = 42
    progress.cell_executed(notebook.cells[3], 3)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "  04: cell 2/3 · 1 · The data · 12 s, 0% of its 2 min estimate",
        "  04: cell 3/3 · 1 · The data · 42 s, 25% of its 2 min estimate"]  # 30 s of 120


def test_in_a_terminal_progress_is_a_bar_with_the_section(tutorial):
    notebook, clock, stream = small_notebook(), FakeClock(), io.StringIO()
    progress = tutorial.CellProgress(notebook, "05", stream=stream, interactive=True,
                                     clock=clock)
    progress.cell_executed(notebook.cells[0], 0)
    progress.cell_started(notebook.cells[3], 3)
    progress.close()
    shown = stream.getvalue()
    assert "05:" in shown and "1/3 cells" in shown and "1 · The data" in shown


def test_estimates_are_read_from_what_a_cell_printed(tutorial):
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="runs take about 2.5 min; loop takes about 30 s\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="take about 1 h\n")]
    assert tutorial.printed_estimate_seconds(cell) == 2.5 * 60 + 30 + 3600


def test_saved_notebooks_drop_progress_widgets_and_keep_what_was_printed(tutorial):
    cell = nbformat.v4.new_code_cell("run_each(grid)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={
            tutorial.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "runs:   0%|   | 0/9"}),
        nbformat.v4.new_output("stream", name="stdout", text="9 runs: 9 trained\n"),
        nbformat.v4.new_output("display_data", data={"text/html": "<table></table>"})]
    nb = tutorial.without_progress_widgets(nbformat.v4.new_notebook(cells=[cell]))
    kept = nb.cells[0].outputs
    assert [o.output_type for o in kept] == ["stream", "display_data"]
    assert kept[0].text == "9 runs: 9 trained\n" and "text/html" in kept[1].data
