import argparse
import json
import os
import subprocess
import sys

import pytest

import gradflow
from gradflow.cli import COMMANDS, HelpFormatter, build_parser, main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gradflow.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_the_console_entry_point_runs():
    out = _run("--help")
    assert out.returncode == 0 and "usage: gradflow" in out.stdout and "diagnose" in out.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and f"usage: gradflow {command}" in capsys.readouterr().out


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_nothing_heavy(command):
    """--help must answer fast: building any command's parser imports neither torch nor pandas."""
    code = (f"import sys; from gradflow.cli import build_parser; build_parser({command!r}); "
            "heavy = sorted({'torch', 'pandas', 'numpy', 'matplotlib', 'papermill'} & set(sys.modules)); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_help_and_says_its_default(command):
    parser = build_parser(command)
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in sub.choices[command]._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        if action.option_strings and action.nargs != 0:  # options taking a value say what they default to
            assert "default" in HelpFormatter(command)._get_help_string(action), (command, action.option_strings)


def test_version():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"gradflow {gradflow.__version__}"


def test_names_repeated_for_fast_help_match_the_originals():
    from gradflow import commands
    from gradflow.config import OPTIMIZERS, PRESETS, RunConfig
    from gradflow.models import INIT_SCHEMES, NORMS
    assert commands.PRESET_NAMES == tuple(PRESETS) and commands.OPTIMIZER_NAMES == OPTIMIZERS
    assert commands.INIT_NAMES == INIT_SCHEMES and commands.NORM_NAMES == NORMS
    # the defaults the train help states are the tutorial recipe's
    text = "\n".join(a.help for a in build_parser("train")._subparsers._group_actions[0].choices["train"]._actions)
    c = RunConfig()
    for said in (f"default: {c.lr:g}, the tutorial's", f"default: {c.momentum}", f"default: {c.batch_size};",
                 f"default: tutorial {c.max_epochs}", f"default: {c.patience};", f"default: {c.optimizer},",
                 f"default: {c.norm}", "default: default, PyTorch's own"):
        assert said in text


def test_activations_lists_names_parameters_and_round_tripping_configs(capsys):
    assert main(["activations"]) == 0
    out = capsys.readouterr().out
    for name in gradflow.available_activations():
        assert f"\n{name} " in out
    assert 'alpha=0.1' in out and '{"name": "leakyrelu", "alpha": 0.1}' in out and "NOT round-trip" not in out
    assert main(["activations", "elu", "--json"]) == 0
    [elu] = json.loads(capsys.readouterr().out)
    assert elu == {"name": "elu", "parameters": {"alpha": 1.0}, "bounded": False, "tutorial": True,
                   "config": {"name": "elu", "alpha": 1.0}, "round_trips": True}
    assert main(["activations", "elux"]) == 2
    assert "unknown activation(s) ['elux']" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "--act", "sigmoidd", "--preset", "smoke"], "unknown activation 'sigmoidd'; accepted: all, sigmoid"),
    (["train", "--act", "relu", "--preset", "smoke", "--seeds", "x"], "--seeds takes integers"),
    (["train", "--act", "relu", "--preset", "smoke", "--max-epochs", "-3"], "max_epochs must be at least 1"),
    (["train", "--act", "relu", "--preset", "smoke", "--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["train", "--act", "relu", "--preset", "smoke", "--init", "magic"], "unknown init 'magic'"),
    (["diagnose", "no-such-run"], "no run named 'no-such-run'"),
    (["train", "--act", "relu", "--preset", "smoke", "--device", "tpu"], "unknown device 'tpu'; accepted: cpu, cuda"),
    (["report", "--page", "9"], "--page '9': no such page; accepted: 1 (01_activation_functions), 2 ("),
    (["report", "--page", "5", "-p", "run_c", "x"], "-p run_c: no page rendered has a parameter 'run_c'; accepted: "
                                                    "05_two_runs: interactive, preset, run_a, run_b, runs_dir"),
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
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "| relu |" in ln]
    [relu] = [row for row in table if row["activation"] == "relu"]
    mean = 100 * sum(relu["test_acc"]) / 2
    # a smoke run is not the tutorial's recipe: never set beside the tutorial's 88.62 %
    assert len(lines) == 1 and f"{mean:.2f} % ± " in lines[0] and "88.62" not in lines[0]
    assert lines[0].endswith("| — |") and "2 run(s) not trained with the tutorial's recipe" in out
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


def test_only_tutorial_recipe_runs_are_compared_with_the_tutorial():
    from gradflow.commands.runs import is_tutorial_recipe
    from gradflow.config import make_config
    assert is_tutorial_recipe(make_config("relu", "tutorial", seeds=[1], record="off").to_dict())
    assert not is_tutorial_recipe(make_config("relu", "quick").to_dict())
    assert not is_tutorial_recipe(make_config("relu", "tutorial", lr=0.1).to_dict())
    assert not is_tutorial_recipe(make_config({"name": "leakyrelu", "alpha": 0.2}, "tutorial").to_dict())


def test_runs_shows_origin_and_the_settings_that_differ(tmp_path, capsys):
    from gradflow import store
    args = ["--preset", "smoke", "--out", str(tmp_path), "--no-progress", "--record", "off", "--act", "relu"]
    assert main(["train", *args]) == 0
    assert main(["train", *args, "--lr", "0.05"]) == 0
    with store.run_origin("case study"):
        assert main(["train", *args, "--lr", "0.05", "--dropout", "0.2"]) == 0
    capsys.readouterr()
    assert main(["runs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0].split()
    assert header[:5] == ["run", "origin", "activation", "dropout", "lr"]
    assert sorted(ln.split()[1:2] != ["case"] for ln in out[1:4]) == [False, True, True]
    assert out[-1].startswith("settings that differ between these runs: dropout, lr")
    assert main(["runs", "--out", str(tmp_path), "--origin", "case study", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["origin"] == "case study" and row["settings"]["dropout"] == 0.2


@pytest.mark.parametrize("make, args, message", [
    (lambda p: p.write_text("x") and p, ["train", "--out", "{p}"], "--out {p} is a file, not a folder"),
    (lambda p: p, ["train", "--out", "{p}/no/runs"], "--out {p}/no/runs: its parent folder {p}/no does not exist"),
    (lambda p: p, ["train", "--data-dir", "{p}/typo"], "--data-dir {p}/typo does not exist"),
    (lambda p: p.write_text("x") and p, ["report", "--out", "{p}"], "--out {p} is a file, not a folder"),
    (lambda p: p.write_text("x") and p, ["report", "--reports", "{p}"], "--reports {p} is a file, not a folder"),
    (lambda p: p.write_text("x") and p, ["runs", "--out", "{p}"], "--out {p} is a file, not a folder of runs"),
    (lambda p: p.write_text("x") and p, ["data", "--data-dir", "{p}"], "--data-dir {p} is a file, not a folder"),
])
def test_bad_folders_are_one_line_before_any_work(tmp_path, monkeypatch, capsys, make, args, message):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "target"
    make(target)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(p=target) for a in args]
    if argv[0] == "train":
        argv += ["--act", "relu", "--preset", "smoke", "--no-progress"]
        if "--out" not in argv:
            argv += ["--out", str(tmp_path / "runs")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message.format(p=target) in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created, nothing trained


def test_an_unwritable_runs_folder_is_refused_before_training(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through permission bits; /sys refuses even root
        target = "/sys"
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o555)
    assert main(["train", "--act", "relu", "--preset", "smoke", "--no-progress", "--out", str(target)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"--out {target} is not writable" in line


def test_diagnose_says_when_it_cannot(tmp_path, capsys):
    args = ["--preset", "smoke", "--out", str(tmp_path), "--no-progress", "--act", "relu"]
    assert main(["train", *args, "--record", "off"]) == 0
    name = capsys.readouterr().out.split(":")[0]
    assert main(["diagnose", name, "--out", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert "nothing unusual" not in captured.out
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"gradflow: cannot diagnose the gradient flow: run {name} has no gradient recording "
                           "(it was trained with --record off)")
    # a recording saved from a loop where rec.step() was never called
    from torch import nn

    from gradflow import Recorder
    with Recorder(nn.Sequential(nn.Linear(4, 2))) as rec:
        pass
    rec.save(tmp_path / "empty")
    assert main(["diagnose", str(tmp_path / "empty")]) == 3
    captured = capsys.readouterr()
    assert "nothing unusual" not in captured.out and "holds no recorded step" in captured.err
    # a run whose recordings were deleted is DAMAGED: one line naming the file
    assert main(["train", *args]) == 0
    recorded = capsys.readouterr().out.split(":")[0]
    import shutil
    shutil.rmtree(tmp_path / recorded / "recordings")
    assert main(["diagnose", recorded, "--out", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"run {recorded} is DAMAGED: recordings/recording" in line and "is missing" in line


def test_report_pages_by_number_or_name():
    from gradflow.commands.report import page_names
    from gradflow.report import NOTEBOOKS
    assert page_names(["5", "two_runs", "05_two_runs.html"], NOTEBOOKS) == ["05_two_runs"]  # one page, once
    assert page_names(["04", "1"], NOTEBOOKS) == ["04_one_run", "01_activation_functions"]


def test_python_dash_m_gradflow_runs_the_same_command_line():
    """`python -m gradflow` failed with "No module named gradflow.__main__"."""
    out = subprocess.run([sys.executable, "-m", "gradflow", "sweep", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: gradflow sweep" in out.stdout and "--overwrite" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "gradflow", "sweep", "--act", "relu", "--momentum", "2", "--dry-run"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "gradflow: error: setting momentum takes values >= 0.0 and < 1.0, got 2.0"]
