"""Profile resolution and what each profile sets."""

import pytest
import torch

from lorakit import profiles
from lorakit.profiles import PROFILES, resolve_profile


def test_environment_variable_wins(monkeypatch):
    monkeypatch.setenv("LORAKIT_PROFILE", "offline")
    assert resolve_profile().name == "offline"
    assert resolve_profile("full").name == "full", "an explicit name beats the variable"


@pytest.mark.parametrize("cuda, expected", [(True, "full"), (False, "quick")])
def test_hardware_decides_without_the_variable(monkeypatch, cuda, expected):
    monkeypatch.delenv("LORAKIT_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_profile().name == expected


def test_unknown_profile_lists_them_all(monkeypatch):
    monkeypatch.setenv("LORAKIT_PROFILE", "smoke")  # the offline profile's old name
    with pytest.raises(ValueError, match="LORAKIT_PROFILE='smoke' is not a profile; choose one of "
                                         "offline, quick, full, tiny"):
        resolve_profile()
    with pytest.raises(ValueError, match="profile='huge'"):
        resolve_profile("huge")


def test_profiles_differ_in_model_and_data():
    offline, tiny, quick, full = (PROFILES[name] for name in ("offline", "tiny", "quick", "full"))
    assert offline.data == tiny.data == "fixtures" and quick.data == full.data == "hub"
    assert len({offline.model, tiny.model, full.model}) == 3
    assert profiles.SAMPLE_PROFILES == ("offline", "tiny")
    assert quick.model == full.model == "distilbert-base-uncased"
    assert quick.settings("imdb").max_train < 25_000 and full.settings("imdb").max_train is None
    for profile in PROFILES.values():
        for task in ("imdb", "emotion"):
            assert set(profile.settings(task).learning_rates) == {"lora", "peft", "full", "head"}


def test_overrides_replace_only_what_is_given():
    settings = PROFILES["full"].settings("emotion", epochs=1, batch_size=None)
    assert settings.epochs == 1
    assert settings.batch_size == PROFILES["full"].settings("emotion").batch_size
    with pytest.raises(ValueError, match="unknown task 'sst2'"):
        PROFILES["full"].settings("sst2")
    with pytest.raises(TypeError, match="not task settings"):
        PROFILES["full"].settings("imdb", learning_rate=1e-3)


def test_describe_says_profile_device_and_sizes(capsys):
    text = PROFILES["quick"].describe("imdb", estimate=False)
    assert text == capsys.readouterr().out.strip()
    assert "profile: quick" in text and "device:" in text
    assert "imdb: train examples 1,000" in text and "emotion" not in text


def test_offline_flag_means_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert profiles.hub_reachable() is False


def test_describe_estimates_training_time_by_measuring_it(capsys):
    text = PROFILES["tiny"].describe("emotion", method="head")
    assert "training with head takes about" in text and "upper bound" in text


def test_estimate_counts_the_profile_steps(monkeypatch):
    from lorakit import train

    monkeypatch.setattr(train.time, "perf_counter", iter(range(0, 1000, 2)).__next__)
    seconds = train.estimate_train_seconds("emotion", "head", "tiny")
    steps = -(-480 // 16) * PROFILES["tiny"].settings("emotion").epochs  # 480 bundled examples
    assert seconds == 2 * steps, "2 s per step on the fake clock, times the profile's steps"
