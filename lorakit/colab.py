"""The series on Google Colab: runs kept on Google Drive, and a setup that says what it did.

Notebook-support tier. The first cell of every notebook installs lorakit on Colab and calls
``setup``; elsewhere (``make tutorial``, your own Jupyter) the cell does nothing::

    if "google.colab" in sys.modules:
        %pip install --quiet {LORAKIT_SOURCE}
        from lorakit.colab import setup
        setup(keep_runs_on_drive=KEEP_RUNS_ON_DRIVE)

Each Colab notebook gets a fresh machine whose disk is gone when it disconnects. With runs kept
on Drive (``LORAKIT_RUNS_DIR`` pointed there), a later notebook reuses the runs an earlier one
trained (``run(..., reuse=True)``), and a disconnected one trains only what it had not finished.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

import lorakit
from lorakit.profiles import RUNS_DIR_VARIABLE, runs_dir

LIBRARIES = ("torch", "transformers", "peft", "datasets", "accelerate")
DRIVE = Path("/content/drive")
DRIVE_RUNS = DRIVE / "MyDrive" / "lorakit" / "runs"
RESTART = "Runtime → Restart session"


def changed_since_import(libraries=LIBRARIES) -> list[str]:
    """The libraries whose version in memory is not the one on disk: imported before an install
    replaced them, e.g. ``"transformers 4.57.1 in memory, 5.15.0 installed"``. Only a restart
    of the runtime loads the new ones."""
    changed = []
    for name in libraries:
        module = sys.modules.get(name)
        loaded = getattr(module, "__version__", None)
        if loaded is None:
            continue
        installed = importlib.metadata.version(name)
        if loaded.split("+")[0] != installed.split("+")[0]:
            changed.append(f"{name} {loaded} in memory, {installed} installed")
    return changed


def runs_on_drive(folder: Path | None = None) -> Path:
    """Mount Google Drive (Colab asks for permission once) and make ``folder`` on it, by default
    ``DRIVE_RUNS``, the runs directory of this session (``LORAKIT_RUNS_DIR``)."""
    from google.colab import drive  # only on Colab

    drive.mount(str(DRIVE))
    folder = DRIVE_RUNS if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[RUNS_DIR_VARIABLE] = str(folder)
    return folder


def runs_summary(folder: Path) -> str:
    """E.g. ``12 runs, 340 MB``: the finished runs under ``folder`` and the space they take."""
    folder = Path(folder)
    runs = list(folder.rglob("metrics.json")) if folder.is_dir() else []
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) \
        if folder.is_dir() else 0
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''}, {size / 1e6:,.0f} MB"


def setup(keep_runs_on_drive: bool = True) -> str:
    """After the install on Colab: stop with a one-line request to restart when a library in
    memory is older than the one just installed; else keep runs on Drive when asked, and print
    one line with the versions and where runs go."""
    changed = changed_since_import()
    if changed:
        raise RuntimeError(f"Restart the runtime ({RESTART}) and run this cell again: the "
                           f"install changed libraries already imported ({'; '.join(changed)})")
    if keep_runs_on_drive:
        folder = runs_on_drive()
        where = f"runs kept on Google Drive in {folder} ({runs_summary(folder)} there now)"
    else:
        where = (f"runs kept in {runs_dir().resolve()}, on this machine only: gone when the "
                 "runtime disconnects")
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES)
    line = f"lorakit {lorakit.__version__} with {versions}; {where}"
    print(line)
    return line
