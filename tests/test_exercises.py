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
