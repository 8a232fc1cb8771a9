"""Bad input end to end through the CLI and run(): one line, non-zero exit, nothing written."""

import huggingface_hub
import pytest

from lorakit.cli import main
from lorakit.tasks import HubUnavailableError
from lorakit.train import run

GOOD_ROWS = "review,sentiment\n" + "a warm and lovely film,positive\nslow and dull,negative\n" * 5


def _write(path, content, encoding="utf-8"):
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


CASES = {
    "file that does not exist": ({"train": "missing.csv"}, [], "missing.csv"),
    "csv without the named columns": (
        {"train": "x,y\n1,2\n"}, ["--text-column", "review"], "review"),
    "labels outside the task": (
        {"train": "text,label\nfine film,great\nbad film,awful\n"}, [], "'great'"),
    "empty file": ({"train": ""}, [], "train"),
    "rows with empty text": ({"train": "text,label\n,pos\n   ,neg\nok film,pos\n"}, [], "text"),
    "non-UTF-8 file": ({"train": "text,label\ncaf\xe9 film,pos\n".encode("latin-1")}, [],
                       "UTF-8"),
    "rank of 0": ({}, ["--rank", "0"], "r=0"),
    "targets that match nothing": ({}, ["--targets", "q_proj"], "q_proj"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_cli_gives_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    files, extra, needle = CASES[case]
    monkeypatch.chdir(tmp_path)
    test_file = _write(tmp_path / "test.csv", GOOD_ROWS)
    train_file = tmp_path / "train.csv"
    if files.get("train") != "missing.csv":
        _write(train_file, files.get("train", GOOD_ROWS))
    else:
        train_file = tmp_path / "missing.csv"
    argv = ["train", "--task", "imdb", "--profile", "tiny", "--train-file", str(train_file),
            "--test-file", str(test_file), "--output-dir", str(tmp_path / "runs"), *extra]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("lorakit train: error: ") and needle in last_line
    assert not (tmp_path / "runs").exists(), "bad input must leave nothing in runs/"


def test_model_directory_without_weights(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "distilbert"}')
    argv = ["train", "--task", "emotion", "--profile", "tiny", "--model", str(tmp_path / "model"),
            "--output-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert "has no weights" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_no_network_for_a_hub_id_fails_fast(profile, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(HubUnavailableError, match="LORAKIT_PROFILE=offline") as error:
        run("emotion", "lora", profile=profile, output_dir=tmp_path / "runs")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists()
