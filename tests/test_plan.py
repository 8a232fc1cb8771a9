"""A notebook's work plan (lorakit.plan): what it counts, what it leaves out, what it prints."""

import math

import pytest

from lorakit.data import load_task
from lorakit.methods import variant_runs
from lorakit.models import load_tokenizer
from lorakit.plan import WorkPlan
from lorakit.profiles import PROFILES
from lorakit.train import run

FAST = {"epochs": 1, "max_train": 32, "max_eval": 16, "max_length": 32}


def test_a_run_counts_its_steps_and_every_evaluation():
    plan = WorkPlan("tiny")
    settings = plan.train("emotion", "lora", r=4, alpha=8)
    recipe = PROFILES["tiny"].recipe("emotion")  # 480 training examples, batch 16, 6 epochs
    training = plan.trainings[0]
    assert settings.profile == "tiny" and settings.r == 4
    assert training.steps == math.ceil(480 / recipe.batch_size) * recipe.epochs
    assert training.evaluated == 120 * (recipe.epochs + 1) + 120  # validation per epoch, + end
    assert 0 < training.batch_tokens <= recipe.max_length
    totals = plan.totals()
    assert totals["runs"] == totals["to_train"] == 1 and totals["steps"] == training.steps
    assert totals["train_tokens"] == training.steps * recipe.batch_size * training.batch_tokens


def test_tokens_are_counted_with_the_profiles_tokenizer():
    plan = WorkPlan("tiny")
    texts = load_task("emotion", "tiny")["test"]["text"][:10]
    plan.predict("emotion", texts, max_length=16, what="ten sentences")
    tokenizer = load_tokenizer("tiny")
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=16)["input_ids"]]
    assert plan.predictions[0].examples == 10
    assert plan.predictions[0].tokens == max(lengths) * 10  # one batch, padded to its longest
    assert plan.totals()["predicted"] == 10


def test_a_run_already_on_disk_is_listed_but_not_counted(tmp_path):
    done = run("emotion", "head", profile="tiny", output_dir=tmp_path, progress=False, **FAST)
    plan = WorkPlan("tiny")
    plan.train("emotion", "head", output_dir=tmp_path, **FAST)
    plan.train("emotion", "head", output_dir=tmp_path, seed=1, **FAST)
    assert [t.on_disk for t in plan.trainings] == [True, False]
    assert plan.totals()["to_train"] == 1 and plan.totals()["runs"] == 2
    assert done.run_dir.name == plan.trainings[0].settings.run_name


def test_the_plan_prints_what_trains_and_how_long_it_takes_here(capsys):
    plan = WorkPlan("tiny")
    plan.train("emotion", "head", **FAST)
    plan.train("emotion", "head", seed=1, **FAST)
    text = plan.print()
    assert text == capsys.readouterr().out.strip()
    assert "2 run(s) to train (emotion head ×2)" in text
    assert len(text.splitlines()) == 1
    assert "predictions take about" in text and "loading and saving come on top" in text
    assert plan.seconds_here() > 0 and plan.seconds_on_t4() > 0


def test_the_plan_names_rslora_apart_from_lora():
    plan = WorkPlan("tiny")
    plan.train("emotion", "lora", **FAST)
    plan.train("emotion", "lora", rslora=True, **FAST)
    assert "2 run(s) to train (emotion lora, emotion rslora)" in plan.describe()


def test_bad_settings_are_refused_before_anything_is_counted():
    with pytest.raises(ValueError, match="epochs"):
        WorkPlan("tiny").train("emotion", "lora", epochs=-1)


def test_a_notebooks_own_loop_is_counted_and_timed():
    plan = WorkPlan("tiny")
    plan.loop("emotion", "lora", 12, "a plain loop")
    assert plan.totals()["steps"] == 12 and plan.totals()["runs"] == 0
    assert plan.describe().startswith("Work plan (tiny profile): a plain loop: 12 training steps")
    assert plan.seconds_here() > 0


def test_every_variant_of_notebook_08_plans_as_a_run_of_its_own_method():
    recipe = PROFILES["offline"].recipe("emotion")
    plan = WorkPlan("offline")
    settings = {label: plan.train("emotion", **options)
                for label, options in variant_runs(recipe.learning_rates).items()}

    assert {label: s.method for label, s in settings.items()} == {
        "rsLoRA": "lora", "DoRA": "dora", "LoRA+": "loraplus", "PiSSA": "pissa",
        "VeRA r=256": "vera", "IA³": "ia3"}
    assert settings["rsLoRA"].rslora and settings["rsLoRA"].lr == recipe.learning_rates["rslora"]
    assert settings["VeRA r=256"].r == 256
