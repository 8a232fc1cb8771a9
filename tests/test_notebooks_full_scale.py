"""Every notebook in the ``full`` profile at the Hub's sizes (tests/full_scale.py), each on a
fresh runtime (nothing on disk): what it trains and predicts, where, with how many models held,
whether its printed plan counted exactly that, and whether it fits a free Colab session on a T4
at the assumed throughput (lorakit.estimate.T4_FLOPS); then the whole series with its runs kept,
as on Google Drive."""

import pytest
from full_scale import (
    Recorder,
    execute,
    install,
    notebooks,
    planned,
    recorded,
    standin_model,
    write_standins,
)

from lorakit.plan import WorkPlan
from lorakit.precision import compute_device

NOTEBOOK_BUDGET_S = 45 * 60  # a free Colab session, a fresh runtime
SERIES_BUDGET_S = 3 * 3600  # the whole series, with runs kept on Google Drive
PATHS = notebooks()
CORE = [path for path in PATHS if path.parent.name == "notebooks"]


@pytest.fixture(scope="module")
def executions(tmp_path_factory):
    """Every notebook executed once, each with runs of its own: {name: (recorder, namespace)}."""
    root = tmp_path_factory.mktemp("hub")
    folders, model = write_standins(root), standin_model(root)
    done = {}
    for path in PATHS:
        recorder = Recorder()
        with pytest.MonkeyPatch.context() as patch:
            install(patch, root, recorder, folders, model, root / "runs" / path.stem)
            done[path.stem] = recorder, execute(path)
    return done


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_a_notebook_on_a_fresh_t4_runtime_does_what_its_plan_says_within_budget(path,
                                                                               executions):
    recorder, _ = executions[path.stem]
    plan, done = planned(recorder), recorded(recorder)
    heavy = recorder.calls or recorder.loop_steps
    assert recorder.plans or not heavy, f"{path.name} trains or predicts without a work plan"
    assert plan["runs"] == done["runs"], "the runs trained are the runs the plan counted"
    assert plan["loop_steps"] == done["loop_steps"]
    assert (plan["predicted"], plan["predicted_tokens"]) == (done["predicted"],
                                                             done["predicted_tokens"])
    assert {call.device for call in recorder.calls} <= {compute_device().type}
    if path in CORE:
        held = max((call.models_held for call in recorder.calls), default=0)
        assert held <= 2, f"{path.name} holds {held} models during heavy work"
    assert plan["t4_seconds"] <= NOTEBOOK_BUDGET_S, (
        f"{path.name}: {plan['t4_seconds'] / 60:.0f} min on a T4, over 45")


def test_the_series_with_runs_kept_fits_three_hours(executions):
    """Runs kept on Drive: a run trained by one notebook is read back by the next, so the series
    trains each distinct run once; loops and predictions are each notebook's own."""
    series = WorkPlan("full")
    for recorder, _ in executions.values():
        for plan in recorder.plans:
            for training in plan.to_train:
                if not any(t.settings == training.settings for t in series.trainings):
                    series.trainings.append(training)
            series.loops += plan.loops
            series.predictions += plan.predictions
    minutes = {name: round(planned(recorder)["t4_seconds"] / 60, 1)
               for name, (recorder, _) in executions.items()}
    print(f"minutes on a T4, each notebook alone: {minutes}; the series with runs kept: "
          f"{series.seconds_on_t4() / 60:.0f}")
    assert series.seconds_on_t4() <= SERIES_BUDGET_S


def test_a3_reads_the_cut_reviews_at_two_lengths_the_model_can_read(executions):
    _, namespace = executions["A3_calibration"]
    short, long = namespace["readings"]
    assert short < long <= namespace["positions"] == 512  # full: 256 against 512, not 512 twice


def test_07_records_a_diverged_run_and_carries_on(executions):
    _, namespace = executions["07_choosing_lora_settings"]
    assert any(result.diverged for result in namespace["results"].values()), (
        "the stand-in makes the highest rates diverge")
    assert namespace["placement"].chosen  # the notebook went on to its choice
