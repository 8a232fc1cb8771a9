"""What every benchmark script shares: its arguments, the machine, its targets and result files.

Each benchmark script builds its contenders, times them with ``lorakit.bench`` (interleaved
rounds, per-round ratios: see that module and benchmarks/README.md) into ``Group`` records, and
hands its records and a Markdown table (``lorakit.report.markdown_table``) to ``write_results``,
which writes ``<results-dir>/<name>.json`` and ``<results-dir>/<name>.md`` with the machine the
numbers were measured on. Every script runs in the precision ``lorakit.train.run`` trains in on
its device (``lorakit.precision.current_precision``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from lorakit import bench
from lorakit.precision import current_precision
from lorakit.train import library_versions

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
        help="where to run, in the precision lorakit.train.run trains in there "
             "(lorakit.precision.current_precision: bf16 on CUDA from compute capability 8, "
             "fp16 below; bf16 on a CPU with AMX, else fp32)",
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
    args.precision = current_precision(args.device)
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


def name_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """An argument type for comma-separated names, each one of ``allowed``."""
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = sorted(set(names) - set(allowed))
        if not names or unknown:
            raise ValueError(f"{text!r}: choose from {', '.join(allowed)}, comma-separated")
        return names
    return parse


def float_list(text: str) -> list[float]:
    """``"0,0.1"`` → ``[0.0, 0.1]``."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, "
                                         "e.g. 0,0.1") from None


# --- the machine --------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: str) -> dict:
    """Where the numbers come from: CPU, cores, GPU, versions, date, and the load when started."""
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": device,
        "precision": current_precision(device),
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


# --- timed groups, their comparisons and targets --------------------------------------------

@dataclass
class Comparison:
    """One ratio a benchmark reports: ``ratio`` (a / b, per round) under ``labels`` (the shape,
    rank, batch, ... it was measured at), its target ``limit`` (the most a / b may be; None: no
    target), and ``work``, what a and b compute, where it was profiled."""

    labels: dict
    ratio: bench.Ratio
    limit: float | None = None
    work: bench.WorkComparison | None = None

    @property
    def verdict(self) -> str | None:
        """``yes`` if the ratio meets ``limit``; ``within spread`` if only its lower quartile
        does; else ``no``. None without a target."""
        if self.limit is None:
            return None
        if self.ratio.ratio <= self.limit:
            return "yes"
        return "within spread" if self.ratio.ratio_q1 <= self.limit else "no"

    def record(self) -> dict:
        """The comparison as one flat JSON record: labels, ratio, target, verdict, work."""
        record = {**self.labels, **asdict(self.ratio),
                  "target": None if self.limit is None else f"<= {self.limit:.2f}"}
        if self.limit is not None:
            record["verdict"] = self.verdict
        return record | (asdict(self.work) if self.work else {})


@dataclass
class Group:
    """Contenders timed together, interleaved, under ``labels``; and the comparisons made of
    them. ``samples``: one row per timed call, from ``lorakit.bench.interleaved_samples``."""

    labels: dict
    samples: pd.DataFrame
    comparisons: list[Comparison] = field(default_factory=list)

    @classmethod
    def timed(cls, contenders: Mapping[str, Callable[[], object]], args, labels: dict,
              repeats: int | None = None) -> Group:
        """Time ``contenders``: ``args.warmup`` untimed rounds, then ``repeats`` (default
        ``args.repeats``) timed rounds."""
        samples = bench.interleaved_samples(contenders, repeats=repeats or args.repeats,
                                            warmup=args.warmup)
        return cls(labels, samples)

    def compare(self, a: str, b: str, limit: float | None = None,
                work: bench.WorkComparison | None = None) -> Comparison:
        """Add and return the comparison of ``a``'s time with ``b``'s."""
        comparison = Comparison(self.labels, bench.pair_ratio(self.samples, a, b), limit, work)
        self.comparisons.append(comparison)
        return comparison

    def comparison(self, a: str, b: str) -> Comparison:
        """The comparison of ``a`` with ``b`` made earlier by ``compare``."""
        for c in self.comparisons:
            if (c.ratio.a, c.ratio.b) == (a, b):
                return c
        raise KeyError(f"no comparison {a} / {b} under {self.labels}")

    def median_s(self, contender: str) -> float:
        return float(bench.summarize_timings(self.samples).loc[contender, "median_s"])

    def records(self) -> list[dict]:
        """One JSON record per contender: labels, median, quartiles, min, max (s), repeats."""
        summary = bench.summarize_timings(self.samples)
        return [{**self.labels, "contender": name, **{k: float(v) for k, v in row.items()},
                 "repeats": int(row["repeats"])} for name, row in summary.iterrows()]


def timing_results(groups: Iterable[Group]) -> dict:
    """``records`` (one per contender and group) and ``comparisons``, for the JSON."""
    groups = list(groups)
    return {"records": [r for g in groups for r in g.records()],
            "comparisons": [c.record() for g in groups for c in g.comparisons]}


def all_hold(comparisons: Iterable[Comparison]) -> str:
    """One verdict for several: ``yes`` if all are, ``no`` if any is, else ``within spread``."""
    verdicts = [c.verdict for c in comparisons]
    if all(v == "yes" for v in verdicts):
        return "yes"
    return "within spread" if all(v != "no" for v in verdicts) else "no"


RATIO_NOTE = (
    "A ratio A / B is the median over rounds of A's time divided by B's time in the same round "
    "(they ran back to back); [IQR] is the interquartile range of those per-round ratios. "
    "\"within spread\": the median ratio misses the target but the interquartile range reaches it."
)


# --- output ---------------------------------------------------------------------------------

def ms(seconds: float) -> float:
    return 1000.0 * seconds


def training_profile(args) -> tuple[str, dict]:
    """The profile and run limits of a script that trains: ``offline``, or with ``--quick`` the
    tiny test model on a handful of examples, to test the script (its numbers mean nothing)."""
    if args.quick:
        return "tiny", {"epochs": 1, "max_train": 32, "max_eval": 16}
    return "offline", {}


def write_results(name: str, results: Mapping, markdown: str, args) -> tuple[Path, Path]:
    """Write ``<results_dir>/<name>.json`` and ``<name>.md``; return both paths.

    The JSON holds ``benchmark``, ``command``, ``settings`` (the parsed arguments), ``machine``
    (``args.machine``, taken as the run started) and everything in ``results`` (records,
    comparisons, targets). The Markdown file starts with a heading, the command and the
    machine, then ``markdown``.
    """
    machine = getattr(args, "machine", None) or machine_info(args.device)
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
