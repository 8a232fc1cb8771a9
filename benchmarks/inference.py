"""Item 3: inference of a DistilBERT-sized classifier, merged LoRA against the base and PEFT.

From one ``DistilBertForSequenceClassification`` with random weights from ``DistilBertConfig()``
(no download), five models classify the same batch, interleaved, in eval mode without gradients:

- ``base``: the model as it is
- ``lorakit merged``: lorakit's LoRA (r = 8 on q_lin, v_lin, lin1, lin2; B made non-zero, as
  after training) folded in by ``merge_lora``: plain ``nn.Linear`` layers holding W + ΔW
- ``lorakit unmerged``: the same adapter, not merged (an extra low-rank path per layer)
- ``peft unmerged``: the same adapter saved by ``save_peft_adapter`` and loaded by
  ``PeftModel.from_pretrained``, not merged
- ``base again``: an identical copy of ``base``, whose ratio to it is the noise floor: what two
  equal models measure on this machine

Times are per batch (sequence length 128; batch sizes 1 and 16), in the precision
``lorakit.train.run`` trains in on the device. The script also checks, in fp32, that the models
with the adapter agree: merged and unmerged logits, lorakit's and PEFT's, to float tolerance.

    .venv/bin/python benchmarks/inference.py    # writes benchmarks/results/inference.{json,md}
"""

from __future__ import annotations

import copy
import sys
import tempfile
from collections.abc import Sequence

import torch
from common import (
    RATIO_NOTE,
    Group,
    all_hold,
    int_list,
    make_parser,
    ms,
    parse_args,
    timing_results,
    write_results,
)
from peft import PeftModel
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from lorakit import inject_lora, merge_lora
from lorakit.models import DEFAULT_TARGETS, head_modules
from lorakit.peft_format import save_peft_adapter
from lorakit.precision import autocast
from lorakit.report import markdown_table

NAME = "inference"
RANK, ALPHA = 8, 16
MERGED_LIMIT = 1.01  # merged inference at most 1% slower than the base model
QUICK_CONFIG = dict(vocab_size=100, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                    max_position_embeddings=64)
CONTENDERS = ("base", "lorakit merged", "lorakit unmerged", "peft unmerged", "base again")
# The comparisons a / b made at each batch size, with their targets (the most a / b may be).
PAIRS = (("lorakit merged", "base", MERGED_LIMIT), ("lorakit merged", "peft unmerged", None),
         ("lorakit unmerged", "peft unmerged", 1.0), ("peft unmerged", "base", None),
         ("base again", "base", None))


def build_models(base, seed: int) -> dict:
    """The four models of the comparison, all in eval mode, sharing the base's weights' values."""
    adapted = inject_lora(copy.deepcopy(base), DEFAULT_TARGETS, r=RANK, alpha=ALPHA,
                          train_modules=head_modules(base))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if name.endswith("lora_B"):  # B = 0 at init; a trained adapter has B != 0
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    with tempfile.TemporaryDirectory() as adapter_dir:
        save_peft_adapter(adapted, adapter_dir)
        peft_model = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir)
    merged = merge_lora(copy.deepcopy(adapted))
    models = {"base": base, "lorakit merged": merged, "lorakit unmerged": adapted,
              "peft unmerged": peft_model, "base again": copy.deepcopy(base)}
    return {name: model.eval() for name, model in models.items()}


def forward(model, batch: dict, device: str, precision: str):
    def call() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, precision):
            return model(**batch).logits
    return call


def agreement(models: dict, batch: dict, device: str) -> dict:
    """Largest absolute logit differences between models that should agree, computed in fp32
    (in 16 bits they would differ by the rounding, whatever the models)."""
    logits = {name: forward(model, batch, device, "fp32")() for name, model in models.items()}

    def gap(a: str, b: str) -> float:
        return float((logits[a] - logits[b]).abs().max())

    return {"merged_vs_unmerged": gap("lorakit merged", "lorakit unmerged"),
            "lorakit_vs_peft_unmerged": gap("lorakit unmerged", "peft unmerged"),
            "merged_vs_peft_unmerged": gap("lorakit merged", "peft unmerged"),
            "merged_vs_base": gap("lorakit merged", "base")}


def build_parser():
    parser = make_parser("inference.py", __doc__.split("\n\n")[0], default_repeats=11)
    parser.add_argument("--batch-sizes", type=int_list, default=[1, 16],
                        help="batch sizes, comma-separated")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    config_kwargs, batch_sizes, seq_len = {}, args.batch_sizes, args.seq_len
    if args.quick:
        config_kwargs, batch_sizes, seq_len = QUICK_CONFIG, [1, 2], 16
    torch.manual_seed(args.seed)
    base = DistilBertForSequenceClassification(DistilBertConfig(**config_kwargs))
    models = {name: m.to(args.device) for name, m in build_models(base, args.seed).items()}
    generator = torch.Generator().manual_seed(args.seed)
    groups, agreements = [], []
    for batch_size in batch_sizes:
        input_ids = torch.randint(0, base.config.vocab_size, (batch_size, seq_len),
                                  generator=generator)
        batch = {"input_ids": input_ids.to(args.device),
                 "attention_mask": torch.ones_like(input_ids).to(args.device)}
        labels = {"batch": batch_size, "seq_len": seq_len}
        agreements.append({**labels, **agreement(models, batch, args.device)})
        print(f"{NAME}: batch {batch_size} × {seq_len}", file=sys.stderr, flush=True)
        group = Group.timed({name: forward(models[name], batch, args.device, args.precision)
                             for name in CONTENDERS}, args, labels)
        for a, b, limit in PAIRS:
            group.compare(a, b, limit)
        groups.append(group)
    results = timing_results(groups)
    for record in results["records"]:
        record["samples_per_s"] = record["batch"] / record["median_s"]
    results |= {
        "model": {"config": f"DistilBertConfig(**{config_kwargs!r})",
                  "lora": {"r": RANK, "alpha": ALPHA, "targets": list(DEFAULT_TARGETS)}},
        "agreement": agreements,
        "targets": {
            "merged_at_most_1pct_slower_than_base": all_hold(
                g.comparison("lorakit merged", "base") for g in groups),
            "lorakit_unmerged_vs_peft_unmerged_at_most_1": all_hold(
                g.comparison("lorakit unmerged", "peft unmerged") for g in groups),
        },
    }
    write_results(NAME, results, to_markdown(groups, agreements), args)
    return results


def to_markdown(groups: list[Group], agreements: list[dict]) -> str:
    rows = []
    for g in groups:
        row = {"batch": g.labels["batch"], **{name: ms(g.median_s(name)) for name in CONTENDERS}}
        for a, b, _ in PAIRS:
            c = g.comparison(a, b)
            row[f"{a} / {b}"] = c.ratio.text()
            row[f"{a} / {b} verdict"] = c.verdict
        rows.append(row)
    table = markdown_table(rows, {
        "batch": "batch", **{name: f"{name} ms" for name in CONTENDERS},
        "lorakit merged / base": "merged / base [IQR]",
        "lorakit merged / base verdict": "≤ 1.01?",
        "lorakit merged / peft unmerged": "merged / PEFT unmerged [IQR]",
        "lorakit unmerged / peft unmerged": "lorakit / PEFT, both unmerged [IQR]",
        "lorakit unmerged / peft unmerged verdict": "≤ 1.00?",
        "base again / base": "base again / base [IQR]",
    })
    worst = max(max(a["merged_vs_unmerged"], a["lorakit_vs_peft_unmerged"],
                    a["merged_vs_peft_unmerged"]) for a in agreements)
    seq_len = groups[0].labels["seq_len"]
    return (
        f"### Inference per batch, sequence length {seq_len} (median of interleaved repeats)\n\n"
        f"{table}\n\nThe merged, unmerged and PEFT models give the same logits, computed in fp32: "
        f"the largest absolute difference between any two of them is {worst:.2g}. `base again` "
        "is an identical copy of the base model: its ratio to `base` is what two equal models "
        f"measure here, the noise floor for the others. {RATIO_NOTE}\n"
    )


if __name__ == "__main__":
    main()
