"""Build the ``tiny`` profile's small "pretrained" DistilBERT and its tokenizer, offline.

The unit tests run whole training runs in seconds on this model. A randomly initialised
transformer would learn nothing at all, so this script does in miniature what a real model's
authors did: it trains a WordPiece tokenizer on the bundled *training* texts (never the
validation or test splits), then pretrains a 2-layer DistilBERT (dim 64) on them with masked
language modelling. It writes:

    lorakit/fixtures/tiny_model/tokenizer.json
    lorakit/fixtures/tiny_model/config.json + model.safetensors   (DistilBertForMaskedLM)

Run: ``.venv/bin/python scripts/make_tiny_model.py`` (about ten minutes on a 2-core CPU).
Its features stay weak (a linear probe on them: 0.58 on the IMDB-like samples): it shows that code
runs. The notebooks use the ``offline`` profile's real pretrained encoder instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece
from transformers import (
    DataCollatorForLanguageModeling,
    DistilBertConfig,
    DistilBertForMaskedLM,
    PreTrainedTokenizerFast,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "lorakit" / "fixtures"
OUT = FIXTURES / "tiny_model"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 2000
SEED = 1234
EPOCHS = 40
BATCH_SIZE = 32
MAX_LENGTH = 256


def training_texts() -> list[str]:
    """Every text of the bundled training splits, in a fixed order."""
    texts = []
    for path in sorted(FIXTURES.glob("*/train.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
    return texts


def train_tokenizer(texts: list[str]) -> Tokenizer:
    """A lowercasing BERT-style WordPiece tokenizer with [CLS] ... [SEP] around each text."""
    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def pretrain(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> DistilBertForMaskedLM:
    """Masked language modelling (15% of tokens) on ``texts`` with AdamW."""
    torch.manual_seed(SEED)
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=64, hidden_dim=256, n_layers=2, n_heads=4,
        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
    )
    model = DistilBertForMaskedLM(config).train()
    encoded = [tokenizer(t, truncation=True, max_length=MAX_LENGTH) for t in texts]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    steps = EPOCHS * -(-len(encoded) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        order = torch.randperm(len(encoded), generator=generator).tolist()
        losses = []
        for start in range(0, len(order), BATCH_SIZE):
            batch = collator([encoded[i] for i in order[start:start + BATCH_SIZE]])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        if epoch % 10 == 0 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:>2}/{EPOCHS}: masked-LM loss {sum(losses) / len(losses):.3f}")
    return model.eval()


def main() -> None:
    started = time.perf_counter()
    texts = training_texts()
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts)
    tokenizer.save(str(OUT / "tokenizer.json"))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"],
    )
    print(f"tokenizer: {len(wrapped)} tokens from {len(texts)} training texts")
    model = pretrain(wrapped, texts)
    model.save_pretrained(OUT)
    print(f"wrote {OUT} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
