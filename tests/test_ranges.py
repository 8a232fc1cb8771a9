"""Every numeric setting is checked before work starts: one line naming it, nothing written.

The table of the issue that asked for it, then a property: settings drawn across and beyond
their ranges, through the CLI and through run(), give a complete run or a one-line refusal.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorakit.cli import main
from lorakit.ranges import RANGES, check_setting
from lorakit.train import run

TASK = ["--task", "emotion", "--method", "lora", "--profile", "tiny"]

# what each of these did before: a traceback, a silent run with nonsense, or a message that
# names neither the flag nor the fix
REFUSED = {
    "batch size 0": (["--batch-size", "0"], "batch_size=0 (--batch-size)"),
    "infinite epochs": (["--epochs", "inf"], "epochs=inf (--epochs)"),
    "negative epochs": (["--epochs", "-2"], "epochs=-2.0 (--epochs)"),
    "NaN epochs": (["--epochs", "nan"], "epochs=nan (--epochs)"),
    "negative learning rate": (["--lr", "-1"], "lr=-1.0 (--lr)"),
    "NaN learning rate": (["--lr", "nan"], "lr=nan (--lr)"),
    "a rank beyond any layer": (["--rank", "100000"], "r=100000 (--rank)"),
    "a rank beyond these 64-wide layers": (["--rank", "100"], "rank 64 at most"),
    "a float rank": (["--rank", "1.5"], "argument --rank: '1.5' is not an int"),
    "more tokens than positions": (["--max-length", "600"], "has positions (512)"),
    "a negative seed": (["--seed", "-1"], "seed=-1 (--seed)"),
    "dropout 1": (["--dropout", "1"], "dropout=1.0 (--dropout)"),
    "a sweep with one bad rank": (["--ranks", "4,100000"], "r=100000 (--ranks)"),
}


def one_line_refusal(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"lorakit {command}: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_each_bad_setting_is_refused_in_one_line_with_nothing_written(case, tmp_path, capsys):
    flags, needle = REFUSED[case]
    command = "sweep" if "--ranks" in flags else "train"
    task = TASK if command == "train" else [a for a in TASK if a not in ("--method", "lora")]
    assert main([command, *task, *flags, "--output-dir", str(tmp_path / "runs")]) == 2
    line = one_line_refusal(capsys, command)
    assert needle in line and "e.g." in line or "use --max-length" in line, line
    assert not (tmp_path / "runs").exists()


def test_every_message_names_the_value_the_range_and_an_example():
    with pytest.raises(TypeError, match=r"^r=True \(--rank\) is a bool: use an int from 1 to "
                                        r"1024, e.g. --rank 8$"):
        check_setting("r", True)
    with pytest.raises(ValueError, match=r"^lr=0 \(--lr\) is out of range: use a finite number "
                                         r"in \(0, 1\], e.g. --lr 0.0003$"):
        check_setting("lr", 0)
    for name, rule in RANGES.items():
        check_setting(name, rule.kind(rule.example))  # every example is itself valid


# --- the property -----------------------------------------------------------------------------

# Valid values stay small so that a drawn run that is all valid finishes in a second or two.
VALID = {"r": [1, 4], "alpha": [1.0, 8.0], "dropout": [0.0, 0.1], "epochs": [0.0, 0.5],
         "lr": [1e-3], "head_lr": [1e-2], "batch_size": [8, 16], "max_length": [16, 32],
         "max_train": [8, 16], "max_eval": [8], "seed": [0, 7]}
FLAG_TO_NAME = {rule.flag: name for name, rule in RANGES.items()}


def accepted(name: str, value) -> bool:
    """What check_setting lets through: the right kind of number, finite, in range."""
    rule = RANGES[name]
    numeric = (int,) if rule.kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric) or not math.isfinite(value):
        return False
    above = value > rule.low if rule.low_open else value >= rule.low
    below = value < rule.high if rule.high_open else value <= rule.high
    return above and below


def invalid(name: str):
    """Values outside the setting's range: below, above, not finite, or the wrong kind."""
    rule = RANGES[name]
    if rule.kind is int:
        wrong = st.one_of(
            st.integers(min_value=-10**12, max_value=int(rule.low) - 1),
            st.integers(min_value=int(rule.high) + 1, max_value=10**15),
            st.floats(min_value=-1e6, max_value=1e6).filter(lambda x: not x.is_integer()),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        )
    else:
        wrong = st.one_of(
            st.floats(min_value=-1e300, max_value=rule.low),
            st.floats(min_value=rule.high, max_value=1e300),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        )
    return wrong.filter(lambda value: not accepted(name, value))


@st.composite
def drawn_settings(draw):
    """Every setting with a cheap valid value, then none, one or two of them put out of range."""
    values = {name: draw(st.sampled_from(VALID[name])) for name in RANGES}
    for name in draw(st.lists(st.sampled_from(list(RANGES)), max_size=2, unique=True)):
        values[name] = draw(invalid(name))
    return values


def as_argv(values: dict) -> list[str]:
    argv = []
    for name, value in values.items():
        text = repr(value) if isinstance(value, float) else str(value)
        argv.append(f"{RANGES[name].flag}={text}")  # '=': argparse reads "-2" as a flag otherwise
    return argv


PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(values=drawn_settings())
def test_cli_makes_a_complete_run_or_refuses_in_one_line(values, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("runs")
    capsys.readouterr()  # what earlier examples printed
    code = main(["train", *TASK, *as_argv(values), "--output-dir", str(out)])
    bad = [name for name, value in values.items() if not accepted(name, value)]
    if bad:
        assert code == 2
        line = one_line_refusal(capsys, "train")
        named = {FLAG_TO_NAME[flag] for flag in FLAG_TO_NAME if f"{flag}" in line}
        assert named & set(bad), (line, bad)
        assert not any(out.iterdir()), "a refusal writes nothing"
    else:
        assert code == 0, capsys.readouterr().err[-2000:]
        runs = list((out / "emotion").iterdir())
        assert len(runs) == 1 and (runs[0] / "metrics.json").is_file()


@PROPERTY
@given(values=drawn_settings())
def test_run_makes_a_complete_run_or_raises_one_line(values, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    bad = [name for name, value in values.items() if not accepted(name, value)]
    if bad:
        with pytest.raises((TypeError, ValueError)) as error:
            run("emotion", "lora", profile="tiny", output_dir=out, **values)
        message = str(error.value)
        assert "\n" not in message and any(f"{name}=" in message for name in bad), message
        assert not any(out.iterdir()), "a refusal writes nothing"
    else:
        result = run("emotion", "lora", profile="tiny", output_dir=out, **values)
        assert (result.run_dir / "metrics.json").is_file()


@pytest.mark.parametrize("name", list(RANGES))
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_each_setting_alone_beyond_its_range_is_refused(name, data, tmp_path, capsys):
    value = data.draw(invalid(name))
    values = {other: VALID[other][0] for other in RANGES} | {name: value}
    with pytest.raises((TypeError, ValueError), match=rf"^{name}="):
        run("emotion", "lora", profile="tiny", output_dir=tmp_path / "run", **values)
    capsys.readouterr()
    assert main(["train", *TASK, *as_argv(values), "--output-dir", str(tmp_path / "cli")]) == 2
    assert RANGES[name].flag in one_line_refusal(capsys, "train")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cli").exists()
