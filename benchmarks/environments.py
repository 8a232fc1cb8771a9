"""Item 9: the notebooks' choices under the library versions Colab ships and under the latest.

Not a timing. Executes the notebooks that choose by the series' comparison rule (05: the rank,
07: learning rates and placement, appendix A4: the variants' challenger and the final choice;
the results recorded before A4 existed list these under 08_lora_variants) in the offline
profile, in the environment it runs in, with a fresh runs directory, and records every run's
validation macro-F1 and every sentence of a choice the notebooks printed. Run it in both
environments and compare:

    .venv/bin/python benchmarks/environments.py                         # the latest releases
    .venv-colab/bin/python benchmarks/environments.py --compare-with \\
        benchmarks/results/environments-latest.json                      # Colab's versions

The second run writes the comparison: the same choices or not, and the largest difference of a
run's validation score between the two, the spread that the environment alone adds.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
import transformers
from common import REPO_ROOT, make_parser, parse_args, write_results
from nbclient import NotebookClient

from lorakit.report import find_runs, load_run, markdown_table

NOTEBOOKS = ("05_emotion_training", "07_choosing_lora_settings",
             "appendix/A4_variants_over_seeds")
CHOICE = re.compile(r"^(On validation .*|best on validation: .*|the challenger: .*)$",
                    re.MULTILINE)
CHOSEN = re.compile(r"The cheapest of those, (.+?) \(|\bso (.+?) is chosen|the challenger: (.+)$|"
                    r"best on validation: (.+?): ")


def main(argv: Sequence[str] | None = None) -> dict:
    parser = make_parser("environments.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    parser.add_argument("--compare-with", type=Path,
                        help="the JSON another environment wrote, to compare with")
    args = parse_args(parser, argv)
    label = "latest" if args.compare_with is None else "colab"
    name = f"environments-{label}"
    notebooks = NOTEBOOKS[:1] if args.quick else NOTEBOOKS
    with tempfile.TemporaryDirectory() as runs:
        os.environ.update(LORAKIT_PROFILE="tiny" if args.quick else "offline",
                          LORAKIT_RUNS_DIR=runs)
        choices = {notebook: executed_choices(notebook) for notebook in notebooks}
        scores = {f"{path.parent.name}/{path.name}": load_run(path).get("validation_macro_f1")
                  for path in find_runs(runs)}
    results = {"transformers": transformers.__version__, "choices": choices, "scores": scores}
    if args.compare_with is not None:
        results["comparison"] = compare(json.loads(args.compare_with.read_text()), results)
    write_results(name, results, to_markdown(results), args)
    return results


def executed_choices(notebook: str) -> list[str]:
    """The sentences of the choices ``notebook`` printed, executed here."""
    path = REPO_ROOT / "notebooks" / f"{notebook}.ipynb"
    executed = nbformat.read(path, as_version=4)
    print(f"environments: {notebook}", file=sys.stderr, flush=True)
    NotebookClient(executed, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "".join(output.get("text", "") for cell in executed.cells
                   for output in cell.get("outputs", []) if output.get("output_type") == "stream")
    return CHOICE.findall(text)


def compare(other: dict, this: dict) -> dict:
    """Whether the choices are the same, and the largest score difference of a shared run."""
    shared = sorted(set(other["scores"]) & set(this["scores"]))
    differences = {run: abs((this["scores"][run] or 0) - (other["scores"][run] or 0))
                   for run in shared}
    largest = max(differences, key=differences.get) if differences else None
    return {"same_choices": chosen(other["choices"]) == chosen(this["choices"]),
            "chosen": [chosen(other["choices"]), chosen(this["choices"])],
            "runs_compared": len(shared),
            "largest_difference": differences.get(largest, 0.0), "largest_in": largest,
            "versions": [other["transformers"], this["transformers"]]}


def chosen(choices: dict[str, list[str]]) -> dict[str, list[str]]:
    """What each notebook chose, without the scores its sentences give with it."""
    return {notebook: ["".join(group for match in CHOSEN.finditer(sentence)
                               for group in match.groups() if group) for sentence in sentences]
            for notebook, sentences in choices.items()}


def to_markdown(results: dict) -> str:
    rows = [{"notebook": notebook, "choice": sentence}
            for notebook, sentences in results["choices"].items() for sentence in sentences]
    text = (f"### The notebooks' choices under transformers {results['transformers']}\n\n"
            + markdown_table(rows, {"notebook": "notebook", "choice": "what it printed"}))
    comparison = results.get("comparison")
    if comparison:
        text += (f"\n\nAgainst transformers {comparison['versions'][0]}: the choices are "
                 f"{'the same' if comparison['same_choices'] else 'not the same'}; over the "
                 f"{comparison['runs_compared']} runs both made, a run's validation macro-F1 "
                 f"differs by {100 * comparison['largest_difference']:.1f} points at most "
                 f"({comparison['largest_in']}).")
    return text + "\n\nOffline profile: numbers on the bundled samples, not Emotion results.\n"


if __name__ == "__main__":
    main()
