"""The "Try it yourself" commands on the pages are commands gradflow accepts, naming runs `make report` stores."""
import shlex

import pytest

from gradflow import exercises
from gradflow.cli import build_parser
from gradflow.commands.report import page_names
from gradflow.config import make_config
from gradflow.report import NOTEBOOKS, declared_parameters

BLOCKS = [exercises.gradients_at_init, exercises.one_run, exercises.two_runs, exercises.sweep]


@pytest.mark.parametrize("preset", ["quick", "tutorial"])
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
def test_every_command_parses_and_names_a_real_page_and_parameter(block, preset):
    lines = exercises.commands(block(preset))
    assert lines and all(line.startswith("gradflow ") for line in lines)
    for line in lines:
        argv = shlex.split(line)[1:]
        args = build_parser(argv[0]).parse_args(argv)  # argparse exits on an unknown flag: the test fails
        assert args.preset == preset
        if argv[0] == "report":
            [page] = page_names(args.page, NOTEBOOKS)
            declared = declared_parameters(page)
            assert {name for name, _ in args.parameter} <= declared, (line, declared)


def test_the_runs_named_are_the_comparison_and_sweep_runs():
    text = exercises.two_runs("quick") + exercises.one_run("quick")
    assert make_config("sigmoid", "quick").run_name() in text  # the comparison's sigmoid run
    assert make_config("sigmoid", "quick", init="kaiming").run_name() in text  # the sweep's kaiming column
    assert "--reports reports/" in exercises.two_runs("quick")  # a folder of its own: the set stays as it is


def test_page_1_s_own_activation_cell_runs_as_written_twice():
    """The cell a student pastes: it registers, page 1's parameter check accepts the name, and a second run of
    the cell (Run all again) is no error."""
    import torch

    from gradflow.activations import check_activations, get_activation
    text = exercises.activation_functions("quick")
    [cell] = ["\n".join(exercises.commands(text, "python"))]
    assert "register_activation" in cell and not exercises.commands(text)  # no shell command to parse
    for _ in range(2):
        exec(compile(cell, "<exercise>", "exec"), {})
    assert check_activations(["relu", "tanh", "clip2"]) == ["relu", "tanh", "clip2"]
    assert get_activation("clip2")(torch.tensor([-5.0, 1.0, 5.0])).tolist() == [-2.0, 1.0, 2.0]
    assert 'activations = "relu,tanh,clip2"' in text and "compare([\"clip2\"], preset=\"quick\")" in text


def test_a_report_exercise_says_the_same_change_in_jupyter():
    text = exercises.gradients_at_init("quick")
    assert "the first `gradflow report` line is an edit: open page 2's notebook, set `seed = \"7\"` in its parameters cell, and Run all" in text
