"""Item 7: the learning rate of each LoRA variant in the offline profile, chosen on validation.

Every run is ``lorakit.train.run("emotion", method, lr=..., profile="offline")`` at r = 8,
α = 16 on q_lin, v_lin, lin1, lin2 (VeRA at r = 256, its usual size; IA³ on its own targets),
seed 0. For each method the table gives the last epoch's validation macro-F1 at each rate; the
best of them is the rate ``lorakit.profiles`` gives the method offline. Test scores are in the
JSON, not used for the choice. These are numbers on the bundled samples, not Emotion results.

    .venv/bin/python benchmarks/variant_rates.py                  # 18 runs (~5 min on 2 cores)
    .venv/bin/python benchmarks/variant_rates.py --methods dora,ia3
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

from common import make_parser, parse_args, training_profile, write_results

from lorakit.report import markdown_table
from lorakit.train import run

NAME = "variant_rates"
RATES = {  # three rates a factor of about 3 apart, around where each method is known to work
    "lora": (1e-3, 3e-3, 1e-2),
    "dora": (1e-3, 3e-3, 1e-2),
    "pissa": (3e-4, 1e-3, 3e-3),
    "loraplus": (2e-4, 5e-4, 1.5e-3),  # A's rate; B's is 16 times larger
    "vera": (1e-2, 3e-2, 1e-1),
    "ia3": (1e-2, 3e-2, 1e-1),
}
RANKS = {"vera": 256}  # VeRA's trained vectors are r long: it is used with far larger ranks


def build_parser():
    parser = make_parser("variant_rates.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    parser.add_argument("--methods", type=_methods, default=list(RATES),
                        help=f"comma-separated, from {', '.join(RATES)}")
    return parser


def _methods(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(RATES))
    if not names or unknown:
        raise ValueError(f"{text!r}: choose from {', '.join(RATES)}, comma-separated")
    return names


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    profile, limits = training_profile(args)
    records = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for method in args.methods:
            for lr in RATES[method][: 1 if args.quick else None]:
                print(f"{NAME}: {method} lr {lr:g}", file=sys.stderr, flush=True)
                result = run("emotion", method, r=RANKS.get(method, 8), alpha=16, lr=lr,
                             seed=args.seed, profile=profile, output_dir=runs_dir,
                             run_name=f"{method}-lr{lr:g}", progress=False, **limits)
                m = result.metrics
                records.append({"method": method, "lr": lr,
                                "validation_macro_f1": m["validation_macro_f1"],
                                "validation_accuracy": m["validation_accuracy"],
                                "test_macro_f1": m["macro_f1"], "test_accuracy": m["accuracy"],
                                "trainable_parameters": m["trainable_parameters"],
                                "validation_examples": result.config["examples"]["validation"],
                                "precision": result.config["precision"]})
    results = {"records": records, "best": best_rates(records), "profile": profile}
    write_results(NAME, results, to_markdown(results), args)
    return results


def best_rates(records: list[dict]) -> dict[str, float]:
    """Per method, the rate with the highest validation macro-F1 (the first of a tie)."""
    best = {}
    for record in records:
        current = best.get(record["method"])
        if current is None or record["validation_macro_f1"] > current["validation_macro_f1"]:
            best[record["method"]] = record
    return {method: record["lr"] for method, record in best.items()}


def to_markdown(results: dict) -> str:
    rows = [{**r, "lr": f"{r['lr']:g}", "f1": f"{100 * r['validation_macro_f1']:.1f}",
             "chosen": "←" if results["best"][r["method"]] == r["lr"] else ""}
            for r in results["records"]]
    table = markdown_table(rows, {"method": "method", "lr": "learning rate",
                                  "f1": "validation macro-F1 %", "chosen": "chosen"})
    examples = results["records"][0]["validation_examples"]
    return (f"### Learning rate per variant, {results['profile']} profile, emotion samples\n\n"
            f"{table}\n\nOne seed; the validation split is {examples} examples, so one example "
            "moves macro-F1 by up to a few points. These are not Emotion results.\n")


if __name__ == "__main__":
    main()
