"""Item 7: every method's learning rate in the offline profile, chosen on validation.

The head is new and random in every method, so it trains at one rate of its own
(``RunSettings.head_lr``), the same for every method, and each method's ``lr`` is the rate of what
the method trains. First LoRA, at the profile's rate, picks that head rate (``head_lr`` below);
then, with the head at it, each method tries its rates (three, about a factor of 3 apart, and
one more beyond whichever end wins, until the best is inside the grid or ``--extend`` more are
spent); head-only training, whose rate is the head's, tries its own. The choice is the best
mean validation macro-F1 over the seeds, and the rates the series' comparison rule
(``lorakit.metrics.compare``, paired over the same seeds and examples) cannot tell apart from
it are listed beside it. Runs
are ``lorakit.train.run(task, method, lr=..., head_lr=..., profile="offline")`` at r = 8,
α = 16 on q_lin, v_lin, lin1, lin2 (VeRA at r = 256; IA³ on its own targets; rsLoRA is LoRA
with α/√r). These are numbers on the bundled samples, not IMDB or Emotion results.

    .venv/bin/python benchmarks/offline_rates.py                     # both tasks, ~12 min
    .venv/bin/python benchmarks/offline_rates.py --tasks emotion --methods head,lora
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

from common import make_parser, name_list, parse_args, training_profile, write_results

from lorakit.metrics import compare, mean_score
from lorakit.report import markdown_table
from lorakit.train import run

NAME = "offline_rates"
GRIDS = {  # three rates a factor of about 3 apart, around where each method is known to work
    "head_lr": (1e-3, 3e-3, 1e-2),  # the head's rate beside LoRA at the profile's LoRA rate
    "head": (1.5e-3, 5e-3, 1.5e-2),
    "lora": (1e-3, 3e-3, 1e-2),
    "rslora": (3e-4, 1e-3, 3e-3),  # α/√r at r = 8 scales the update 2.8 times α/r's
    "full": (6e-5, 2e-4, 6e-4),
    "dora": (1e-3, 3e-3, 1e-2),
    "pissa": (3e-4, 1e-3, 3e-3),
    "loraplus": (2e-4, 6e-4, 2e-3),  # A's rate; B's is 16 times larger
    "vera": (1e-2, 3e-2, 1e-1),
    "ia3": (1e-2, 3e-2, 1e-1),
}
STEP = 3.0  # between rates of a grid, and beyond its end when the best sits there
SEEDED = ("head_lr", "head", "lora", "full")  # the series' own: several seeds each
RANKS = {"vera": 256}  # VeRA's trained vectors are r long: it is used with far larger ranks


def build_parser():
    parser = make_parser("offline_rates.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    parser.add_argument("--tasks", type=name_list(("emotion", "imdb")), default=["emotion", "imdb"])
    parser.add_argument("--methods", type=name_list(tuple(GRIDS)), default=list(GRIDS),
                        help=f"comma-separated, from {', '.join(GRIDS)}; head_lr first")
    parser.add_argument("--seeds", type=int, default=2,
                        help=f"seeds for {', '.join(SEEDED)}; the others get one")
    parser.add_argument("--extend", type=int, default=2,
                        help="rates added at most beyond a grid's winning end")
    parser.add_argument("--variants-on", default="emotion",
                        help="the task the variants (all but head, lora, full) are measured on")
    return parser



def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    profile, limits = training_profile(args)
    records, chosen = [], {}
    results = {"records": records, "chosen": chosen, "profile": profile}
    with tempfile.TemporaryDirectory() as runs_dir:
        for task in args.tasks:
            head_lr = None
            for method in sorted(args.methods, key=lambda m: m != "head_lr"):
                if task != args.variants_on and method not in SEEDED:
                    continue
                seeds = range(args.seeds if method in SEEDED else 1)
                grid = Grid(task, method, seeds, head_lr, runs_dir, profile, limits, args)
                records += grid.search(args.extend)
                chosen[f"{task}/{method}"] = grid.choice()
                if method == "head_lr":
                    head_lr = chosen[f"{task}/head_lr"]["lr"]
                write_results(NAME, results, to_markdown(results), args)  # after every grid
    return results


class Grid:
    """One method's rates on one task, each trained with the same seeds."""

    def __init__(self, task, method, seeds, head_lr, runs_dir, profile, limits, args):
        self.task, self.method, self.seeds, self.head_lr = task, method, list(seeds), head_lr
        self.runs_dir, self.profile, self.limits, self.args = runs_dir, profile, limits, args
        self.runs: dict[float, list] = {}

    def search(self, extend: int) -> list[dict]:
        """Train the grid, then rates beyond a winning end, at most ``extend`` of them."""
        for lr in GRIDS[self.method][: 1 if self.args.quick else None]:
            self.train(lr)
        for _ in range(0 if self.args.quick else extend):
            rates = sorted(self.runs)
            best = self.best()
            if best == rates[0]:
                self.train(float(f"{best / STEP:.2g}"))
            elif best == rates[-1]:
                self.train(float(f"{best * STEP:.2g}"))
            else:
                break
        return [self.record(lr) for lr in sorted(self.runs)]

    def train(self, lr: float) -> None:
        """The grid's runs at ``lr``: the method's rate, or the head's for ``head_lr``."""
        method = "lora" if self.method in ("rslora", "head_lr") else self.method
        rates = {"head_lr": lr} if self.method == "head_lr" else {"lr": lr,
                                                                   "head_lr": self.head_lr}
        print(f"{NAME}: {self.task} {self.method} {lr:g}", file=sys.stderr, flush=True)
        self.runs[lr] = [run(self.task, method, r=RANKS.get(method, 8), alpha=16,
                             rslora=self.method == "rslora", **rates,
                             seed=seed, profile=self.profile, output_dir=self.runs_dir,
                             run_name=f"{self.method}-lr{lr:g}-seed{seed}", progress=False,
                             keep_model=False, diverged="record", **self.limits)
                         for seed in self.seeds]

    def score(self, lr: float) -> float:
        runs = self.runs[lr]
        return float("-inf") if any(r.diverged for r in runs) else mean_score(runs)

    def best(self) -> float:
        return max(self.runs, key=self.score)

    def choice(self) -> dict:
        best = self.best()
        tied = [lr for lr in sorted(self.runs) if lr != best and self.score(lr) > float("-inf")
                and compare(self.runs[lr], self.runs[best]).verdict == "cannot tell apart"]
        rates = sorted(self.runs)
        return {"lr": best, "tied": tied, "at_edge": best in (rates[0], rates[-1]),
                "seeds": len(self.seeds)}

    def record(self, lr: float) -> dict:
        runs = self.runs[lr]
        first = runs[0]
        return {"task": self.task, "method": self.method, "lr": lr, "seeds": len(runs),
                "head_lr": first.config["head_lr"], "diverged": any(r.diverged for r in runs),
                "validation_macro_f1": self.score(lr) if self.score(lr) > float("-inf") else None,
                "validation_macro_f1_by_seed": [r.metrics["validation_macro_f1"] for r in runs],
                "test_macro_f1": None if first.diverged else first.metrics["macro_f1"],
                "validation_examples": first.config["examples"]["validation"],
                "precision": first.config["precision"],
                "versions": first.config["versions"]}


def to_markdown(results: dict) -> str:
    rows = []
    for r in results["records"]:
        choice = results["chosen"][f"{r['task']}/{r['method']}"]
        mark = ("← chosen" + (" (at the grid's edge)" if choice["at_edge"] else "")
                if choice["lr"] == r["lr"] else "tied with it" if r["lr"] in choice["tied"]
                else "")
        score = ("diverged" if r["diverged"] else f"{100 * r['validation_macro_f1']:.1f}")
        rows.append({"task": r["task"], "method": r["method"], "lr": f"{r['lr']:g}",
                     "head": "" if r["method"] == "head" else f"{r['head_lr']:g}",
                     "seeds": r["seeds"], "f1": score, "mark": mark})
    table = markdown_table(rows, {"task": "task", "method": "method", "lr": "learning rate",
                                  "head": "head's rate", "seeds": "seeds",
                                  "f1": "validation macro-F1 % (mean)", "mark": "chosen"})
    versions = results["records"][0]["versions"] if results["records"] else {}
    return (f"### Each method's learning rate, {results['profile']} profile\n\n{table}\n\n"
            "Chosen on the validation split (120 Emotion-like sentences, 32 IMDB-like reviews): "
            "the best mean macro-F1 over the seeds; 'tied with it' marks the rates the series' "
            "comparison rule cannot tell apart from the chosen one. transformers "
            f"{versions.get('transformers')}, peft {versions.get('peft')}, torch "
            f"{versions.get('torch')}. These are not IMDB or Emotion results.\n")


if __name__ == "__main__":
    main()
