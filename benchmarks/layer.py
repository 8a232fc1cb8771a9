"""Item 1: one LoRA layer, forward + backward, and merged inference against the base layer.

At DistilBERT's shapes (768→768 as q_lin/v_lin, 768→3072 as lin1) with 16 × 128 tokens, for
r in {1, 8, 64} and LoRA dropout 0 and 0.1, four contenders run interleaved:

- ``lorakit``: ``lorakit.LoRALinear`` (frozen base + trainable A, B)
- ``peft``: PEFT's ``lora.Linear`` on a copy of the same base, with the same A and B
- ``frozen``: the plain ``nn.Linear`` with its weights frozen
- ``trainable``: the plain ``nn.Linear`` with its weights trained (full fine-tuning)

One call is a forward pass and a backward pass of a fixed output gradient. The input requires a
gradient, as it does in the middle of a network whose earlier layers train, so every contender
computes dL/dx. Then, per shape, inference (no gradients) of the base layer against the same
layer with a merged LoRA update (``LoRALinear.merge()``) and an unmerged one, and against an
identical copy of itself (``base again``): that A/A pair shows how far two equal layers' timings
differ on this machine, the floor under which no difference is real. These calls are short, so
they get more repeats (``--inference-repeats``).

    .venv/bin/python benchmarks/layer.py            # writes benchmarks/results/layer.{json,md}
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import torch
from common import (
    RATIO_NOTE,
    all_hold,
    autocast,
    contender_records,
    float_list,
    int_list,
    make_parser,
    markdown_table,
    ms,
    pair_ratio,
    parse_args,
    ratio_text,
    time_contenders,
    verdict_at_most,
    work_against,
    work_text,
    write_results,
)
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from lorakit import LoRALinear

NAME = "layer"
DISTILBERT_SHAPES = ((768, 768), (768, 3072))
QUICK_SHAPES = ((32, 48),)
MERGED_RANK = 8
UNMERGED = "inference, unmerged"
MERGED_LIMIT = 1.01  # merged inference at most 1% slower than the base layer


class _Holder(nn.Module):
    """A one-layer model, so that PEFT can put its ``lora.Linear`` around ``lin``."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.lin = lin


def peft_linear(base: nn.Linear, ours: LoRALinear) -> nn.Module:
    """PEFT's ``lora.Linear`` around a copy of ``base``, with ``ours``' r, alpha, dropout, A, B."""
    dropout = ours.dropout.p if isinstance(ours.dropout, nn.Dropout) else 0.0
    config = LoraConfig(r=ours.r, lora_alpha=ours.alpha, lora_dropout=dropout,
                        target_modules=["lin"])
    layer = inject_adapter_in_model(config, _Holder(copy.deepcopy(base))).lin
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.lora_A)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    return layer


def randomize_B(layer: LoRALinear, generator: torch.Generator) -> None:
    """A trained-looking B (it is zero at init), so that the update is not zero."""
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.02)


def forward_backward(layer: nn.Module, x: torch.Tensor, grad_out: torch.Tensor, device: str):
    """A closure: clear the gradients, forward ``x``, backward ``grad_out``."""
    def call() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        with autocast(device):
            out = layer(x)
        out.backward(grad_out)
    return call


def inference(layer: nn.Module, x: torch.Tensor, device: str):
    def call() -> None:
        with torch.inference_mode(), autocast(device):
            layer(x)
    return call


def compare(samples, a: str, b: str, labels: dict, target: str | None = None) -> dict:
    return {**labels, **pair_ratio(samples, a, b), "target": target}


def run_layer_group(base, r, dropout, x, grad_out, args, generator, labels):
    device = args.device
    ours = LoRALinear(copy.deepcopy(base), r=r, alpha=2 * r, dropout=dropout)
    randomize_B(ours, generator)
    theirs = peft_linear(base, ours)
    frozen = copy.deepcopy(base).requires_grad_(False)
    trainable = copy.deepcopy(base).requires_grad_(True)
    layers = {"lorakit": ours, "peft": theirs, "frozen": frozen, "trainable": trainable}
    contenders = {name: forward_backward(layer.to(device).train(), x, grad_out, device)
                  for name, layer in layers.items()}
    samples = time_contenders(contenders, args)
    comparisons = [
        compare(samples, "lorakit", "peft", labels, target="<= 1.00"),
        compare(samples, "lorakit", "frozen", labels),
        compare(samples, "lorakit", "trainable", labels),
        compare(samples, "peft", "frozen", labels),
    ]
    c = comparisons[0]
    c["verdict"] = verdict_at_most(c["ratio"], c["ratio_q1"], 1.0)
    c.update(work_against(contenders["lorakit"], contenders["peft"]))
    return contender_records(samples, **labels), comparisons


def run_merged_group(base, x, args, generator, labels):
    device = args.device
    merged = LoRALinear(copy.deepcopy(base), r=MERGED_RANK, alpha=2 * MERGED_RANK)
    randomize_B(merged, generator)
    unmerged = copy.deepcopy(merged).to(device).eval()
    merged.merge()
    # The merged layer and the base, with the A/A control, timed on their own: a contender that
    # allocates more (the unmerged layer) would change what the others' allocations cost.
    layers = {"base": copy.deepcopy(base), "lorakit merged": merged,
              "base again": copy.deepcopy(base)}
    contenders = {name: inference(layer.to(device).eval(), x, device)
                  for name, layer in layers.items()}
    samples = time_contenders(contenders, args, repeats=args.inference_repeats)
    merged_vs_base = compare(samples, "lorakit merged", "base", labels, target="<= 1.01")
    merged_vs_base["verdict"] = verdict_at_most(
        merged_vs_base["ratio"], merged_vs_base["ratio_q1"], MERGED_LIMIT)
    comparisons = [merged_vs_base, compare(samples, "base again", "base", labels)]
    records = contender_records(samples, **labels)
    # What merging saves: the unmerged layer against the base, as a second comparison.
    labels = {**labels, "kind": UNMERGED}
    samples = time_contenders({"base": contenders["base"],
                               "lorakit unmerged": inference(unmerged, x, device)}, args)
    comparisons.append(compare(samples, "lorakit unmerged", "base", labels))
    return records + contender_records(samples, **labels), comparisons


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
    records, comparisons = [], []
    for in_features, out_features in shapes:
        base = nn.Linear(in_features, out_features)
        x = torch.randn(batch, seq_len, in_features, generator=generator).to(args.device)
        grad_out = torch.randn(batch, seq_len, out_features, generator=generator).to(
            args.device, torch.float16 if args.device == "cuda" else torch.float32)  # = output's
        shape = f"{in_features}→{out_features}"
        for r in ranks:
            for dropout in args.dropouts:
                labels = {"kind": "forward+backward", "shape": shape, "tokens": batch * seq_len,
                          "r": r, "dropout": dropout}
                print(f"{NAME}: {shape} r={r} dropout={dropout}", file=sys.stderr, flush=True)
                new_records, new_comparisons = run_layer_group(
                    base, r, dropout, x.clone().requires_grad_(True), grad_out, args, generator,
                    labels)
                records += new_records
                comparisons += new_comparisons
        labels = {"kind": "inference", "shape": shape, "tokens": batch * seq_len,
                  "r": MERGED_RANK, "dropout": 0.0}
        print(f"{NAME}: {shape} merged inference", file=sys.stderr, flush=True)
        new_records, new_comparisons = run_merged_group(base, x, args, generator, labels)
        records += new_records
        comparisons += new_comparisons
    results = {"records": records, "comparisons": comparisons, "targets": targets(comparisons)}
    write_results(NAME, results, to_markdown(records, comparisons), args)
    return results


def targets(comparisons: list[dict]) -> dict:
    """Every comparison that has a target, with its verdict; and whether all of them hold."""
    checked = [c for c in comparisons if c.get("target")]
    return {
        "lorakit_vs_peft_at_most_1": all_hold(
            c for c in checked if c["kind"] == "forward+backward"),
        "merged_at_most_1pct_slower_than_base": all_hold(
            c for c in checked if c["kind"] == "inference"),
    }


def to_markdown(records: list[dict], comparisons: list[dict]) -> str:
    median = {(r["kind"], r["shape"], r["r"], r["dropout"], r["contender"]): r["median_s"]
              for r in records}

    def pair(kind, shape, r, dropout, a, b):
        for c in comparisons:
            if (c["kind"], c["shape"], c["r"], c["dropout"], c["a"], c["b"]) == (
                    kind, shape, r, dropout, a, b):
                return c
        raise KeyError((kind, shape, r, dropout, a, b))

    rows = []
    groups = list(dict.fromkeys((c["shape"], c["r"], c["dropout"]) for c in comparisons
                                if c["kind"] == "forward+backward"))
    for shape, r, dropout in groups:
        key = ("forward+backward", shape, r, dropout)
        vs_peft = pair(*key, "lorakit", "peft")
        rows.append({
            "shape": shape, "r": r, "dropout": dropout,
            **{name: ms(median[(*key, name)]) for name in ("lorakit", "peft", "frozen",
                                                           "trainable")},
            "ratio": ratio_text(vs_peft), "verdict": vs_peft["verdict"],
            "work": work_text(vs_peft),
            "vs_frozen": pair(*key, "lorakit", "frozen")["ratio"],
            "peft_vs_frozen": pair(*key, "peft", "frozen")["ratio"],
            "vs_trainable": pair(*key, "lorakit", "trainable")["ratio"],
        })
    layer_table = markdown_table(rows, {
        "shape": "shape", "r": "r", "dropout": "dropout", "lorakit": "lorakit ms",
        "peft": "PEFT ms", "frozen": "frozen ms", "trainable": "trainable ms",
        "ratio": "lorakit / PEFT [IQR]", "verdict": "≤ 1.00?",
        "work": "lorakit's work against PEFT's", "vs_frozen": "lorakit / frozen",
        "peft_vs_frozen": "PEFT / frozen", "vs_trainable": "lorakit / trainable",
    })
    merged_rows = []
    for c in comparisons:
        if c["kind"] != "inference" or c["a"] != "lorakit merged":
            continue
        key = ("inference", c["shape"], c["r"], c["dropout"])
        unmerged_key = (UNMERGED, *key[1:])
        unmerged = pair(*unmerged_key, "lorakit unmerged", "base")
        merged_rows.append({
            "shape": c["shape"], "base": ms(median[(*key, "base")]),
            "merged": ms(median[(*key, "lorakit merged")]),
            "ratio": ratio_text(c), "verdict": c["verdict"],
            "control": ratio_text(pair(*key, "base again", "base")), "repeats": c["rounds"],
            "unmerged": ms(median[(*unmerged_key, "lorakit unmerged")]),
            "unmerged_ratio": ratio_text(unmerged), "unmerged_repeats": unmerged["rounds"],
        })
    merged_table = markdown_table(merged_rows, {
        "shape": "shape", "base": "base ms", "merged": "merged ms",
        "ratio": "merged / base [IQR]", "verdict": "≤ 1.01?",
        "control": "base again / base [IQR]", "repeats": "repeats",
        "unmerged": "unmerged ms", "unmerged_ratio": "unmerged / base [IQR]",
        "unmerged_repeats": "repeats",
    })
    tokens = records[0]["tokens"]
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
