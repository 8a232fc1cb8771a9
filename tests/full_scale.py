"""The notebooks in the ``full`` profile, at the Hub's sizes, without a GPU or the Hub.

Each notebook's own cells are executed in-process with the Hub's datasets replaced by
stand-ins of the real sizes (IMDB 25,000 + 25,000 reviews, Emotion 16,000 / 2,000 / 2,000 short
texts), the profile's model by a narrow DistilBERT with distilbert-base-uncased's vocabulary and
positions (its tokenizer is all-MiniLM-L6-v2's, the same 30,522 uncased word pieces), and every
heavy call by a recorder: ``lorakit.train.run`` (it writes a run directory of made-up
predictions, with a real adapter, so that later cells read it as a run), ``predict_logits``,
``encoder_features`` and the Trainer of the PEFT recipe. The recorders count what each call
would compute (runs, steps, examples, tokens), where it would compute it and how many models the
notebook holds at that moment; the notebooks' own loops run for real on the narrow model, their
optimizer steps counted. The work plans a notebook prints are kept for comparison.

The IMDB stand-in's review lengths are our approximation of IMDB's: log-normal, median 230
tokens, σ = 0.75 (a mean near 300 tokens, about one review in eight over 512). Its texts are
words that are one token each, so that a text's tokens are counted as its words plus [CLS] and
[SEP], without running the tokenizer over 50,000 reviews in every test.

Numbers are made up, and the notebooks' asserts, which check numbers, are compiled out
(``optimize=1``), ``np.testing`` and ``torch.testing`` made no-ops: this checks the work, the
offline execution under nbmake checks the numbers.
"""

from __future__ import annotations

import gc
import math
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets
import matplotlib
import nbformat
import numpy as np
import pandas as pd
import torch
from IPython.core.inputtransformer2 import TransformerManager

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, DistilBertConfig  # noqa: E402
from transformers.trainer_utils import TrainOutput  # noqa: E402

import lorakit.analysis  # noqa: E402
import lorakit.inference  # noqa: E402
import lorakit.models  # noqa: E402
import lorakit.plan  # noqa: E402
import lorakit.probe  # noqa: E402
import lorakit.train  # noqa: E402
from lorakit import minilm, profiles, tasks  # noqa: E402
from lorakit.estimate import sorted_padded_tokens  # noqa: E402
from lorakit.metrics import classification_metrics, prediction_table  # noqa: E402
from lorakit.plan import WorkPlan, _counted  # noqa: E402
from lorakit.precision import compute_device, current_precision  # noqa: E402
from lorakit.run_files import CONFIG, METRICS  # noqa: E402
from lorakit.train import RunResult, read_run, run_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SIZES = {"imdb": {"train": 25_000, "test": 25_000},
         "emotion": {"train": 16_000, "validation": 2_000, "test": 2_000}}
WORDS = ("the a film movie good bad plot acting great story and it was not very i feel happy sad "
         "love hate really just one time see watch make best worst actor scene end like well "
         "even much more most could would old new day life world man woman").split()
ONE_BATCH = 64  # texts lorakit.inference reads at once
DIVERGES_ABOVE = 2.5  # a run at more than this times the profile's rate diverges, when asked


def standin_texts(task: str, count: int, seed: int) -> list[str]:
    """``count`` texts of one-token words: IMDB-like review lengths, or Emotion's short ones."""
    rng = np.random.default_rng(seed)
    if task == "imdb":
        lengths = np.clip(rng.lognormal(math.log(230), 0.75, count), 10, 2500).astype(int)
    else:
        lengths = rng.integers(4, 60, count)
    words = np.asarray(WORDS)
    return [" ".join(rng.choice(words, n)) for n in lengths]


def write_standins(root: Path) -> dict[str, Path]:
    """Local copies of the two Hub datasets at their real sizes, laid out as on the Hub."""
    folders = {}
    for number, (task, sizes) in enumerate(SIZES.items()):
        spec = tasks.get_task(task)
        folder = root / task
        features = datasets.Features({"text": datasets.Value("string"),
                                      "label": datasets.ClassLabel(names=list(spec.label_names))})
        card = ["---", "configs:", f"- config_name: {spec.hub_config}", "  data_files:"]
        for index, (split, count) in enumerate(sizes.items()):
            path = folder / spec.hub_config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            labels = [i % len(spec.label_names) for i in range(count)]
            datasets.Dataset.from_dict({"text": standin_texts(task, count, 10 * number + index),
                                        "label": labels}, features=features).to_parquet(path)
            card += [f"  - split: {split}", f"    path: {spec.hub_config}/{split}-*"]
        (folder / "README.md").write_text("\n".join(card + ["---", ""]))
        folders[task] = folder
    return folders


def standin_model(root: Path) -> Path:
    """A narrow DistilBERT (dim 32, 2 blocks) with distilbert-base's vocabulary and 512
    positions, and a tokenizer with its word pieces, saved where ``from_pretrained`` reads it."""
    folder = root / "distilbert-standin"
    config = DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=2, num_labels=2)
    torch.manual_seed(0)
    transformers.DistilBertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm.converted_dir()).save_pretrained(folder)
    return folder


@dataclass
class Call:
    """One heavy call: what it would compute, where, and with how many models held."""

    kind: str  # "run", "predict", "encode", "trainer"
    task: str
    examples: int
    tokens: int
    steps: int
    device: str
    models_held: int
    settings: object = None
    trained: bool = True


@dataclass
class Recorder:
    """The stand-ins for the heavy calls of one notebook's execution, and what they recorded."""

    calls: list[Call] = field(default_factory=list)
    plans: list[WorkPlan] = field(default_factory=list)
    loop_steps: int = 0
    models: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    real: dict = field(default_factory=dict)

    def held(self) -> int:
        gc.collect()
        return len(self.models)

    def load_base(self, task, profile=None, model=None):
        base, tokenizer = self.real["load_base"](task, profile, model)
        self.models.add(base)
        return base, tokenizer

    def predict_logits(self, model, tokenizer, texts, max_length=512, batch_size=64,
                       precision=None):
        self._record_reading("predict", texts, max_length, batch_size)
        return np.random.default_rng(0).normal(size=(len(texts), model.config.num_labels))

    def encoder_features(self, model, tokenizer, texts, max_length, poolings=("cls", "mean"),
                         batch_size=64):
        self._record_reading("encode", texts, max_length, batch_size)
        rng = np.random.default_rng(0)
        return {p: rng.normal(size=(len(texts), model.config.dim)).astype(np.float32)
                for p in poolings}

    def _record_reading(self, kind, texts, max_length, batch_size):
        profile = profiles.resolve_profile()
        lengths = lorakit.plan._lengths(tuple(texts), profile.name, profile.model, max_length)
        self.calls.append(Call(kind, "?", len(texts), sorted_padded_tokens(lengths, batch_size),
                               0, compute_device().type, self.held()))

    def trainer_train(self, trainer):
        arguments = trainer.args
        steps = math.ceil(len(trainer.train_dataset) / arguments.per_device_train_batch_size)
        steps = math.ceil(steps * arguments.num_train_epochs)
        self.loop_steps += steps
        self.calls.append(Call("trainer", "?", 0, 0, steps, compute_device().type, self.held()))
        return TrainOutput(steps, 0.5, {"train_runtime": 1.0})

    def run(self, settings, method=None, *, output_dir=None, reuse=False, resume=False,
            overwrite=False, progress=True, keep_model=True, diverged="raise", **changes):
        settings = run_settings(settings, method, **changes)
        out = Path(profiles.runs_dir() if output_dir is None else output_dir)
        run_dir = out / settings.task / settings.run_name
        if reuse and lorakit.train._differences(settings, run_dir) == []:
            self.calls.append(Call("run", settings.task, 0, 0, 0, compute_device().type,
                                   self.held(), settings, trained=False))
            return read_run(run_dir)
        counted = _counted(settings, output_dir)
        self.calls.append(Call("run", settings.task, counted.evaluated, counted.train_tokens
                               + counted.eval_tokens, counted.steps, compute_device().type,
                               self.held(), settings))
        profile_rate = profiles.resolve_profile(settings.profile).recipe(
            settings.task).learning_rates.get(settings.method, settings.lr)
        if diverged == "record" and settings.lr > DIVERGES_ABOVE * profile_rate:
            return self._diverged(settings, run_dir)
        return self._fabricated(settings, run_dir, keep_model)

    def _fabricated(self, settings, run_dir: Path, keep_model: bool) -> RunResult:
        """A finished run directory of made-up predictions (85% right) and a real adapter."""
        data = lorakit.plan._data(settings.task, settings.profile, None, None, None,
                                  settings.seed, settings.max_train, settings.max_eval)
        names = data["train"].features["label"].names
        rng = np.random.default_rng(abs(hash(settings.run_name)) % 2**32)
        tables = {}
        for split in ("validation", "test"):
            labels = np.asarray(data[split]["label"])
            right = rng.random(len(labels)) < 0.85
            predicted = np.where(right, labels, (labels + 1) % len(names))
            logits = np.eye(len(names))[predicted] * 2.0
            tables[split] = prediction_table(data[split]["text"], labels, logits, names)
        test, validation = (classification_metrics(tables[s]["label_id"],
                                                   tables[s]["prediction_id"], names)
                            for s in ("test", "validation"))
        model, tokenizer = self.real["load_base"](settings.task, settings.profile, settings.model)
        model = lorakit.models.prepare_model(model, settings.method, settings.r, settings.alpha,
                                             settings.targets, settings.dropout, settings.rslora)
        if settings.method == "full":
            with torch.no_grad():
                for param in model.parameters():
                    param.add_(0.01 * torch.randn_like(param))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        metrics = test | {"validation_accuracy": validation["accuracy"],
                          "validation_macro_f1": validation["macro_f1"],
                          "trainable_parameters": trainable, "total_parameters": total,
                          "trainable_percent": 100 * trainable / total, "train_seconds": 1.0,
                          "train_samples_per_second": 1.0, "peak_memory_mb": 1.0,
                          "peak_memory_kind": "cuda", "eval_examples": len(tables["test"]),
                          "validation_examples": len(tables["validation"]), "run_seconds": 1.0}
        config = settings.record() | {
            "examples": {split: len(data[split]) for split in data}, "label_names": names,
            "precision": current_precision(), "versions": {}}
        run_dir.mkdir(parents=True, exist_ok=True)
        log = [{"epoch": e / 4, "step": e, "loss": 1 / (1 + e)} for e in range(1, 9)]
        log += [{"epoch": 1.0, "step": 4, "eval_loss": 0.4, "eval_accuracy": 0.8,
                 "eval_macro_f1": 0.8}]
        lorakit.train._write_run(run_dir, model, config, metrics, tables, log)
        if keep_model:
            self.models.add(getattr(model, "base_model", model))
        return RunResult(run_dir, config, metrics, tables["test"],
                         model if keep_model else None, tokenizer if keep_model else None)

    def _diverged(self, settings, run_dir: Path) -> RunResult:
        config = settings.record() | {"precision": current_precision(), "examples": {}}
        metrics = {"diverged": True, "diverged_at_step": 3, "accuracy": None, "macro_f1": None,
                   "validation_accuracy": None, "validation_macro_f1": None}
        run_dir.mkdir(parents=True, exist_ok=True)
        lorakit.train.write_json(run_dir / CONFIG, config)
        lorakit.train.write_json(run_dir / METRICS, metrics)
        return RunResult(run_dir, config, metrics, pd.DataFrame(), None, None, diverged=True)


def install(monkeypatch, tmp_path: Path, recorder: Recorder, folders: dict[str, Path],
            model: Path, runs: Path) -> None:
    """Point the full profile at the stand-ins and every heavy call at ``recorder``."""
    monkeypatch.setenv("LORAKIT_PROFILE", "full")
    monkeypatch.setenv("LORAKIT_RUNS_DIR", str(runs))
    for task, folder in folders.items():
        monkeypatch.setitem(tasks.TASKS, task, replace(tasks.TASKS[task], hub_id=str(folder)))
    monkeypatch.setitem(profiles.PROFILES, "full", replace(profiles.PROFILES["full"],
                                                           model=str(model)))
    recorder.real["load_base"] = lorakit.models.load_base
    monkeypatch.setattr(lorakit.models, "load_base", recorder.load_base)
    monkeypatch.setattr(lorakit.train, "run", recorder.run)
    monkeypatch.setattr(lorakit.inference, "predict_logits", recorder.predict_logits)
    monkeypatch.setattr(lorakit.probe, "encoder_features", recorder.encoder_features)
    monkeypatch.setattr(transformers.Trainer, "train",
                        lambda trainer, *a, **k: recorder.trainer_train(trainer))
    monkeypatch.setattr(transformers.Trainer, "evaluate",
                        lambda self, *a, **k: {"eval_accuracy": 0.85, "eval_loss": 0.4})
    real_print = WorkPlan.print
    monkeypatch.setattr(WorkPlan, "print", lambda plan, file=None: recorder.plans.append(plan)
                        or real_print(plan, file))
    monkeypatch.setattr(WorkPlan, "seconds_here", WorkPlan.seconds_on_t4)  # as a T4 would time it
    # The stand-in texts are one-token words: counting them is tokenizing them, in a moment
    monkeypatch.setattr(lorakit.plan, "_lengths", lambda texts, profile, model, max_length: tuple(
        min(len(text.split()) + 2, max_length) for text in texts))
    monkeypatch.setattr(lorakit.analysis, "_token_counts", lambda texts, tokenizer: np.array(
        [len(text.split()) + 2 for text in texts]))
    real_step = torch.optim.AdamW.step

    def counted_step(optimizer, *args, **kwargs):
        recorder.loop_steps += 1
        return real_step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted_step)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    monkeypatch.setattr(torch.testing, "assert_close", lambda *a, **k: None)
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))


def execute(path: Path) -> dict:
    """Every code cell of the notebook at ``path``, in one namespace, asserts compiled out."""
    namespace = {"get_ipython": lambda: None, "display": lambda *a, **k: None,
                 "__name__": "__main__"}
    transform = TransformerManager().transform_cell
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            code = compile(transform(cell.source), f"{path.name}:cell {index}", "exec",
                           optimize=1)
            exec(code, namespace)  # noqa: S102 - the notebook's own cells
            plt.close("all")
    return namespace


def notebooks() -> list[Path]:
    return sorted([*NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"), *NOTEBOOKS.glob("appendix/*.ipynb")])


def fresh_settings_key(settings) -> tuple:
    return settings.task, settings.run_name


def planned(recorder: Recorder) -> dict:
    """What the notebook's printed plans counted, summed over them."""
    trainings = [t for plan in recorder.plans for t in plan.to_train]
    return {"runs": sorted(fresh_settings_key(t.settings) for t in trainings),
            "loop_steps": sum(loop.steps for plan in recorder.plans for loop in plan.loops),
            "predicted": sum(p.examples for plan in recorder.plans for p in plan.predictions),
            "predicted_tokens": sum(p.tokens for plan in recorder.plans
                                    for p in plan.predictions),
            "t4_seconds": sum(plan.seconds_on_t4() for plan in recorder.plans)}


def recorded(recorder: Recorder) -> dict:
    """What the heavy calls recorded, in the same terms. Reading fewer texts than one batch
    (a reader's own sentences) is not heavy work, and no plan counts it."""
    trained = [c for c in recorder.calls if c.kind == "run" and c.trained]
    readings = [c for c in recorder.calls if c.kind in ("predict", "encode")
                and c.examples > ONE_BATCH]
    return {"runs": sorted(fresh_settings_key(c.settings) for c in trained),
            "loop_steps": recorder.loop_steps,
            "predicted": sum(c.examples for c in readings),
            "predicted_tokens": sum(c.tokens for c in readings)}

