"""The two tasks, IMDB and Emotion: where each lives on the Hub, its labels and its columns.

Base tier: facts about the tasks that every other module may ask without loading ``datasets``
(the model needs the label names, the estimate the split sizes). Loading the data is
``lorakit.data``'s; reading local files ``lorakit.local_files``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FIXTURES_DIR = Path(__file__).parent / "fixtures"  # the samples bundled for offline and tiny


@dataclass(frozen=True)
class TaskSpec:
    """One classification task: where it lives on the Hub, its labels and its column names.

    ``label_names[i]`` is the name of label id ``i``. ``label_aliases`` maps other spellings found
    in copies of the dataset (e.g. the Kaggle IMDB CSV's ``positive``) to a label name.
    ``text_columns`` / ``label_columns`` are the column names accepted for text and label, tried
    in order. ``validation_from_train``: the source has no validation split, so
    ``validation_fraction`` of the training split (seeded) becomes one. ``hub_config`` names the
    dataset's configuration on the Hub (never left to the card's default), and
    ``hub_data_files``, when set, lists the only files to download, by split.
    """

    name: str
    hub_id: str
    hub_config: str
    label_names: tuple[str, ...]
    label_aliases: dict[str, str] = field(default_factory=dict, hash=False)
    text_columns: tuple[str, ...] = ("text",)
    label_columns: tuple[str, ...] = ("label",)
    validation_from_train: bool = False
    validation_fraction: float = 0.1
    description: str = ""
    hub_data_files: dict[str, str] | None = field(default=None, hash=False)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def label_lookup(self) -> dict[str, int]:
        """Lower-cased label names and aliases → label id."""
        lookup = {name.lower(): i for i, name in enumerate(self.label_names)}
        for alias, name in self.label_aliases.items():
            lookup[alias.lower()] = self.label2id[name]
        return lookup

    def describe_labels(self) -> str:
        """E.g. ``0=neg, 1=pos (also accepted: positive, negative)``."""
        text = ", ".join(f"{i}={name}" for i, name in enumerate(self.label_names))
        if self.label_aliases:
            text += f" (also accepted: {', '.join(self.label_aliases)})"
        return text


TASKS = {
    "imdb": TaskSpec(
        name="imdb",
        hub_id="stanfordnlp/imdb",
        hub_config="plain_text",
        label_names=("neg", "pos"),
        label_aliases={"positive": "pos", "negative": "neg"},
        text_columns=("text", "review"),  # "review"/"sentiment": the Kaggle "IMDB Dataset.csv"
        label_columns=("label", "sentiment"),
        validation_from_train=True,
        description="movie reviews, positive or negative (Maas et al., 2011)",
        # only the labelled splits: not the 50,000 reviews of its "unsupervised" split (label -1)
        hub_data_files={"train": "plain_text/train-*", "test": "plain_text/test-*"},
    ),
    "emotion": TaskSpec(
        name="emotion",
        hub_id="dair-ai/emotion",
        hub_config="split",  # its other configuration, "unsplit", is all the tweets in one split
        label_names=("sadness", "joy", "love", "anger", "fear", "surprise"),
        description="English tweets labelled with one of six emotions (Saravia et al., 2018)",
    ),
}


class HubUnavailableError(RuntimeError):
    """The Hugging Face Hub could not be reached (no network, or offline mode is set)."""


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The ``TaskSpec`` called ``name`` (case-insensitive); a TaskSpec is returned as it is."""
    if isinstance(name, TaskSpec):
        return name
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[key]


def label_names(task: str | TaskSpec) -> list[str]:
    """The task's label names in label-id order, e.g. ``['neg', 'pos']``."""
    return list(get_task(task).label_names)
