"""Item 6: what the offline profile teaches, over seeds: each method's test scores and train time.

Every run is ``lorakit.train.run(task, method, seed=s, profile="offline")``, exactly what the
notebooks run (LoRA and PEFT at r = 8, α = 16 on q_lin, v_lin, lin1, lin2), on the samples
bundled with lorakit. The table gives, per task and method, the mean and the range over the
seeds of test accuracy and macro-F1 (train times are in the JSON; notebooks.py times the
notebooks). These are numbers on the bundled samples: they are not IMDB or Emotion results.

    .venv/bin/python benchmarks/offline_profile.py                 # 3 seeds, both tasks (~15 min)
    .venv/bin/python benchmarks/offline_profile.py --seeds 5 --tasks imdb --methods lora,peft
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import tempfile
from collections.abc import Sequence

from common import make_parser, name_list, parse_args, training_profile, write_results

from lorakit.report import markdown_table
from lorakit.train import run

NAME = "offline_profile"
TASKS = ("imdb", "emotion")
METHODS = ("head", "lora", "peft", "full")



def build_parser():
    parser = make_parser("offline_profile.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 for every run")
    parser.add_argument("--tasks", type=name_list(TASKS), default=list(TASKS))
    parser.add_argument("--methods", type=name_list(METHODS), default=list(METHODS))
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    profile, limits = training_profile(args)
    records = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for task in args.tasks:
            for method in args.methods:
                for seed in range(args.seeds):
                    print(f"{NAME}: {task} {method} seed {seed}", file=sys.stderr, flush=True)
                    with contextlib.redirect_stdout(io.StringIO()):  # the Trainer's log lines
                        result = run(task, method, seed=seed, profile=profile,
                                     output_dir=runs_dir, **limits)
                    m = result.metrics
                    records.append({"task": task, "method": method, "seed": seed,
                                    "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                                    "train_seconds": m["train_seconds"],
                                    "precision": result.config["precision"]})
    results = {"records": records, "summary": summarize(records), "profile": profile}
    write_results(NAME, results, to_markdown(results), args)
    return results


def summarize(records: list[dict]) -> list[dict]:
    """Per task and method: mean, min and max accuracy and macro-F1, median train seconds."""
    rows = []
    for task, method in dict.fromkeys((r["task"], r["method"]) for r in records):
        group = [r for r in records if (r["task"], r["method"]) == (task, method)]
        row = {"task": task, "method": method, "seeds": len(group),
               "train_s": statistics.median(r["train_seconds"] for r in group)}
        for metric in ("accuracy", "macro_f1"):
            values = [r[metric] for r in group]
            row |= {f"{metric}_mean": statistics.fmean(values), f"{metric}_min": min(values),
                    f"{metric}_max": max(values)}
        rows.append(row)
    return rows


def to_markdown(results: dict) -> str:
    def percent(row, metric):
        return (f"{100 * row[f'{metric}_mean']:.1f} [{100 * row[f'{metric}_min']:.1f}–"
                f"{100 * row[f'{metric}_max']:.1f}]")

    rows = [{**row, "accuracy": percent(row, "accuracy"), "macro_f1": percent(row, "macro_f1")}
            for row in results["summary"]]
    table = markdown_table(rows, {"task": "task", "method": "method", "seeds": "seeds",
                                  "accuracy": "test accuracy % mean [min–max]",
                                  "macro_f1": "test macro-F1 % mean [min–max]"})
    return (f"### Test scores over seeds, {results['profile']} profile\n\n{table}\n\n"
            "Seeds 0 to N−1 of `lorakit.train.run` on the samples bundled with lorakit; the seed "
            "draws the validation split, the head and LoRA's A, the data order and dropout. "
            "These are not IMDB or Emotion results.\n")


if __name__ == "__main__":
    main()
