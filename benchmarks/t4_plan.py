"""Item 8: what each notebook computes in the ``full`` profile, and its time on a Colab T4.

Not a timing: no T4 ran this. Each notebook is executed at the Hub's sizes with its heavy calls
recorded (the dry run of ``tests/full_scale.py``, which ``tests/test_notebooks_full_scale.py``
holds to a 45-minute budget per notebook and 3 hours for the series), and the work its plans
counted is turned into T4 minutes at ``lorakit.estimate.T4_FLOPS`` (an effective throughput taken
from a published T4 measurement, see that module), never below ``STEP_FLOOR_SECONDS`` a step.
"On a fresh runtime" counts every run a notebook needs; "with runs kept" counts each run of the
series once, as with runs kept on Google Drive.

    .venv/bin/python benchmarks/t4_plan.py           # all notebooks, about 3 minutes
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from common import REPO_ROOT, make_parser, parse_args, write_results

sys.path.insert(0, str(REPO_ROOT / "tests"))
from full_scale import (  # noqa: E402 - the dry run lives with the tests that hold it
    Recorder,
    execute,
    install,
    notebooks,
    planned,
    standin_model,
    write_standins,
)

from lorakit.estimate import STEP_FLOOR_SECONDS, T4_FLOPS  # noqa: E402
from lorakit.plan import WorkPlan  # noqa: E402
from lorakit.report import markdown_table  # noqa: E402

NAME = "t4_plan"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = make_parser("t4_plan.py", __doc__.split("\n\n")[0], default_repeats=1,
                         min_repeats=1, default_warmup=0)
    args = parse_args(parser, argv)
    paths = notebooks()[:2] if args.quick else notebooks()  # quick: 01 trains nothing, 02 does
    records, series = [], WorkPlan("full")
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        folders, model = write_standins(root), standin_model(root)
        for path in paths:
            recorder = Recorder()
            with pytest.MonkeyPatch.context() as patch:
                install(patch, root, recorder, folders, model, root / "runs" / path.stem)
                execute(path)
            counted = planned(recorder)
            totals = [plan.totals() for plan in recorder.plans]
            before = series.seconds_on_t4()
            for plan in recorder.plans:
                series.trainings += [t for t in plan.to_train if not any(
                    t.settings == s.settings for s in series.trainings)]
                series.loops += plan.loops
                series.predictions += plan.predictions
            records.append({
                "notebook": path.relative_to(REPO_ROOT / "notebooks").as_posix(),
                "runs": sum(t["to_train"] for t in totals),
                "steps": sum(t["steps"] for t in totals),
                "train_tokens": sum(t["train_tokens"] for t in totals),
                "predicted": sum(t["predicted"] for t in totals),
                "predicted_tokens": sum(t["predicted_tokens"] for t in totals),
                "t4_minutes": counted["t4_seconds"] / 60,
                "t4_minutes_in_series": (series.seconds_on_t4() - before) / 60})
    results = {"records": records, "series_t4_minutes": series.seconds_on_t4() / 60,
               "t4_flops": T4_FLOPS, "step_floor_seconds": STEP_FLOOR_SECONDS}
    write_results(NAME, results, to_markdown(results), args)
    return results


def to_markdown(results: dict) -> str:
    rows = [{**r, "train_tokens": f"{r['train_tokens'] / 1e6:.1f}M",
             "predicted_tokens": f"{r['predicted_tokens'] / 1e6:.1f}M",
             "t4_minutes": f"{r['t4_minutes']:.0f}",
             "t4_minutes_in_series": f"{r['t4_minutes_in_series']:.0f}"}
            for r in results["records"]]
    table = markdown_table(rows, {"notebook": "notebook", "runs": "runs trained",
                                  "steps": "training steps", "train_tokens": "tokens trained on",
                                  "predicted": "examples predicted",
                                  "predicted_tokens": "tokens predicted",
                                  "t4_minutes": "T4 minutes, fresh runtime",
                                  "t4_minutes_in_series": "in the series, runs kept"},
                           right={"runs", "steps", "train_tokens", "predicted",
                                  "predicted_tokens", "t4_minutes", "t4_minutes_in_series"})
    return (f"### The full profile's work per notebook, and its time on a T4 (estimated)\n\n"
            f"{table}\n\n\"Fresh runtime\" counts every run a notebook needs; \"in the series, "
            "runs kept\" only what earlier notebooks have not trained, as when runs are kept on "
            "Google Drive. The whole series that way (each run trained once): "
            f"{results['series_t4_minutes']:.0f} minutes. Estimated at "
            f"{results['t4_flops'] / 1e12:.1f} TFLOPS (lorakit.estimate.T4_FLOPS, from a "
            "published T4 measurement) with a floor per training step from our H100's; loading, "
            "tokenizing and saving come on top. No T4 has run the series yet.\n")


if __name__ == "__main__":
    main()
