"""What every benchmark shares: arguments, the machine, precision, pair ratios and result files.

Each benchmark script builds its contenders, times them interleaved with
``lorakit.bench.interleaved_samples`` (A B A B ... after warm-up), and hands its records and a
Markdown table to ``write_results``, which writes ``<results-dir>/<name>.json`` and
``<results-dir>/<name>.md`` with the machine the numbers were measured on.

A ratio between two contenders A and B is the median over rounds of A's time in a round divided
by B's time in the same round, with the quartiles of those per-round ratios as its spread: since
A and B ran back to back in each round, a slow spell of a shared machine slows both and cancels
out of that round's ratio. The ratio of the two medians is kept beside it in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from lorakit import bench

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
MIN_REPEATS = 5


# --- arguments ------------------------------------------------------------------------------

def make_parser(
    script: str, description: str, default_repeats: int = 7, min_repeats: int = MIN_REPEATS,
    default_warmup: int = 2,
) -> argparse.ArgumentParser:
    """The options every benchmark takes; a script adds its own to the parser it gets back.

    ``script`` is the script's file name in benchmarks/, for the command written with results.
    """
    parser = argparse.ArgumentParser(
        prog=f"benchmarks/{script}", description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
        help="where to run; cuda runs in fp16 mixed precision (autocast), cpu in fp32",
    )
    parser.add_argument(
        "--repeats", type=_at_least(min_repeats), default=default_repeats,
        help=f"timed calls per contender, interleaved (at least {min_repeats})",
    )
    parser.add_argument(
        "--warmup", type=_at_least(0), default=default_warmup,
        help="untimed calls per contender before timing",
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes, for a test of the script; the numbers mean nothing")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where <name>.json and <name>.md are written")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    parser.add_argument(
        "--threads", type=_at_least(1), default=None,
        help="torch CPU threads (default: torch's own choice); on a CPU shared with other jobs "
             "1 thread is often faster and steadier, since a parallel op waits for its slowest "
             "thread",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None):
    """Parse ``argv``; refuse ``--device cuda`` on a machine without CUDA, naming the fix."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command = " ".join(shlex.quote(a) for a in [".venv/bin/python", parser.prog, *argv])
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device here; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.machine = machine_info(args.device)  # as the run starts: its date and load average
    return args


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value
    return parse


def int_list(text: str) -> list[int]:
    """``"128,512"`` → ``[128, 512]``, for options that take several sizes."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of ints, "
                                         "e.g. 128,512") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must list positive ints, e.g. 128,512")
    return values


def float_list(text: str) -> list[float]:
    """``"0,0.1"`` → ``[0.0, 0.1]``."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, "
                                         "e.g. 0,0.1") from None


# --- the machine and the precision ----------------------------------------------------------

def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def library_versions() -> dict[str, str]:
    import peft
    import transformers

    import lorakit

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "lorakit": lorakit.__version__}


def machine_info(device: str) -> dict:
    """Where the numbers come from: CPU, cores, GPU, versions, date, and the load when started."""
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": device,
        "precision": precision(device),
        "gpu": None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def machine_line(info: Mapping) -> str:
    """One Markdown line naming the machine, for the top of a results table."""
    v = info["versions"]
    where = f"{info['cpu']}, {info['cpu_cores']} cores ({info['torch_threads']} torch threads)"
    if info.get("gpu"):
        where += f"; GPU {info['gpu']} (compute capability {info.get('gpu_capability')})"
    load = info.get("load_average_at_start")
    load_text = f"; load average at start {load[0]:g} on {info['cpu_cores']} cores" if load else ""
    return (
        f"Measured {info['date']} on {where}; device {info['device']}, {info['precision']}; "
        f"torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}, "
        f"Python {v['python']}{load_text}."
    )


def precision(device: str) -> str:
    """fp16 mixed precision (autocast) on CUDA, the T4's fast format; fp32 on CPU."""
    return "fp16-autocast" if device == "cuda" else "fp32"


def autocast(device: str):
    """The context that every timed forward pass runs in: fp16 autocast on CUDA, nothing on CPU."""
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def peak_memory(fn: Callable[[], object], device: str) -> tuple[float, str]:
    """``lorakit.bench.peak_memory`` for ``device``: MB added while ``fn`` ran, and the kind.

    ``lorakit.bench.peak_memory`` measures CUDA whenever CUDA is available; for a ``--device cpu``
    run on a CUDA machine this counts CPU tensors instead, with the same tracker.
    """
    if device == "cuda" or not torch.cuda.is_available():
        return bench.peak_memory(fn)
    tracker = bench._TensorBytesTracker()
    with tracker:
        fn()
    return tracker.peak / bench.MB, "cpu-tensors"


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# --- timing and ratios ----------------------------------------------------------------------

def time_contenders(
    contenders: Mapping[str, Callable[[], object]], args, repeats: int | None = None,
) -> pd.DataFrame:
    """Every timed call, interleaved after warm-up, in forward and reversed order by turns.

    ``args.warmup`` untimed rounds, then ``repeats`` (default ``args.repeats``) timed rounds;
    even rounds call the contenders in the given order, odd rounds in reverse (A B C, C B A,
    A B C, ...), so that which contender runs first, last, or right after which other, is
    balanced between them. Each round is timed by ``lorakit.bench.interleaved_samples``. One row
    per timed call (round, contender, seconds), in the given order within each round.
    """
    names = list(contenders)
    repeats = args.repeats if repeats is None else repeats
    for _ in range(args.warmup):
        for fn in contenders.values():
            fn()
    rounds = []
    for round_ in range(repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        samples = bench.interleaved_samples({n: contenders[n] for n in order}, repeats=1,
                                            warmup=0)
        rounds.append(samples.assign(round=round_))
    samples = pd.concat(rounds, ignore_index=True)
    position = samples["contender"].map({n: i for i, n in enumerate(names)})
    return samples.iloc[(samples["round"] * len(names) + position).argsort()].reset_index(
        drop=True)


# Operations that only relabel a tensor (views, transposes, a .to() to the dtype it already has,
# wrappers that call other operations): no kernel of their own, so not counted as work.
NO_WORK = frozenset(f"aten::{name}" for name in (
    "to", "view", "reshape", "_unsafe_view", "t", "transpose", "as_strided", "expand", "detach",
    "alias", "resolve_conj", "resolve_neg", "linear", "matmul", "lift_fresh",
))


def work(call) -> tuple[Counter, float]:
    """What one call computes, from torch.profiler: compute ops (name → count) and GFLOP.

    A count that does not depend on how busy the machine is, unlike a timing.
    """
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        call()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    compute = Counter(e.name for e in events if e.name not in NO_WORK)
    return compute, sum(e.flops or 0 for e in events) / 1e9


def work_against(call_a, call_b) -> dict:
    """What two calls compute, side by side: GFLOP of each, and the compute ops they differ in.

    ``ops_difference`` maps an op to A's count minus B's, for the ops whose counts differ.
    """
    (ops_a, gflop_a), (ops_b, gflop_b) = work(call_a), work(call_b)
    return {"gflop_a": gflop_a, "gflop_b": gflop_b, "same_ops": ops_a == ops_b,
            "ops_a": dict(sorted(ops_a.items())), "ops_b": dict(sorted(ops_b.items())),
            "ops_difference": {name: ops_a[name] - ops_b[name] for name in sorted(ops_a | ops_b)
                               if ops_a[name] != ops_b[name]}}


def work_text(comparison: Mapping) -> str:
    """E.g. ``11 vs 11 GFLOP; add −24, addmm +24, mm −24``: A's work against B's, in words."""
    ops = ", ".join(f"{name.removeprefix('aten::')} {count:+d}".replace("-", "−")
                    for name, count in comparison["ops_difference"].items())
    return (f"{comparison['gflop_a']:.3g} vs {comparison['gflop_b']:.3g} GFLOP; "
            f"{ops or 'the same ops'}")


def contender_records(samples: pd.DataFrame, **labels) -> list[dict]:
    """One record per contender: ``labels``, median, quartiles, min, max and repeats (seconds)."""
    summary = bench.summarize_timings(samples)
    records = [{**labels, "contender": name, **{k: float(v) for k, v in row.items()}}
               for name, row in summary.iterrows()]
    for record in records:
        record["repeats"] = int(record["repeats"])
    return records


def pair_ratio(samples: pd.DataFrame, a: str, b: str) -> dict:
    """How ``a``'s time compares with ``b``'s, from the rounds in which both ran back to back.

    ``ratio`` is the median over rounds i of a_i / b_i; ``ratio_q1`` and ``ratio_q3`` are its
    quartiles (the spread) and ``ratio_min``, ``ratio_max`` its extremes. ``ratio_of_medians``
    is median(a) / median(b), as ``lorakit.bench.ratio_table`` gives it; on a quiet machine the
    two agree, on a busy one the per-round ratio is the fairer, since a slow spell that hits a
    round hits both contenders in it.
    """
    wide = samples.pivot(index="round", columns="contender", values="seconds")
    per_round = wide[a] / wide[b]
    return {
        "a": a, "b": b,
        "ratio": float(per_round.median()),
        "ratio_q1": float(per_round.quantile(0.25)),
        "ratio_q3": float(per_round.quantile(0.75)),
        "ratio_min": float(per_round.min()),
        "ratio_max": float(per_round.max()),
        "ratio_of_medians": float(wide[a].median() / wide[b].median()),
        "rounds": int(per_round.size),
    }


def verdict_at_most(ratio: float, low: float, limit: float) -> str:
    """``yes`` if ratio <= limit; ``within spread`` if only the lower quartile is; else ``no``."""
    if ratio <= limit:
        return "yes"
    return "within spread" if low <= limit else "no"


def all_hold(comparisons: Iterable[Mapping]) -> str:
    """One verdict for several: ``yes`` if all are, ``no`` if any is, else ``within spread``."""
    verdicts = [c["verdict"] for c in comparisons]
    if all(v == "yes" for v in verdicts):
        return "yes"
    return "within spread" if all(v != "no" for v in verdicts) else "no"


def ratio_text(comparison: Mapping) -> str:
    """``0.987 [0.962–1.004]``: the median per-round ratio and its interquartile range."""
    c = comparison
    return f"{c['ratio']:.3f} [{c['ratio_q1']:.3f}–{c['ratio_q3']:.3f}]"


RATIO_NOTE = (
    "A ratio A / B is the median over rounds of A's time divided by B's time in the same round "
    "(they ran back to back); [IQR] is the interquartile range of those per-round ratios. "
    "\"within spread\": the median ratio misses the target but the interquartile range reaches it."
)


# --- output ---------------------------------------------------------------------------------

def markdown_table(rows: Iterable[Mapping], columns: Mapping[str, str]) -> str:
    """A Markdown table: ``columns`` maps a record key to its header; floats are formatted."""
    rows = list(rows)
    lines = ["| " + " | ".join(columns.values()) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key in columns) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def ms(seconds: float) -> float:
    return 1000.0 * seconds


def write_results(
    name: str, results: Mapping, markdown: str, args, machine: Mapping | None = None,
) -> tuple[Path, Path]:
    """Write ``<results_dir>/<name>.json`` and ``<name>.md``; return both paths.

    The JSON holds ``benchmark``, ``command``, ``settings`` (the parsed arguments), ``machine``
    and everything in ``results`` (records, comparisons, targets). The Markdown file starts with
    a heading, the command and the machine, then ``markdown``.
    """
    machine = dict(machine or getattr(args, "machine", None) or machine_info(args.device))
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    command = args.command
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("command", "machine")}
    payload = {"benchmark": name, "command": command, "settings": settings, "machine": machine,
               **results}
    json_path = results_dir / f"{name}.json"
    md_path = results_dir / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    header = (f"## {name}\n\n`{command}`\n\n{machine_line(machine)}"
              + (" Quick mode: tiny shapes, the numbers mean nothing." if args.quick else ""))
    md_path.write_text(header + "\n\n" + markdown.strip() + "\n")
    return json_path, md_path


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
