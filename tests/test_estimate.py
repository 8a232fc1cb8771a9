"""How long runs take, measured before they start (lorakit.estimate)."""

from dataclasses import replace

import pytest

from lorakit import estimate
from lorakit.data import split_sizes
from lorakit.estimate import format_duration, padded_length, print_estimate
from lorakit.profiles import PROFILES


def test_print_estimate_measures_the_runs(capsys):
    text = print_estimate("emotion", ("untrained", "head", "head"), "tiny")
    assert text.strip() == capsys.readouterr().out.strip()
    assert "measured here: untrained" in text and "head ×2" in text
    assert "these 3 runs, evaluations included, take about" in text
    assert "tokens, the length random batches of the training texts pad to" in text  # bundled


def test_bundled_data_is_timed_at_the_length_its_batches_pad_to(monkeypatch):
    timed = []
    real_step = estimate._seconds_per_step
    monkeypatch.setattr(estimate, "_seconds_per_step", lambda model, batch, *rest:
                        timed.append(batch["input_ids"].shape) or real_step(model, batch, *rest))
    seconds = estimate.estimate_seconds("emotion", ("head",), "tiny", timed_steps=1)
    settings = PROFILES["tiny"].settings("emotion")
    assert seconds.from_data and 0 < seconds.batch_tokens < settings.max_length
    assert timed == [(settings.batch_size, seconds.batch_tokens)]
    assert f"batches of {seconds.batch_tokens} tokens" in seconds.caveat


def test_padded_length_is_the_mean_longest_text_per_batch():
    assert padded_length([3, 9, 4, 4, 5, 1], batch_size=2, shuffled=False) == 6  # (9 + 4 + 5) / 3
    alternating = [10, 100] * 64  # in order, every batch of 4 holds a long text
    assert padded_length(alternating, batch_size=4, shuffled=False) == 100
    assert padded_length(alternating, batch_size=1, shuffled=True) == 55  # each text alone
    shuffled = padded_length(alternating, batch_size=4, shuffled=True)
    assert 90 < shuffled < 100  # a random batch of 4 holds only short texts 1 time in 16 or so
    assert shuffled == padded_length(alternating, batch_size=4, shuffled=True)  # seeded
    with pytest.raises(ValueError, match="at least one text"):
        padded_length([], batch_size=4, shuffled=True)


def test_estimate_counts_the_profile_steps_and_evaluations(monkeypatch):
    monkeypatch.setattr(estimate.time, "perf_counter", iter(range(0, 10_000, 2)).__next__)
    seconds = estimate.estimate_seconds("emotion", ("head", "untrained", "head"), "tiny")
    settings = PROFILES["tiny"].settings("emotion")  # batch 16, 6 epochs
    steps = -(-480 // 16) * settings.epochs  # 480 bundled training examples
    test_batches = -(-120 // 32)  # 120 test examples, evaluated 32 at a time
    validation_batches = -(-120 // 32) * settings.epochs
    one_head_run = 2 * (steps + validation_batches + test_batches)  # 2 s per call on the clock
    assert seconds.step_seconds == {"head": 2}
    assert seconds.run_seconds == {"head": 2 * one_head_run, "untrained": 2 * test_batches}
    assert seconds.total == 2 * one_head_run + 2 * test_batches


def test_estimate_sizes_the_hub_splits_from_the_dataset_cards():
    assert split_sizes("imdb", "full") == {"train": 22_500, "validation": 2_500, "test": 25_000}
    assert split_sizes("emotion", "full") == {"train": 16_000, "validation": 2_000, "test": 2_000}
    assert split_sizes("imdb", "quick") == {"train": 1_000, "validation": 500, "test": 500}


def test_estimate_refuses_unknown_runs():
    with pytest.raises(ValueError, match=r"cannot estimate runs \['lorra'\]; name methods"):
        estimate.estimate_seconds("emotion", ("lorra",), "tiny")


def test_estimate_on_the_hub_profiles_builds_distilbert_base_without_a_download(monkeypatch):
    built = []
    real_architecture = estimate._architecture
    monkeypatch.setattr(estimate, "_architecture",
                        lambda task, profile: built.append(real_architecture(task, profile))
                        or built[-1])
    small = replace(PROFILES["quick"].tasks["emotion"], batch_size=2, max_length=16)
    quick = replace(PROFILES["quick"], tasks={"emotion": small})
    seconds = estimate.estimate_seconds("emotion", ("lora",), quick, timed_steps=1)
    assert seconds.total == seconds.run_seconds["lora"] > seconds.step_seconds["lora"] > 0
    assert not seconds.from_data and seconds.batch_tokens == 16  # the Hub's data: full length
    assert "full-length batches (16 tokens" in seconds.caveat
    config = built[0][0].config  # (model, tokenizer): no tokenizer for Hub data
    assert (config.n_layers, config.dim, config.hidden_dim, config.num_labels) == (6, 768, 3072, 6)


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (89.4, "89 s"), (90, "2 min"),
                                           (5399, "90 min"), (5400, "1.5 h")])
def test_durations_print_in_the_unit_a_reader_expects(seconds, text):
    assert format_duration(seconds) == text
