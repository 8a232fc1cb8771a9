"""Point every notebook's "Open in Colab" badge and setup cell at a GitHub repository and ref.

The badge opens the notebook itself on Colab
(``https://colab.research.google.com/github/<owner>/<repo>/blob/<ref>/notebooks/<file>``), the
setup cell installs lorakit from the same place (``git+https://github.com/<owner>/<repo>@<ref>``),
and the notebook's metadata asks Colab for a T4 GPU. Run it after forking, so that nothing has
to be edited by hand:

    make colab REPO=you/lorakit REF=main
    python scripts/point_colab.py you/lorakit main      # the same

Usage from tests: ``point(notebook, repo, ref)`` returns the notebook changed in memory.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)]*\)")
SOURCE = re.compile(r'^LORAKIT_SOURCE = "[^"]*"', re.MULTILINE)
REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


def badge(repo: str, ref: str, path: Path) -> str:
    """The Markdown badge that opens ``path`` (relative to the repository) on Colab."""
    return (f"[![Open In Colab]({BADGE_IMAGE})](https://colab.research.google.com/github/"
            f"{repo}/blob/{ref}/{path.as_posix()})")


def install_source(repo: str, ref: str) -> str:
    """What the setup cell gives ``%pip install``: the repository at ``ref``."""
    return f"git+https://github.com/{repo}@{ref}"


def point(notebook: nbformat.NotebookNode, repo: str, ref: str,
          path: Path) -> nbformat.NotebookNode:
    """``notebook`` (at ``path`` in the repository) with its badge, its setup cell and its
    metadata pointing at ``repo`` and ``ref``; a ValueError when it has no badge or no
    ``LORAKIT_SOURCE = "..."`` line to point."""
    if not REPO.match(repo) or not ref or any(c.isspace() for c in ref):
        raise ValueError(f"repo={repo!r}, ref={ref!r}: give owner/name and a branch, tag or "
                         "commit, e.g. REPO=you/lorakit REF=main")
    first, setup = notebook.cells[0], notebook.cells[1]
    if not BADGE.search(first.source) or not SOURCE.search(setup.source):
        raise ValueError(f"{path}: the first cell needs the Colab badge and the second the "
                         'line LORAKIT_SOURCE = "..."; see notebooks/01_lora_math.ipynb')
    first.source = BADGE.sub(badge(repo, ref, path), first.source, count=1)
    setup.source = SOURCE.sub(f'LORAKIT_SOURCE = "{install_source(repo, ref)}"', setup.source,
                              count=1)
    notebook.metadata.update(COLAB_METADATA)
    return notebook


def notebooks() -> list[Path]:
    """Every notebook of the series: the core path and the appendices."""
    return sorted([*NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"), *NOTEBOOKS.glob("appendix/*.ipynb")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repo", help="owner/name on GitHub, e.g. you/lorakit")
    parser.add_argument("ref", nargs="?", default="main", help="branch, tag or commit")
    args = parser.parse_args(argv)
    try:
        for path in notebooks():
            notebook = nbformat.read(path, as_version=4)
            point(notebook, args.repo, args.ref, path.relative_to(ROOT))
            nbformat.write(notebook, path)
    except ValueError as error:
        print(f"point_colab: {error}", file=sys.stderr)
        return 2
    print(f"{len(notebooks())} notebooks now open from github.com/{args.repo} at {args.ref} on "
          "Colab, and install lorakit from there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
