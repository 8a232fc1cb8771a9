"""Local copies of the Hub datasets' repositories, shaped like them, for the Hub code path.

``datasets.load_dataset(directory, config)`` resolves a local directory through the same
dataset-card configurations (``configs:`` in README.md) and parquet files as a Hub repository,
so pointing a task's ``hub_id`` at one of these runs lorakit's real loading code without network.

The shapes follow the Hub repositories (dataset cards of stanfordnlp/imdb and dair-ai/emotion):

- stanfordnlp/imdb: configuration ``plain_text``; ``plain_text/{train,test,unsupervised}-*``;
  ``text`` and a ``label`` ClassLabel (neg, pos), with label -1 in ``unsupervised``.
- dair-ai/emotion: configurations ``split`` (train/validation/test under ``split/``) and
  ``unsplit`` (one train split under ``unsplit/``); ``text`` and a ``label`` ClassLabel (sadness,
  joy, love, anger, fear, surprise).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from lorakit.tasks import get_task

UNREADABLE = b"not a parquet file: a split lorakit must never download or read"


def write_hub_repo(root: Path, task: str, sizes: dict[str, int], names=None,
                   default_config: bool = False, unreadable: tuple[str, ...] = ()) -> Path:
    """Write ``root``, shaped like the task's Hub repository; row i of a split has text
    ``"<split> <i>"`` and label ``i % len(names)`` (IMDB's ``unsupervised``: -1).

    ``sizes`` maps each split of the main configuration to its number of rows; ``names`` (default:
    the task's label names, in order) are the ClassLabel names; ``default_config`` marks the main
    configuration as the card's default (the real cards may or may not); a split named in
    ``unreadable`` gets a file that fails as soon as anything reads it.
    """
    spec = get_task(task)
    names = list(names or spec.label_names)
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names)})
    configs = {spec.hub_config: sizes}
    if task == "emotion":
        configs["unsplit"] = {"train": sum(sizes.values())}
    card = ["---", "configs:"]
    for config, splits in configs.items():
        card += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            card += [f"  - split: {split}", f"    path: {config}/{split}-*"]
            path = root / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            if split in unreadable:
                path.write_bytes(UNREADABLE)
                continue
            labels = [-1 if split == "unsupervised" else i % len(names) for i in range(rows)]
            datasets.Dataset.from_dict({"text": [f"{split} {i}" for i in range(rows)],
                                        "label": labels}, features=features).to_parquet(path)
        if default_config and config == spec.hub_config:
            card.append("  default: true")
    (root / "README.md").write_text("\n".join(card + ["---", ""]))
    return root
