"""``lorakit train | sweep | report`` (also ``python -m lorakit``).

Examples::

    lorakit train --task emotion --method lora --rank 8 --alpha 16 --profile offline
    lorakit train --task imdb --method lora --train-file train.csv --test-file test.csv \\
        --text-column review --label-column sentiment --model ./my-distilbert
    lorakit sweep --task emotion --ranks 1,4,8,16 --alpha-ratios 1,2
    lorakit report runs/

Bad arguments or unusable input end with exit code 2 and a one-line reason, before any work and
with nothing written (the numeric ranges: ``lorakit.ranges.RANGES``); a training loss that
turns NaN or infinite ends with exit code 1, keeping the run's last checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from lorakit.methods import METHOD_NAMES
from lorakit.profiles import PROFILE_NAMES, resolve_profile, runs_dir
from lorakit.ranges import RANGES, check_setting
from lorakit.tasks import HubUnavailableError
from lorakit.train import NonFiniteLossError, run_settings

EXIT_BAD_INPUT = 2
EXIT_TRAINING_FAILED = 1


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other refusal of the CLI."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _setting(name: str):
    """Parse a flag's text as the kind of number setting ``name`` is; its range is run()'s to
    check, so that Python callers get the same message."""
    rule = RANGES[name]

    def parse(text: str):
        try:
            return rule.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an int' if rule.kind is int else 'a number'}: use "
                f"{rule.describe()}, e.g. {rule.flag} {rule.example:g}") from None

    return parse


def _csv(kind):
    def parse(text: str):
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma-separated list of {kind.__name__}s, e.g. 1,4,8"
            ) from None
        if not values:
            raise argparse.ArgumentTypeError("the list is empty")
        return values

    return parse


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=("imdb", "emotion"))
    parser.add_argument("--profile", choices=PROFILE_NAMES,
                        help="run size; default: $LORAKIT_PROFILE, else full on CUDA, else quick")
    parser.add_argument("--targets", type=_csv(str), default=["q_lin", "v_lin", "lin1", "lin2"],
                        help="LoRA target module names, comma-separated (default: %(default)s)")
    parser.add_argument("--dropout", type=_setting("dropout"), default=0.0,
                        help="LoRA dropout on the input of A (default 0, as in PEFT)")
    parser.add_argument("--rslora", action="store_true", help="scale by alpha/sqrt(r)")
    parser.add_argument("--epochs", type=_setting("epochs"), help="override the profile's epochs")
    parser.add_argument("--lr", type=_setting("lr"),
                        help="the learning rate of what the method trains (profile's by default)")
    parser.add_argument("--head-lr", type=_setting("head_lr"),
                        help="the new classification head's learning rate (profile's by default)")
    parser.add_argument("--batch-size", type=_setting("batch_size"),
                        help="override the profile's batch size")
    parser.add_argument("--max-length", type=_setting("max_length"),
                        help="override the profile's max tokens")
    parser.add_argument("--max-train", type=_setting("max_train"),
                        help="cap the training examples")
    parser.add_argument("--max-eval", type=_setting("max_eval"),
                        help="cap the examples of each eval split")
    parser.add_argument("--seed", type=_setting("seed"), default=0)
    parser.add_argument("--model", metavar="NAME_OR_DIR", help="Hub id or local model directory")
    parser.add_argument("--train-file", metavar="F")
    parser.add_argument("--validation-file", metavar="F")
    parser.add_argument("--test-file", metavar="F")
    parser.add_argument("--text-column", metavar="C")
    parser.add_argument("--label-column", metavar="C")
    parser.add_argument("--output-dir", metavar="D",
                        help="default: $LORAKIT_RUNS_DIR, else runs/")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="lorakit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="one fine-tuning run → runs/<task>/<run-name>/")
    train.add_argument("--method", choices=METHOD_NAMES, default="lora",
                       help="lora (from scratch), peft, full, head, or a LoRA variant: dora, "
                            "pissa, loraplus, vera, ia3 (lorakit.methods says what each does)")
    train.add_argument("--rank", type=_setting("r"), default=8,
                       help="LoRA rank r (VeRA: the length of its trained vectors)")
    train.add_argument("--alpha", type=_setting("alpha"), default=16, help="LoRA alpha")
    train.add_argument("--run-name",
                       help="default: e.g. lora-r8-a16-seed0, vera-r256-seed0, full-seed0 "
                            "(lorakit.train.default_run_name)")
    _add_run_options(train)

    sweep = commands.add_parser("sweep", help="LoRA runs over ranks × alpha/r ratios")
    sweep.add_argument("--method", choices=("lora", "peft"), default="lora")
    sweep.add_argument("--ranks", type=_csv(int), default=[1, 4, 8, 16])
    sweep.add_argument("--alpha-ratios", type=_csv(float), default=[1.0, 2.0],
                       help="alpha = ratio × rank (default: %(default)s)")
    _add_run_options(sweep)

    report = commands.add_parser("report", help="every run under a directory → one table")
    report.add_argument("runs_dir", nargs="?", help="default: $LORAKIT_RUNS_DIR, else runs/")
    return parser


def _data_files(args) -> dict | None:
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    given = {split: path for split, path in files.items() if path}
    if given and not (args.train_file and args.test_file):
        raise ValueError("local data needs both --train-file and --test-file "
                         "(--validation-file is optional; it is carved from train otherwise)")
    return given or None


def _settings(args) -> dict:
    """The run settings the flags give (``lorakit.train.RunSettings``' fields); None: the
    profile's."""
    return {
        "targets": args.targets, "dropout": args.dropout, "rslora": args.rslora,
        "epochs": args.epochs, "lr": args.lr, "head_lr": args.head_lr,
        "batch_size": args.batch_size, "max_length": args.max_length,
        "max_train": args.max_train, "max_eval": args.max_eval, "seed": args.seed,
        "profile": args.profile, "model": args.model, "data_files": _data_files(args),
        "text_column": args.text_column, "label_column": args.label_column,
    }


def _controls(args) -> dict:
    """What the flags say about the run itself: where it goes, resume, overwrite."""
    return {"output_dir": args.output_dir, "resume": args.resume, "overwrite": args.overwrite}


def _print_run(result) -> None:
    m = result.metrics
    print(f"{result.run_dir}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
          f"trainable {m['trainable_parameters']:,} ({m['trainable_percent']:.2f}%), "
          f"{m['train_seconds']:.1f} s")


def _command_train(args) -> None:
    from lorakit.train import run

    _print_run(run(args.task, args.method, r=args.rank, alpha=args.alpha,
                   run_name=args.run_name, **_settings(args), **_controls(args)))


def _command_sweep(args) -> None:
    from lorakit.models import check_fits_model, load_base
    from lorakit.report import report, to_markdown
    from lorakit.train import run

    # every configuration before the first run, so that a bad one leaves no half sweep behind
    for rank in args.ranks:
        check_setting("r", rank, flag="--ranks")
    planned = [run_settings(args.task, args.method, r=rank, alpha=ratio * rank, **_settings(args))
               for rank in args.ranks for ratio in args.alpha_ratios]
    base, _ = load_base(args.task, args.profile, args.model)
    check_fits_model(base, args.targets, max(args.ranks), planned[0].max_length)
    del base
    for settings in planned:
        _print_run(run(settings, **_controls(args)))
    print(to_markdown(report(args.output_dir or runs_dir())))


def _command_report(args) -> None:
    from lorakit.report import report, to_markdown

    print(to_markdown(report(args.runs_dir or runs_dir())))


COMMANDS = {"train": _command_train, "sweep": _command_sweep, "report": _command_report}


def use_one_thread_for_tiny(profile_name: str | None) -> None:
    """Run the tiny profile on one torch thread, unless ``OMP_NUM_THREADS`` says otherwise.

    The tiny model is tiny: on a few shared cores its threads spend longer waiting for each
    other than computing (a run took 13 s on one thread and over 100 s on two, on our 2-core
    machine with another job beside it). The offline profile's larger model gains from threads.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return
    try:
        tiny = resolve_profile(profile_name).name == "tiny"
    except ValueError:
        return  # run() names the bad profile
    if tiny:
        torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lorakit`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad flag already reported in one line
        return exit_.code
    if args.command in ("train", "sweep"):
        use_one_thread_for_tiny(args.profile)
    try:
        COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, HubUnavailableError) as error:
        print(f"lorakit {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteLossError as error:
        print(f"lorakit {args.command}: training failed: {_one_line(error)}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
