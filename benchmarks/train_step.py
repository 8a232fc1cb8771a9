"""Item 2: one training step of a DistilBERT-sized classifier by each fine-tuning method.

A ``DistilBertForSequenceClassification`` with random weights from ``DistilBertConfig()``
(distilbert-base's sizes: 6 layers, dim 768, 66M parameters; nothing is downloaded) is prepared
by ``lorakit.models.prepare_model`` four ways, each on its own copy of the same weights:

- ``head``: only ``pre_classifier`` + ``classifier`` train
- ``lora``: lorakit's LoRA (r = 8, alpha = 16, on q_lin, v_lin, lin1, lin2) + the head
- ``peft``: the same LoRA through PEFT + the head (``modules_to_save``)
- ``full``: every weight trains

A step is forward, backward, AdamW step and zero_grad on a batch of 16 random sequences, at
sequence lengths 128 and 512, in train mode (dropout on), in the precision ``lorakit.train.run``
trains in on the device (fp16 with a gradient scaler, as ``Trainer(fp16=True)``). The four steps
run interleaved after warm-up. The first step of each method is the peak-memory measurement and
also counts as the first warm-up call; it creates AdamW's state, so the peak memory includes it.

On CPU a full step at 16 × 512 takes tens of seconds, so the defaults are 5 repeats and 1
warm-up step; ``--seq-lens 128`` runs the shorter half alone.

    .venv/bin/python benchmarks/train_step.py   # writes benchmarks/results/train_step.{json,md}
"""

from __future__ import annotations

import copy
import gc
import statistics
import sys
import time
from collections.abc import Sequence

import torch
from common import (
    RATIO_NOTE,
    Comparison,
    Group,
    all_hold,
    int_list,
    make_parser,
    parse_args,
    timing_results,
    write_results,
)
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from lorakit import bench
from lorakit.lora import count_parameters
from lorakit.models import DEFAULT_TARGETS, prepare_model
from lorakit.precision import autocast
from lorakit.report import markdown_table

NAME = "train_step"
METHODS = ("head", "lora", "peft", "full")
PHASES = ("forward", "backward", "optimizer")
RANK, ALPHA = 8, 16
LORA_VS_FULL_LIMIT = 0.80  # a LoRA step at most 0.8 × the full fine-tuning step
OPTIMIZER_STATE_LIMIT = 0.01  # LoRA's optimizer state at most 1% of full fine-tuning's
QUICK_CONFIG = dict(vocab_size=100, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                    max_position_embeddings=64)
PROFILED_BATCH = (2, 32)  # sequences × tokens of the step whose work is profiled


class PhasedStep:
    """One optimisation step as a callable, which also keeps how long each phase of it took.

    The phases: ``forward`` (to the loss), ``backward``, ``optimizer`` (AdamW's step and
    zero_grad). The forward pass runs under ``precision``'s autocast; in fp16 with a gradient
    scaler too, as ``Trainer(fp16=True)`` does. On CUDA it synchronises after each phase.
    ``seconds`` holds one ``(forward, backward, optimizer)`` triple per call.
    """

    def __init__(self, model, batch, optimizer, device: str, precision: str):
        self.model, self.batch, self.optimizer = model, batch, optimizer
        self.device, self.precision = device, precision
        self.scaler = torch.amp.GradScaler(device) if precision == "fp16" else None
        self.seconds: list[tuple[float, float, float]] = []

    def __call__(self) -> torch.Tensor:
        started = time.perf_counter()
        with autocast(self.device, self.precision):
            loss = self.model(**self.batch).loss
        forward_done = self._clock()
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        backward_done = self._clock()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        done = self._clock()
        self.seconds.append((forward_done - started, backward_done - forward_done,
                             done - backward_done))
        return loss.detach()

    def _clock(self) -> float:
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def phase_medians(self, last: int) -> dict[str, float]:
        """Median seconds per phase over the ``last`` calls (the timed ones)."""
        timed = self.seconds[-last:]
        return {f"{phase}_s": statistics.median(t[i] for t in timed)
                for i, phase in enumerate(PHASES)}


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers (its weights in memory)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_state_split(model: torch.nn.Module, optimizer) -> dict:
    """AdamW's state bytes in all, for LoRA's A and B, and for ``pre_classifier``.

    Without ``pre_classifier`` the head is PEFT's default one for sequence classification
    (``modules_to_save`` holds only the classifier): what LoRA's state would be with it.
    """
    names = {id(p): n for n, p in model.named_parameters()}

    def state_bytes(part: str) -> int:
        return sum(
            v.numel() * v.element_size()
            for p, state in optimizer.state.items() if part in names[id(p)]
            for v in state.values() if torch.is_tensor(v) and v.dim() > 0
        )

    return {"optimizer_state_bytes": bench.optimizer_state_bytes(optimizer),
            "optimizer_state_lora_bytes": state_bytes("lora_"),
            "optimizer_state_pre_classifier_bytes": state_bytes("pre_classifier")}


def random_batch(config, batch_size: int, seq_len: int, device: str, generator) -> dict:
    input_ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
    labels = torch.randint(0, config.num_labels, (batch_size,), generator=generator)
    return {"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids)
            .to(device), "labels": labels.to(device)}


def run_seq_len(base, seq_len: int, args, generator) -> tuple[Group, list[dict], dict]:
    """Every method's first step (its peak memory), then their steps timed interleaved.

    Returns the timed group, one JSON record per method (its timings, parameters, memory,
    optimizer state and phases) and the comparison of LoRA's optimizer state with full's.
    """
    device, batch_size = args.device, args.batch
    batch = random_batch(base.config, batch_size, seq_len, device, generator)
    steps, facts, models, optimizers = {}, {}, {}, {}
    for method in METHODS:
        model = prepare_model(copy.deepcopy(base), method, r=RANK, alpha=ALPHA,
                              targets=DEFAULT_TARGETS, dropout=args.lora_dropout)
        model = model.to(device).train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        steps[method] = PhasedStep(model, batch, optimizer, device, args.precision)
        models[method], optimizers[method] = model, optimizer
        print(f"{NAME}: seq {seq_len}, {method}: first step (peak memory)", file=sys.stderr,
              flush=True)
        peak_mb, kind = bench.peak_memory(steps[method], device)
        counts = count_parameters(model)
        weights_mb = tensor_bytes(model) / bench.MB
        facts[method] = {
            "trainable_params": counts.trainable, "total_params": counts.total,
            "weights_mb": weights_mb, "step_peak_mb": peak_mb, "memory_kind": kind,
            "peak_total_mb": weights_mb + peak_mb,
            **optimizer_state_split(model, optimizer),
        }
    print(f"{NAME}: seq {seq_len}: timing {', '.join(METHODS)} interleaved", file=sys.stderr,
          flush=True)
    labels = {"seq_len": seq_len, "batch": batch_size, "device": device}
    # the first step was the first warm-up call
    group = Group(labels, bench.interleaved_samples(steps, repeats=args.repeats,
                                                    warmup=max(args.warmup - 1, 0)))
    full_state = facts["full"]["optimizer_state_bytes"]
    records = group.records()
    for record in records:
        record.update(facts[record["contender"]])
        record.update(steps[record["contender"]].phase_medians(args.repeats))
        record["samples_per_s"] = batch_size / record["median_s"]
        record["optimizer_state_vs_full"] = record["optimizer_state_bytes"] / full_state
    group.compare("lora", "peft", limit=1.0,
                  work=work_against_peft(models, optimizers, base.config, args, generator))
    group.compare("lora", "full", limit=LORA_VS_FULL_LIMIT)
    group.compare("peft", "full")
    group.compare("head", "full")
    lora = facts["lora"]
    state_ratio = lora["optimizer_state_bytes"] / full_state
    state = {
        **labels, "a": "lora", "b": "full", "measure": "optimizer state bytes",
        "ratio": state_ratio, "target": f"<= {OPTIMIZER_STATE_LIMIT:.2f}",
        "verdict": "yes" if state_ratio <= OPTIMIZER_STATE_LIMIT else "no",
        "lora_only_ratio": lora["optimizer_state_lora_bytes"] / full_state,
        "without_pre_classifier_ratio": (lora["optimizer_state_bytes"]
                                         - lora["optimizer_state_pre_classifier_bytes"])
                                        / full_state,
    }
    del models, steps, optimizers
    gc.collect()
    return group, records, state


def work_against_peft(models: dict, optimizers: dict, config, args, generator):
    """What lorakit's LoRA step computes against PEFT's: torch ops and FLOPs, profiled.

    Profiled on a small batch (``PROFILED_BATCH``; the operations do not depend on the batch's
    size), after the timing, so that it changes nothing that was timed.
    """
    small = random_batch(config, *PROFILED_BATCH, args.device, generator)
    return bench.compare_work(*(PhasedStep(models[m], small, optimizers[m], args.device,
                                           args.precision) for m in ("lora", "peft")))


def build_parser():
    parser = make_parser("train_step.py", __doc__.split("\n\n")[0], default_repeats=5,
                         default_warmup=1)
    parser.add_argument("--batch", type=int, default=16, help="sequences per batch")
    parser.add_argument("--seq-lens", type=int_list, default=[128, 512],
                        help="sequence lengths, comma-separated")
    parser.add_argument("--lora-dropout", type=float, default=0.0,
                        help="LoRA dropout (lorakit's and PEFT's), as prepare_model's default")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(build_parser(), argv)
    if args.warmup < 1:
        args.warmup = 1  # the first step measures peak memory and always runs untimed
    config_kwargs, seq_lens = {}, args.seq_lens
    if args.quick:
        config_kwargs, seq_lens, args.batch = QUICK_CONFIG, [16], 2
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    base = DistilBertForSequenceClassification(DistilBertConfig(**config_kwargs))
    groups, records, states = [], [], []
    for seq_len in seq_lens:
        group, new_records, state = run_seq_len(base, seq_len, args, generator)
        groups.append(group)
        records += new_records
        states.append(state)
    model_info = {"config": f"DistilBertConfig(**{config_kwargs!r})",
                  "total_params_base": count_parameters(base).total,
                  "lora": {"r": RANK, "alpha": ALPHA, "targets": list(DEFAULT_TARGETS),
                           "dropout": args.lora_dropout}}
    comparisons = [c for g in groups for c in g.comparisons]
    results = {
        "model": model_info, "records": records,
        "comparisons": timing_results(groups)["comparisons"] + states,
        "targets": {
            "lora_vs_peft_at_most_1": all_hold(c for c in comparisons if c.ratio.b == "peft"),
            "lora_vs_full_at_most_0.8": all_hold(
                c for c in comparisons if c.ratio.a == "lora" and c.ratio.b == "full"),
            "lora_optimizer_state_at_most_1pct_of_full": (
                "yes" if all(s["verdict"] == "yes" for s in states) else "no"),
        },
    }
    write_results(NAME, results, to_markdown(records, groups, states, args), args)
    return results


def to_markdown(records: list[dict], groups: list[Group], states: list[dict], args) -> str:
    rows = []
    for r in records:
        rows.append({
            "seq_len": r["seq_len"], "method": r["contender"], "median": r["median_s"],
            "iqr": f"{r['q1_s']:.3g}–{r['q3_s']:.3g}", "samples_per_s": r["samples_per_s"],
            "trainable": r["trainable_params"], "state": r["optimizer_state_bytes"] / bench.MB,
            "state_pct": 100 * r["optimizer_state_vs_full"], "peak": r["step_peak_mb"],
            "total": r["peak_total_mb"],
        })
    kind = records[0]["memory_kind"]
    table = markdown_table(rows, {
        "seq_len": "seq", "method": "method", "median": "step s (median)", "iqr": "IQR s",
        "samples_per_s": "samples/s", "trainable": "trainable params",
        "state": "AdamW state MB", "state_pct": "state % of full",
        "peak": f"step peak MB ({kind})", "total": "weights + peak MB",
    })
    pair_rows = []
    for group, state in zip(groups, states, strict=True):
        pair_rows += [_pair_row(c) for c in group.comparisons]
        pair_rows.append({
            "seq_len": state["seq_len"], "pair": "lora / full optimizer state",
            "ratio": f"{100 * state['ratio']:.2f}% (A and B alone: "
                     f"{100 * state['lora_only_ratio']:.2f}%; with PEFT's default head, "
                     f"the classifier alone: {100 * state['without_pre_classifier_ratio']:.2f}%)",
            "target": "≤ 1%", "verdict": state["verdict"],
        })
    pairs = markdown_table(pair_rows, {
        "seq_len": "seq", "pair": "pair", "ratio": "ratio [per-round IQR]", "target": "target",
        "verdict": "holds?", "work": "lorakit's work against PEFT's"})
    return (
        f"### Training step, batch {args.batch} (median of {args.repeats} interleaved repeats)\n\n"
        f"{table}\n\n### Ratios\n\n{pairs}\n\n"
        "Step peak MB: the most memory that tensors created during a method's first training "
        "step held at once (activations, gradients and the AdamW state that step creates), above "
        "the model's weights; `cpu-tensors` counts tensor storages exactly, `cuda-allocated` is "
        "`torch.cuda.max_memory_allocated`. AdamW state: `exp_avg` + `exp_avg_sq`. The LoRA "
        "methods also train DistilBERT's head (`pre_classifier` 768×768 + `classifier`) fully, "
        "as the notebooks do. \"lorakit's work against PEFT's\": torch.profiler's FLOPs for "
        f"one LoRA step of each (on a {PROFILED_BATCH[0]} × {PROFILED_BATCH[1]} batch) and the "
        "computing torch operations (views and same-dtype `.to()` aside) whose counts differ, "
        "lorakit's count minus PEFT's: the same matrix products, with lorakit adding B's "
        "product into the base output by `addmm` "
        f"(see layer.py). {RATIO_NOTE}\n\n"
        f"### Where a step's time goes\n\n{phase_table(records)}\n\n{PHASE_NOTE}\n"
    )


def _pair_row(c: Comparison) -> dict:
    """A row of the ratios table for a step-time comparison."""
    sequences, tokens = PROFILED_BATCH
    return {"seq_len": c.labels["seq_len"], "pair": f"{c.ratio.a} / {c.ratio.b} step time",
            "ratio": c.ratio.text(),
            "target": "" if c.limit is None else f"≤ {c.limit:.2f}", "verdict": c.verdict,
            "work": f"{c.work.text()} per {sequences} × {tokens} step" if c.work else ""}


PHASE_NOTE = (
    "Medians of the same timed steps, by phase. LoRA's forward pass does what full "
    "fine-tuning's does, plus the small A and B products. Its backward pass still carries the "
    "gradient through every layer, attention included, down to the first layer's LoRA "
    "matrices; what it skips is the weight gradient of each frozen matrix (one of the three "
    "matrix products per linear layer) and the embeddings' gradient. Its optimizer step updates "
    "only the trainable parameters counted above. What LoRA cannot shorten is the forward "
    "pass and, in the backward pass, the attention scores, softmax and dropout; the attention "
    "work grows with the square of the sequence length, so LoRA's saving shrinks as sequences "
    "get longer."
)


def phase_table(records: list[dict]) -> str:
    """Seconds per phase by method, and each phase as a fraction of full fine-tuning's."""
    full = {r["seq_len"]: r for r in records if r["contender"] == "full"}
    rows = [{
        "seq_len": r["seq_len"], "method": r["contender"],
        **{p: r[f"{p}_s"] for p in PHASES},
        **{f"{p}_vs_full": r[f"{p}_s"] / full[r["seq_len"]][f"{p}_s"] for p in PHASES},
    } for r in records]
    return markdown_table(rows, {
        "seq_len": "seq", "method": "method",
        **{p: f"{p} s" for p in PHASES},
        **{f"{p}_vs_full": f"{p} / full's" for p in PHASES},
    })


if __name__ == "__main__":
    main()
