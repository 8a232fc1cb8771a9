"""Profile resolution and what each profile sets."""

import http.server
import socket
import sys
import threading
import types

import huggingface_hub.constants
import pytest
import torch

from lorakit import profiles
from lorakit.methods import METHODS
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
    assert quick.model == full.model == "distilbert/distilbert-base-uncased"
    assert quick.recipe("imdb").max_train < 25_000 and full.recipe("imdb").max_train is None
    for profile in PROFILES.values():
        for task in ("imdb", "emotion"):
            assert set(profile.recipe(task).learning_rates) == set(METHODS) | {"rslora"}


def test_overrides_replace_only_what_is_given():
    settings = PROFILES["full"].recipe("emotion", epochs=1, batch_size=None)
    assert settings.epochs == 1
    assert settings.batch_size == PROFILES["full"].recipe("emotion").batch_size
    with pytest.raises(ValueError, match="unknown task 'sst2'"):
        PROFILES["full"].recipe("sst2")
    with pytest.raises(TypeError, match="not part of a task's recipe"):
        PROFILES["full"].recipe("imdb", learning_rate=1e-3)


def test_describe_says_the_profile_and_where_it_computes_in_one_line(capsys, monkeypatch):
    text = PROFILES["quick"].describe()
    assert text == capsys.readouterr().out.strip()
    assert text.startswith("profile quick: ") and "computing on cpu" in text
    assert len(text.splitlines()) == 1


def test_a_colab_runtime_without_a_gpu_is_told_how_to_get_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    lines = PROFILES["quick"].describe().splitlines()
    assert len(lines) == 2 and "no GPU" in lines[1] and "T4 GPU" in lines[1]


def test_offline_flag_means_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert profiles.hub_reachable() is False


@pytest.fixture
def local_endpoint():
    """An HTTP server on localhost that answers every request with 200, and the paths it saw."""
    seen = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - the name http.server calls
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_hub_is_asked_through_huggingface_hubs_endpoint(monkeypatch, local_endpoint):
    # HF_ENDPOINT (a mirror) sets huggingface_hub.constants.ENDPOINT; proxies come with its session
    url, seen = local_endpoint
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
    assert profiles.hub_reachable(timeout=5) is True
    assert seen == [f"/api/models/{profiles.DISTILBERT}"]
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT",
                        f"http://127.0.0.1:{closed_port.getsockname()[1]}")
    assert profiles.hub_reachable(timeout=5) is False
    closed_port.close()


def test_full_profile_settings_fit_distilbert_base(distilbert_base_sized):
    from lorakit.models import DEFAULT_TARGETS, check_fits_model

    imdb, emotion = (PROFILES["full"].recipe(task) for task in ("imdb", "emotion"))
    assert (imdb.max_length, imdb.epochs, imdb.max_train) == (512, 2, None)
    for settings in (imdb, emotion):
        check_fits_model(distilbert_base_sized, DEFAULT_TARGETS, 8, settings.max_length)
    with pytest.raises(ValueError, match=r"max_length=513 .* has positions \(512\)"):
        check_fits_model(distilbert_base_sized, DEFAULT_TARGETS, 8, imdb.max_length + 1)


def test_the_offline_rates_are_the_ones_chosen_on_validation():
    """The offline profile's rates (every method's, the head's, each variant's factor) must be
    what benchmarks/offline_rates.py chose (its committed results): a measurement, not a guess."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parent.parent / "benchmarks/results/offline_rates.json"
    chosen = json.loads(results.read_text())["chosen"]
    for task in ("emotion", "imdb"):
        recipe = PROFILES["offline"].recipe(task)
        assert recipe.head_lr == chosen[f"{task}/head_lr"]["lr"]
        for method in ("head", "lora", "full"):
            assert recipe.learning_rates[method] == chosen[f"{task}/{method}"]["lr"], method
    rates = PROFILES["offline"].recipe("emotion").learning_rates
    for variant in profiles.VARIANT_RATE_FACTORS:  # measured on the Emotion samples
        assert rates[variant] == chosen[f"emotion/{variant}"]["lr"], variant
