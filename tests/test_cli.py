import json
import subprocess
import sys

import pytest

from gradflow.cli import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gradflow.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_the_console_entry_point_runs():
    out = _run("--help")
    assert out.returncode == 0 and "usage: gradflow" in out.stdout and "diagnose" in out.stdout


@pytest.mark.parametrize("command", ["train", "runs", "diagnose", "report"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and f"usage: gradflow {command}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train", "--act", "sigmoidd", "--preset", "smoke"], "unknown activation 'sigmoidd'; accepted: all, sigmoid"),
    (["train", "--act", "relu", "--preset", "smoke", "--seeds", "x"], "--seeds takes integers"),
    (["train", "--act", "relu", "--preset", "smoke", "--max-epochs", "-3"], "max_epochs must be at least 1"),
    (["train", "--act", "relu", "--preset", "smoke", "--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["train", "--act", "relu", "--preset", "smoke", "--init", "magic"], "unknown init 'magic'"),
    (["diagnose", "no-such-run"], "no run named 'no-such-run'"),
    (["train", "--act", "relu", "--preset", "smoke", "--device", "tpu"], "unknown device 'tpu'; accepted: cpu, cuda"),
])
def test_errors_are_one_clear_line(tmp_path, args, message, capsys):
    assert main([*args, "--out", str(tmp_path), "--no-progress"] if args[0] == "train"
                else [*args, "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradflow: error:") and message in lines[0]


def test_argument_errors_come_from_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--preset", "fast"])
    assert exit_.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err


def test_train_then_runs_json(tmp_path, capsys):
    args = ["--preset", "smoke", "--out", str(tmp_path), "--no-progress", "--record", "off"]
    assert main(["train", "--act", "relu,tanh", "--seeds", "5", "6", *args]) == 0
    printed = capsys.readouterr().out
    assert printed.count("test accuracy") == 2
    assert main(["runs", "--json", "--out", str(tmp_path)]) == 0
    table = json.loads(capsys.readouterr().out)
    assert sorted(r["activation"] for r in table) == ["relu", "tanh"]
    for row in table:
        assert row["seeds"] == [5, 6] and len(row["test_acc"]) == 2 and len(row["epochs_trained"]) == 2
        assert row["seconds_per_epoch"] > 0 and row["models_in_batch"] == 4
    assert main(["runs", "--out", str(tmp_path)]) == 0
    assert "relu" in capsys.readouterr().out
    assert main(["runs", "--out", str(tmp_path), "--accuracy", "--preset", "smoke"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| relu") or "| relu |" in ln]
    [relu] = [row for row in table if row["activation"] == "relu"]
    mean = 100 * sum(relu["test_acc"]) / 2
    assert len(lines) == 1 and f"{mean:.2f} % ± " in lines[0] and "88.62 %" in lines[0]
    assert main(["runs", "--out", str(tmp_path), "--accuracy", "--preset", "tutorial"]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_diagnose_reads_a_recording_saved_from_a_users_own_loop(tmp_path, capsys):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from gradflow import Recorder

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=-1))  # double softmax
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    with Recorder(net) as rec:
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        rec.step(loss=loss)
    rec.save(tmp_path / "mine" / "recording")
    assert main(["diagnose", str(tmp_path / "mine" / "recording"), "--json"]) == 0
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)}
    assert "BOUNDED_OUTPUT" in codes
    # a directory that is neither a run nor a recording: one line, naming what is missing
    assert main(["diagnose", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err
    assert "neither a gradflow run (config.json is missing) nor a recording" in err and len(err.splitlines()) == 1
