"""Copy the latest results (``benchmarks/results/*.md``) into ``benchmarks/README.md``.

    .venv/bin/python benchmarks/readme.py

The README holds them between two marker lines, each table one heading level lower than in its
own file; ``tests/test_benchmarks.py`` checks that the copy matches the results files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import REPO_ROOT

README = REPO_ROOT / "benchmarks" / "README.md"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
RESULTS = ("layer", "train_step", "inference", "notebooks", "offline_profile", "offline_rates",
           "t4_plan", "environments-latest", "environments-colab")  # README order
BEGIN = "<!-- latest results: copied from benchmarks/results/ by benchmarks/readme.py -->"
END = "<!-- end of latest results -->"


def latest_results(results_dir: Path = RESULTS_DIR) -> str:
    """Every results file present, in ``RESULTS`` order, its headings one level lower."""
    sections = []
    for name in RESULTS:
        path = results_dir / f"{name}.md"
        if path.exists():
            lines = path.read_text().strip().splitlines()
            sections.append("\n".join("#" + line if line.startswith("#") else line
                                      for line in lines))
    return "\n\n".join(sections)


def with_latest_results(readme: str, results: str) -> str:
    """``readme`` with the text between the markers replaced by ``results``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError(f"{README} needs exactly one {BEGIN!r} line and one {END!r} line")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n\n{results}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n")[0]
    argparse.ArgumentParser(prog="benchmarks/readme.py", description=description).parse_args(argv)
    README.write_text(with_latest_results(README.read_text(), latest_results()))
    print(f"{README.relative_to(REPO_ROOT)}: latest results copied from "
          f"{RESULTS_DIR.relative_to(REPO_ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
