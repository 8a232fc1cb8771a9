"""Item 4: how long each notebook takes under nbmake in the offline profile, and the test command.

Each notebook runs as CI runs it, in its own process::

    LORAKIT_PROFILE=offline HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \\
        .venv/bin/python -m pytest --nbmake notebooks/NN_name.ipynb

and its wall-clock seconds are recorded (kernel start included). With ``--with-test-command``
the README's test command (``make test``: lint, unit tests and every notebook) is timed too,
against its target of 10 minutes. This is not a comparison, so one run each is the default;
with ``--repeats N`` the notebooks run round-robin N times and the median is reported.

    .venv/bin/python benchmarks/notebooks.py                       # the notebooks only
    .venv/bin/python benchmarks/notebooks.py --with-test-command   # and `make test` (minutes)
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import REPO_ROOT, make_parser, parse_args, write_results

from lorakit.report import markdown_table

NAME = "notebooks"
EXPECTED = ("01", "02", "03", "04", "05", "06")  # the series in DESIGN.md
TEST_COMMAND_LIMIT_S = 600.0  # the README's test command under 10 minutes
# What `make test` sets (the Makefile's OFFLINE): the offline profile and no Hub.
OFFLINE_ENV = {"LORAKIT_PROFILE": "offline", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def series_notebooks() -> list[Path]:
    """The series' notebooks present in notebooks/, in order (``NN_*.ipynb``)."""
    return sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def trivial_notebook(directory: Path) -> Path:
    """A one-cell notebook, for ``--quick``: it proves the timing runs, not how long ours take."""
    path = directory / "00_quick.ipynb"
    cell = {"cell_type": "code", "execution_count": None, "id": "quick", "metadata": {},
            "outputs": [], "source": ["print(1 + 1)"]}
    notebook = {"cells": [cell], "metadata": {"kernelspec": {
        "display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))
    return path


def timed(command: Sequence[str] | str, timeout: float, shell: bool = False) -> dict:
    """Run ``command`` in the repository root with the offline environment; seconds and outcome."""
    env = {**os.environ, **OFFLINE_ENV}
    env.pop("OMP_NUM_THREADS", None)  # as make test: torch's default threads in the notebooks
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, shell=shell, capture_output=True,
                              text=True, timeout=timeout)
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        returncode, output = None, f"timed out after {timeout:g} s: {expired}"
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "returncode": returncode, "passed": returncode == 0,
            "output_tail": "" if returncode == 0 else ANSI_ESCAPE.sub("", output)[-3000:]}


def nbmake_command(notebook: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "--nbmake", str(notebook), "-q",
            "-p", "no:cacheprovider"]


def build_parser():
    parser = make_parser("notebooks.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    parser.add_argument("--notebooks", type=Path, nargs="+", default=None,
                        help="notebooks to time (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--with-test-command", action="store_true",
                        help="also time the README's test command (takes minutes)")
    parser.add_argument("--test-command", default="make test",
                        help="the README's test command, run by the shell in the repository root")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds after which a notebook or the test command is stopped")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    with tempfile.TemporaryDirectory() as scratch:
        notebooks = args.notebooks
        if notebooks is None:
            notebooks = [trivial_notebook(Path(scratch))] if args.quick else series_notebooks()
        if not notebooks:
            raise SystemExit("no notebooks/NN_*.ipynb found; pass --notebooks PATH ...")
        notebooks = [Path(nb).resolve() for nb in notebooks]
        runs: dict[Path, list[dict]] = {nb: [] for nb in notebooks}
        for round_ in range(args.repeats):
            for nb in notebooks:
                print(f"{NAME}: round {round_}, {nb.name}", file=sys.stderr, flush=True)
                runs[nb].append(timed(nbmake_command(nb), args.timeout))
        records = [notebook_record(nb, results) for nb, results in runs.items()]
    present = {nb.name[:2] for nb in series_notebooks()}
    results = {
        "records": records,
        "series": {"present": sorted(present & set(EXPECTED)),
                   "missing": sorted(set(EXPECTED) - present)},
        "test_command": None,
        "targets": {},
    }
    if args.with_test_command:
        print(f"{NAME}: {args.test_command}", file=sys.stderr, flush=True)
        run = timed(args.test_command, args.timeout, shell=True)
        results["test_command"] = {"command": args.test_command, **run,
                                   "limit_s": TEST_COMMAND_LIMIT_S}
        results["targets"]["test_command_under_10_min"] = (
            "yes" if run["passed"] and run["seconds"] < TEST_COMMAND_LIMIT_S else "no")
    write_results(NAME, results, to_markdown(results), args)
    return results


def notebook_record(notebook: Path, runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    try:
        shown = str(notebook.relative_to(REPO_ROOT))
    except ValueError:
        shown = notebook.name
    return {"notebook": shown, "median_s": statistics.median(seconds), "min_s": min(seconds),
            "max_s": max(seconds), "runs": len(runs), "passed": all(r["passed"] for r in runs),
            "runs_detail": runs}


def to_markdown(results: dict) -> str:
    rows = [{**r, "spread": f"{r['min_s']:.1f}–{r['max_s']:.1f}" if r["runs"] > 1 else ""}
            for r in results["records"]]
    table = markdown_table(rows, {"notebook": "notebook", "median_s": "seconds (median)",
                                  "spread": "min–max s", "runs": "runs", "passed": "passed"})
    total = sum(r["median_s"] for r in results["records"])
    text = (f"### Notebooks under nbmake, offline profile\n\n{table}\n\n"
            f"All notebooks together: {total:.0f} s.")
    missing = results["series"]["missing"]
    if missing:
        text += (f" Notebooks {', '.join(missing)} of the series did not exist yet when this "
                 "ran.")
    test = results["test_command"]
    if test:
        verdict = results["targets"]["test_command_under_10_min"]
        text += ("\n\n### The README's test command\n\n"
                 + markdown_table([{**test, "command": f"`{test['command']}`",
                                    "verdict": verdict}],
                                  {"command": "command", "seconds": "seconds",
                                   "passed": "passed", "verdict": "under 10 min?"}))
    return text + "\n"


def failures(results: dict) -> list[str]:
    """What did not pass: notebook paths, and the test command."""
    failed = [r["notebook"] for r in results["records"] if not r["passed"]]
    test = results["test_command"]
    if test and not test["passed"]:
        failed.append(test["command"])
    return failed


if __name__ == "__main__":
    failed = failures(main())
    if failed:
        sys.exit(f"{NAME}: failed: {', '.join(failed)} (see output_tail in the JSON)")
