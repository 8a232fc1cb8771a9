"""`lorakit train | sweep | report` end to end, bad arguments, and torchrun with 2 processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lorakit.cli import main, use_one_thread_for_tiny
from lorakit.models import load_base

TINY = ["--profile", "tiny", "--epochs", "1", "--max-train", "32", "--max-eval", "16",
        "--max-length", "48"]


def test_train_writes_a_run_and_prints_its_numbers(tmp_path, capsys):
    code = main(["train", "--task", "emotion", "--method", "lora", "--rank", "2", "--alpha", "4",
                 "--targets", "q_lin,v_lin", "--output-dir", str(tmp_path), *TINY])
    assert code == 0
    run_dir = tmp_path / "emotion" / "lora-r2-a4-q_lin+v_lin-seed0"  # with the targets it changed
    config = json.loads((run_dir / "config.json").read_text())
    assert config["r"] == 2 and config["targets"] == ["q_lin", "v_lin"]
    assert "accuracy" in capsys.readouterr().out


def test_train_takes_each_variant_as_a_method(tmp_path):
    code = main(["train", "--task", "emotion", "--method", "dora", "--rank", "2", "--alpha", "4",
                 "--output-dir", str(tmp_path), *TINY])
    assert code == 0
    adapter = tmp_path / "emotion" / "dora-r2-a4-seed0" / "adapter" / "adapter_config.json"
    assert json.loads(adapter.read_text())["use_dora"] is True


def test_local_csv_and_txt_files_with_a_local_model_directory(tmp_path):
    model_dir = tmp_path / "model"
    model, tokenizer = load_base("imdb", "tiny")
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    reviews = [("a wonderful warm film", "positive"), ("dull and far too long", "negative")] * 12
    csv = "review,sentiment\n" + "\n".join(f"{t},{s}" for t, s in reviews) + "\n"
    (tmp_path / "train.csv").write_text(csv)
    (tmp_path / "test.csv").write_text(csv)
    code = main(["train", "--task", "imdb", "--method", "lora", "--profile", "quick",
                 "--model", str(model_dir), "--train-file", str(tmp_path / "train.csv"),
                 "--test-file", str(tmp_path / "test.csv"), "--epochs", "1",
                 "--output-dir", str(tmp_path / "runs")])
    assert code == 0
    config = json.loads((tmp_path / "runs/imdb/lora-r8-a16-seed0/config.json").read_text())
    assert config["model"] == str(model_dir) and config["profile"] == "quick"
    assert config["examples"]["test"] == 24

    lines = ["i feel so happy and warm today;joy", "i am scared of the dark;fear"] * 8
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    code = main(["train", "--task", "emotion", "--method", "head", "--profile", "quick",
                 "--model", str(model_dir), "--train-file", str(tmp_path / "train.txt"),
                 "--test-file", str(tmp_path / "train.txt"), "--epochs", "1",
                 "--output-dir", str(tmp_path / "runs")])
    assert code == 0


def test_sweep_then_report(tmp_path, capsys):
    code = main(["sweep", "--task", "emotion", "--ranks", "1,2", "--alpha-ratios", "2",
                 "--output-dir", str(tmp_path), *TINY])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "emotion").iterdir()) == [
        "lora-r1-a2-seed0", "lora-r2-a4-seed0"]
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "lora-r1-a2-seed0" in out and "lora-r2-a4-seed0" in out
    assert (tmp_path / "results.md").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--task", "imdb", "--train-file", "train.csv"], "needs both --train-file"),
        (["report", "nowhere"], "no run directories were found"),
    ],
)
def test_incomplete_arguments_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    extra = ["--profile", "tiny", "--output-dir", str(tmp_path)] if argv[0] == "train" else []
    assert main(argv + extra) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"lorakit {argv[0]}: error: ") and message in last_line
    assert not list(tmp_path.glob("*/*")), "nothing may be written for bad input"


@pytest.mark.parametrize(
    "argv", [["train", "--task", "sst2"], ["train", "--task", "imdb", "--method", "lora2"],
             ["sweep", "--task", "emotion", "--ranks", "1,x"], []],
)
def test_argument_errors_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("lorakit"), err


def test_python_dash_m_lorakit_help():
    out = subprocess.run([sys.executable, "-m", "lorakit", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--rank" in out and "--resume" in out


def test_torchrun_two_processes_write_one_run(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    # Two processes on the CPU (gloo): one GPU cannot host two NCCL ranks.
    env = os.environ | {"LORAKIT_PROFILE": "tiny", "OMP_NUM_THREADS": "1",
                        "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "lorakit", "train", "--task", "emotion",
         "--method", "lora", *TINY, "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [p for p in (tmp_path / "emotion").iterdir()]
    assert [p.name for p in runs] == ["lora-r8-a16-seed0"]
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["world_size"] == 2


@pytest.fixture
def torch_threads():
    """Two torch threads during the test, torch's own setting after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "profile, omp_setting, expected",
    [("tiny", None, 1), ("offline", None, 2), ("quick", None, 2), ("full", None, 2),
     ("tiny", "2", 2), ("no-such-profile", None, 2), (None, None, 1)],
)
def test_tiny_runs_on_one_thread_unless_omp_says(torch_threads, monkeypatch, profile,
                                                  omp_setting, expected):
    if omp_setting is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp_setting)
    monkeypatch.setenv("LORAKIT_PROFILE", "tiny")  # what a profile of None resolves to
    use_one_thread_for_tiny(profile)
    assert torch.get_num_threads() == expected
