"""The ways to fine-tune, in one table: what each trains, who builds it, what a run records.

Base tier: every module that branches on a method reads this table (``profiles`` for its
learning rate, ``models`` to build it, ``train`` to record and save it, ``report`` to order it,
the CLI to offer it), and so do the notebooks.

    method    built by      trains, beside the task's new head           a run records   saves
    head      transformers  nothing else                                  -               head
    lora      lorakit       A and B beside each target layer             r, α, targets    adapter
    peft      PEFT          the same LoRA, through peft.LoraConfig       r, α, targets    adapter
    full      transformers  every weight                                 -               -
    dora      lorakit       LoRA plus a learned length per output row    r, α, targets    adapter
    pissa     lorakit       LoRA started from W's top singular triplets  r, α, targets    adapter
    loraplus  lorakit       LoRA, B learning 16 times faster than A      r, α, targets    adapter
    vera      PEFT          scales of frozen random A and B              r, targets       adapter
    ia3       PEFT          scales of the keys, values, FFN inputs       its own targets  adapter

The head (DistilBERT's ``pre_classifier`` and ``classifier``) is new for every task, so every
method trains it fully; full fine-tuning keeps no file, since the whole model is what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass

LORA_SETTINGS = ("r", "alpha", "targets", "dropout", "rslora")  # what LoRA's own methods record


@dataclass(frozen=True)
class Method:
    """One way to fine-tune. ``records`` names the LoRA settings a run of it uses (the rest are
    recorded as None); ``own_targets`` are the layers it always adapts, whatever the run says."""

    name: str
    built_by: str  # "lorakit" (from scratch), "peft" or "transformers" (no adapter)
    trains: str  # what trains beside the head, in words
    records: tuple[str, ...] = ()
    saves: str | None = None  # "adapter", "head" or None
    own_targets: tuple[str, ...] | None = None

    @property
    def lora_family(self) -> bool:
        """LoRA itself or a variant with a rank and α (lorakit's or PEFT's LoRA layers)."""
        return "alpha" in self.records

    @property
    def adapter(self) -> bool:
        """Whether a run saves an adapter in PEFT's format."""
        return self.saves == "adapter"


# IA³ scales the keys, the values and the feed-forward activations (Liu et al., 2022, "Few-Shot
# Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning"): in DistilBERT
# k_lin, v_lin and the input of lin2.
IA3_TARGETS, IA3_FEEDFORWARD = ("k_lin", "v_lin", "lin2"), ("lin2",)

METHODS = {method.name: method for method in (
    Method("head", "transformers", "nothing else", saves="head"),
    Method("lora", "lorakit", "A and B beside each target layer", LORA_SETTINGS, "adapter"),
    Method("peft", "peft", "the same LoRA, through peft.LoraConfig", LORA_SETTINGS, "adapter"),
    Method("full", "transformers", "every weight"),
    Method("dora", "lorakit", "LoRA plus a learned length per output row", LORA_SETTINGS,
           "adapter"),
    Method("pissa", "lorakit", "LoRA started from W's top singular triplets", LORA_SETTINGS,
           "adapter"),
    Method("loraplus", "lorakit", "LoRA whose B learns faster than A", LORA_SETTINGS, "adapter"),
    Method("vera", "peft", "scales of frozen random A and B shared by every layer",
           ("r", "targets", "dropout"), "adapter"),
    Method("ia3", "peft", "scales of the keys, values and feed-forward inputs", ("targets",),
           "adapter", own_targets=IA3_TARGETS),
)}
METHOD_NAMES = tuple(METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``; a ValueError listing the methods for any other name."""
    if name not in METHODS:
        raise ValueError(f"method {name!r} is not one of {', '.join(METHODS)}")
    return METHODS[name]


def names_where(**properties) -> tuple[str, ...]:
    """The names of the methods whose attributes equal ``properties``, in the table's order,
    e.g. ``names_where(built_by="peft")`` → ``('peft', 'vera', 'ia3')``."""
    return tuple(name for name, method in METHODS.items()
                 if all(getattr(method, key) == value for key, value in properties.items()))


def variant_runs(learning_rates: dict[str, float]) -> dict[str, dict]:
    """The LoRA variants that notebook 08 screens and appendix A4 seeds, each as the options of
    one run (``WorkPlan.train(task, **options)``), under the label the notebooks print.

    rsLoRA is LoRA with the scale α/√r, so it is the ``lora`` method at a rate of its own,
    ``learning_rates["rslora"]`` (a profile recipe's rates); the others are methods of their own.
    """
    return {"rsLoRA": {"method": "lora", "rslora": True, "lr": learning_rates["rslora"]},
            "DoRA": {"method": "dora"}, "LoRA+": {"method": "loraplus"},
            "PiSSA": {"method": "pissa"}, "VeRA r=256": {"method": "vera", "r": 256},
            "IA³": {"method": "ia3"}}
