"""Item 1: one LoRA layer, forward + backward, and merged inference against the base layer.

At DistilBERT's shapes (768→768 as q_lin/v_lin, 768→3072 as lin1) with 16 × 128 tokens, for
r in {1, 8, 64} and LoRA dropout 0 and 0.1, four contenders run interleaved:

- ``lorakit``: ``lorakit.LoRALinear`` (frozen base + trainable A, B)
- ``peft``: PEFT's ``lora.Linear`` on a copy of the same base, with the same A and B
- ``frozen``: the plain ``nn.Linear`` with its weights frozen
- ``trainable``: the plain ``nn.Linear`` with its weights trained (full fine-tuning)

One call is a forward pass, in the precision ``lorakit.train.run`` trains in on the device, and a
backward pass of a fixed output gradient. The input requires a gradient, as it does in the middle
of a network whose earlier layers train, so every contender computes dL/dx. Then, per shape,
inference (no gradients) of the base layer against the same layer with a merged LoRA update
(``LoRALinear.merge()``) and an unmerged one, and against an identical copy of itself
(``base again``): that A/A pair shows how far two equal layers' timings differ on this machine,
the floor under which no difference is real. These calls are short, so they get more repeats
(``--inference-repeats``).

    .venv/bin/python benchmarks/layer.py            # writes benchmarks/results/layer.{json,md}
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import torch
from common import (
    RATIO_NOTE,
    Group,
    all_hold,
    float_list,
    int_list,
    make_parser,
    ms,
    parse_args,
    timing_results,
    write_results,
)
from peft import inject_adapter_in_model
from torch import nn

from lorakit import LoRALinear
from lorakit.bench import compare_work
from lorakit.lora import LoRAConfig
from lorakit.peft_format import copy_into_peft, to_peft_config
from lorakit.precision import DTYPES, autocast
from lorakit.report import markdown_table

NAME = "layer"
DISTILBERT_SHAPES = ((768, 768), (768, 3072))
QUICK_SHAPES = ((32, 48),)
MERGED_RANK = 8
MERGED_LIMIT = 1.01  # merged inference at most 1% slower than the base layer


class _Holder(nn.Module):
    """A one-layer model, so that PEFT can put its ``lora.Linear`` around ``lin``."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.lin = lin


def peft_linear(base: nn.Linear, ours: LoRALinear) -> nn.Module:
    """PEFT's ``lora.Linear`` around a copy of ``base``, with ``ours``' r, alpha, dropout, A, B."""
    dropout = ours.dropout.p if isinstance(ours.dropout, nn.Dropout) else 0.0
    settings = LoRAConfig(("lin",), ours.r, ours.alpha, dropout, ours.rslora, train_modules=())
    theirs = inject_adapter_in_model(to_peft_config(settings), _Holder(copy.deepcopy(base)))
    copy_into_peft(_Holder(ours), theirs)
    return theirs.lin


def randomize_B(layer: LoRALinear, generator: torch.Generator) -> None:
    """A trained-looking B (it is zero at init), so that the update is not zero."""
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.02)


def forward_backward(layer: nn.Module, x: torch.Tensor, grad_out: torch.Tensor, args):
    """A closure: clear the gradients, forward ``x`` under ``args.precision``'s autocast,
    backward ``grad_out`` (in the output's dtype)."""
    def call() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        with autocast(args.device, args.precision):
            out = layer(x)
        out.backward(grad_out)
    return call


def inference(layer: nn.Module, x: torch.Tensor, args):
    def call() -> None:
        with torch.inference_mode(), autocast(args.device, args.precision):
            layer(x)
    return call


def run_layer_group(base, r, dropout, x, grad_out, args, generator, labels) -> Group:
    ours = LoRALinear(copy.deepcopy(base), r=r, alpha=2 * r, dropout=dropout)
    randomize_B(ours, generator)
    theirs = peft_linear(base, ours)
    frozen = copy.deepcopy(base).requires_grad_(False)
    trainable = copy.deepcopy(base).requires_grad_(True)
    layers = {"lorakit": ours, "peft": theirs, "frozen": frozen, "trainable": trainable}
    contenders = {name: forward_backward(layer.to(args.device).train(), x, grad_out, args)
                  for name, layer in layers.items()}
    group = Group.timed(contenders, args, labels)
    group.compare("lorakit", "peft", limit=1.0,
                  work=compare_work(contenders["lorakit"], contenders["peft"]))
    group.compare("lorakit", "frozen")
    group.compare("lorakit", "trainable")
    group.compare("peft", "frozen")
    return group


def run_merged_group(base, x, args, generator, labels) -> tuple[Group, Group]:
    """Merged inference against the base layer and its A/A control; then, in a group of its
    own, the unmerged layer against the base."""
    merged = LoRALinear(copy.deepcopy(base), r=MERGED_RANK, alpha=2 * MERGED_RANK)
    randomize_B(merged, generator)
    unmerged = copy.deepcopy(merged).to(args.device).eval()
    merged.merge()
    # The merged layer and the base, with the A/A control, timed on their own: a contender that
    # allocates more (the unmerged layer) would change what the others' allocations cost.
    layers = {"base": copy.deepcopy(base), "lorakit merged": merged,
              "base again": copy.deepcopy(base)}
    contenders = {name: inference(layer.to(args.device).eval(), x, args)
                  for name, layer in layers.items()}
    merged_group = Group.timed(contenders, args, labels, repeats=args.inference_repeats)
    merged_group.compare("lorakit merged", "base", limit=MERGED_LIMIT)
    merged_group.compare("base again", "base")
    # What merging saves: the unmerged layer against the base, as a second comparison.
    unmerged_group = Group.timed(
        {"base": contenders["base"], "lorakit unmerged": inference(unmerged, x, args)}, args,
        {**labels, "kind": "inference, unmerged"})
    unmerged_group.compare("lorakit unmerged", "base")
    return merged_group, unmerged_group


def build_parser():
    # A call takes tens to hundreds of milliseconds: many rounds cost little and steady the
    # median, which matters on a shared machine where the spread is several percent.
    parser = make_parser("layer.py", __doc__.split("\n\n")[0], default_repeats=21)
    parser.add_argument("--batch", type=int, default=16, help="sequences per batch")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--ranks", type=int_list, default=[1, 8, 64], help="LoRA ranks r")
    parser.add_argument("--dropouts", type=float_list, default=[0.0, 0.1],
                        help="LoRA dropout probabilities")
    parser.add_argument("--inference-repeats", type=int, default=41,
                        help="timed rounds for the (short) inference calls; at least --repeats")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    args.inference_repeats = max(args.inference_repeats, args.repeats)
    shapes = DISTILBERT_SHAPES
    batch, seq_len, ranks = args.batch, args.seq_len, args.ranks
    if args.quick:
        shapes, batch, seq_len, ranks = QUICK_SHAPES, 2, 8, [2]
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    # autocast's output dtype: the gradient fed back must have it
    grad_dtype = DTYPES[args.precision]
    layer_groups, merged_groups = [], []
    for in_features, out_features in shapes:
        base = nn.Linear(in_features, out_features)
        x = torch.randn(batch, seq_len, in_features, generator=generator).to(args.device)
        grad_out = torch.randn(batch, seq_len, out_features, generator=generator).to(
            args.device, grad_dtype)
        shape = f"{in_features}→{out_features}"
        for r in ranks:
            for dropout in args.dropouts:
                labels = {"kind": "forward+backward", "shape": shape, "tokens": batch * seq_len,
                          "r": r, "dropout": dropout}
                print(f"{NAME}: {shape} r={r} dropout={dropout}", file=sys.stderr, flush=True)
                layer_groups.append(run_layer_group(
                    base, r, dropout, x.clone().requires_grad_(True), grad_out, args, generator,
                    labels))
        labels = {"kind": "inference", "shape": shape, "tokens": batch * seq_len,
                  "r": MERGED_RANK, "dropout": 0.0}
        print(f"{NAME}: {shape} merged inference", file=sys.stderr, flush=True)
        merged_groups.append(run_merged_group(base, x, args, generator, labels))
    groups = [*layer_groups, *(g for pair in merged_groups for g in pair)]
    results = {**timing_results(groups), "targets": {
        "lorakit_vs_peft_at_most_1": all_hold(
            g.comparison("lorakit", "peft") for g in layer_groups),
        "merged_at_most_1pct_slower_than_base": all_hold(
            merged.comparison("lorakit merged", "base") for merged, _ in merged_groups),
    }}
    write_results(NAME, results, to_markdown(layer_groups, merged_groups), args)
    return results


def to_markdown(layer_groups: list[Group], merged_groups: list[tuple[Group, Group]]) -> str:
    rows = []
    for g in layer_groups:
        vs_peft = g.comparison("lorakit", "peft")
        rows.append({
            **g.labels,
            **{name: ms(g.median_s(name)) for name in ("lorakit", "peft", "frozen", "trainable")},
            "ratio": vs_peft.ratio.text(), "verdict": vs_peft.verdict,
            "work": vs_peft.work.text(),
            "vs_frozen": g.comparison("lorakit", "frozen").ratio.ratio,
            "peft_vs_frozen": g.comparison("peft", "frozen").ratio.ratio,
            "vs_trainable": g.comparison("lorakit", "trainable").ratio.ratio,
        })
    layer_table = markdown_table(rows, {
        "shape": "shape", "r": "r", "dropout": "dropout", "lorakit": "lorakit ms",
        "peft": "PEFT ms", "frozen": "frozen ms", "trainable": "trainable ms",
        "ratio": "lorakit / PEFT [IQR]", "verdict": "≤ 1.00?",
        "work": "lorakit's work against PEFT's", "vs_frozen": "lorakit / frozen",
        "peft_vs_frozen": "PEFT / frozen", "vs_trainable": "lorakit / trainable",
    })
    merged_rows = []
    for merged, unmerged in merged_groups:
        vs_base = merged.comparison("lorakit merged", "base")
        unmerged_vs_base = unmerged.comparison("lorakit unmerged", "base")
        merged_rows.append({
            "shape": merged.labels["shape"], "base": ms(merged.median_s("base")),
            "merged": ms(merged.median_s("lorakit merged")),
            "ratio": vs_base.ratio.text(), "verdict": vs_base.verdict,
            "control": merged.comparison("base again", "base").ratio.text(),
            "repeats": vs_base.ratio.rounds,
            "unmerged": ms(unmerged.median_s("lorakit unmerged")),
            "unmerged_ratio": unmerged_vs_base.ratio.text(),
            "unmerged_repeats": unmerged_vs_base.ratio.rounds,
        })
    merged_table = markdown_table(merged_rows, {
        "shape": "shape", "base": "base ms", "merged": "merged ms",
        "ratio": "merged / base [IQR]", "verdict": "≤ 1.01?",
        "control": "base again / base [IQR]", "repeats": "repeats",
        "unmerged": "unmerged ms", "unmerged_ratio": "unmerged / base [IQR]",
        "unmerged_repeats": "repeats",
    })
    tokens = layer_groups[0].labels["tokens"]
    return (
        f"### Forward + backward, {tokens} tokens (median of interleaved repeats)\n\n"
        f"{layer_table}\n\n"
        f"### Inference, merged and unmerged (r = {MERGED_RANK}) against the base layer, "
        f"{tokens} tokens\n\n{merged_table}\n\n"
        "`base again` is an identical copy of the base layer: its ratio to `base` is what "
        "two equal layers measure here, the noise floor for the merged one. The unmerged layer "
        "is timed against the base in a comparison of its own. \"lorakit's work against "
        "PEFT's\": the FLOPs of one call of each and the computing torch operations (views and "
        "same-dtype `.to()` aside) whose counts differ, lorakit's count minus PEFT's, from "
        "torch.profiler (which counts elementwise products as FLOPs too). Both do the same "
        "matrix products; lorakit scales the r-wide product "
        "x·Aᵀ instead of the full-width update, and adds (x·Aᵀ)·Bᵀ into the base output in one "
        "`addmm` instead of `mm` then `add`: two full-width tensors fewer per call.\n\n"
        f"{RATIO_NOTE}\n"
    )


if __name__ == "__main__":
    main()
