"""Notebook 07's rank grid, which only a profile with ``rank_grid`` trains (``full``; CI runs the
notebooks offline, where it is empty): the notebook's own cells, executed with
``lorakit.train.run`` replaced by a stand-in whose validation score peaks at a known rate for
each method, rank and scaling. The tests check which runs the cells ask for and what they
conclude from them."""

import ast
import importlib.util
import math
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import transformers  # noqa: E402

import lorakit.estimate  # noqa: E402
import lorakit.train  # noqa: E402
from lorakit.profiles import PROFILES  # noqa: E402
from lorakit.train import RunResult  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "07_choosing_lora_settings.ipynb"
FULL_LORA_RATE = PROFILES["full"].settings("emotion").learning_rates["lora"]  # 1e-3
RATE_FACTORS = (1 / 3, 1, 3)


def grid_rates(scaling: str, r: int) -> list[float]:
    """The rates notebook 07 tries for one line of the grid: the same for every rank and scaling,
    the profile's LoRA rate times 1/3, 1 and 3, to two significant digits."""
    return [float(f"{FULL_LORA_RATE * factor:.2g}") for factor in RATE_FACTORS]


# Made-up data for the stand-in: where each line of the grid peaks (an index into its rates).
# Every other LoRA run, and full fine-tuning, peaks at the profile's rate.
PEAKS = {("α/r", 2): 1, ("α/r", 8): 1, ("α/r", 32): 2,
         ("α/√r", 2): 2, ("α/√r", 8): 1, ("α/√r", 32): 0}


class StandInRuns:
    """Records each run asked for; scores it 0.9 at its peak rate, less a tenth per decade off."""

    def __init__(self):
        self.calls = []

    def __call__(self, task, method="lora", r=8, alpha=16, rslora=False, lr=None, seed=0,
                 profile=None, output_dir=None, run_name=None, **_):
        rate = lr or profile.settings(task).learning_rates[method]
        scaling = "α/√r" if rslora else "α/r"
        peak = profile.settings(task).learning_rates[method]
        if method == "lora" and (scaling, r) in PEAKS:
            peak = grid_rates(scaling, r)[PEAKS[scaling, r]]
        score = 0.9 - 0.1 * abs(math.log10(rate / peak))
        self.calls.append({"method": method, "r": r, "scaling": scaling, "lr": rate,
                           "seed": seed, "run_name": run_name, "output_dir": Path(output_dir)})
        metrics = {"validation_macro_f1": score, "accuracy": score, "macro_f1": score,
                   "trainable_parameters": 1000 * r, "train_seconds": 1.0, "run_seconds": 2.0}
        name = run_name or f"{method}-r{r}-seed{seed}"
        return RunResult(run_dir=Path(output_dir) / name, config={"examples": {}},
                         metrics=metrics, predictions=pd.DataFrame(), model=None,
                         tokenizer=None)


def cell_source(cells, marker: str, definitions_only: bool = False) -> str:
    """The one code cell holding ``marker``, whole or only its function definitions."""
    hits = [cell.source for cell in cells if cell.cell_type == "code" and marker in cell.source]
    assert len(hits) == 1, f"{marker!r} is in {len(hits)} code cells of {NOTEBOOK.name}"
    if not definitions_only:
        return hits[0]
    tree = ast.parse(hits[0])
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    return ast.unparse(tree)


def execute_up_to_the_grid(profile: str, monkeypatch, tmp_path) -> tuple[dict, StandInRuns]:
    """Sections 1 and 2 of notebook 07 in ``profile``, model loading and counting left out."""
    monkeypatch.setenv("LORAKIT_PROFILE", profile)
    monkeypatch.setenv("LORAKIT_RUNS_DIR", str(tmp_path))
    runs = StandInRuns()
    monkeypatch.setattr(lorakit.train, "run", runs)
    monkeypatch.setattr(lorakit.estimate, "print_estimate", lambda *args, **kwargs: None)
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    verbosity = transformers.logging.get_verbosity()
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    namespace: dict = {}
    try:
        for marker, definitions_only in (
                ("RANK_GRID = ", False),  # the plan
                ("def train(", False),  # the imports and the training helper
                ("slug = name.replace", False),  # section 1's runs
                ("def table_of(", True),
                ("lora_rates, full_rates = ", False),  # section 2's runs
                ("def best_rates(", False),
                ("for r, scaling, factor in RANK_GRID:", False),  # the grid's runs
                ("if grid_names:", False)):
            exec(cell_source(cells, marker, definitions_only), namespace)  # noqa: S102
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.utils.logging.enable_progress_bar()
        plt.close("all")
    return namespace, runs


def test_the_full_profile_trains_every_rank_scaling_and_rate_once(monkeypatch, tmp_path, capsys):
    namespace, runs = execute_up_to_the_grid("full", monkeypatch, tmp_path)
    grid_runs = [c for c in runs.calls
                 if c["method"] == "lora" and (c["r"] != 8 or c["scaling"] == "α/√r")]
    assert sorted((c["scaling"], c["r"], c["lr"]) for c in grid_runs) == sorted(
        (scaling, r, lr) for scaling, r in PEAKS if (scaling, r) != ("α/r", 8)
        for lr in grid_rates(scaling, r))  # 15 runs, each once: r = 8 under α/r is section 2's
    assert len(grid_runs) == 15
    section_2 = {c["lr"] for c in runs.calls if c["method"] == "lora" and c["r"] == 8
                 and c["scaling"] == "α/r" and c["seed"] == 0 and c["lr"] != FULL_LORA_RATE}
    assert section_2 | {FULL_LORA_RATE} == set(grid_rates("α/r", 8))  # what the grid reuses
    named = [c["run_name"] for c in runs.calls if c["run_name"]]
    assert len(set(named)) == len(named)  # no run overwrites another
    trained_here = [c for c in runs.calls if c["output_dir"] == namespace["OUT_DIR"]]
    seeds_later = len(namespace["SEEDS"]) - 1  # section 3, not executed here
    assert len(namespace["RUNS"]) == len(trained_here) + seeds_later  # the estimate's count
    printed = capsys.readouterr().out
    positions = ("lowest", "middle", "highest")
    for scaling in ("α/r", "α/√r"):
        line = next(line for line in printed.splitlines()
                    if line.startswith(f"full profile, {scaling}: the best rate"))
        for r in (2, 8, 32):
            best = grid_rates(scaling, r)[PEAKS[scaling, r]]
            assert f"{best:g} at r = {r} ({positions[PEAKS[scaling, r]]} of its line" in line
    assert "scaling = α/√r, r = 32: the best rate is the lower end of the rates tried" in printed
    assert "scaling = α/r, r = 32: the best rate is the higher end of the rates tried" in printed
    assert "scaling = α/√r, r = 2: the best rate is the higher end" in printed
    assert "scaling = α/r, r = 2: the best rate is" not in printed  # its middle rate
    assert namespace["grid"].shape[0] == 18  # drawn: 15 runs and section 2's three


def test_the_offline_profile_trains_no_grid_and_says_what_it_would_cost(monkeypatch, tmp_path,
                                                                         capsys):
    namespace, runs = execute_up_to_the_grid("offline", monkeypatch, tmp_path)
    assert namespace["RANK_GRID"] == [] and namespace["grid_names"] == {}
    assert all(call["scaling"] == "α/r" for call in runs.calls)
    assert "trains no rank grid" in capsys.readouterr().out
    assert "grid" not in namespace  # nothing drawn


def test_the_series_estimate_counts_the_grid_of_the_profile_it_runs(monkeypatch):
    spec = importlib.util.spec_from_file_location("run_tutorial", ROOT / "scripts" /
                                                  "run_tutorial.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    offline = tutorial.planned_runs(notebook, "offline")
    full = tutorial.planned_runs(notebook, "full")
    assert offline[0] == full[0] == "emotion"
    assert Counter(full[1]) - Counter(offline[1]) == Counter({"lora": 15})
    assert not Counter(offline[1]) - Counter(full[1])
