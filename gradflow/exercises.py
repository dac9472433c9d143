""""Try it yourself": the next experiment each page invites, as commands a student can run as written.

A page shows one set of runs; a course wants the reader to change one thing and look again. Each
block asks a question, gives the commands (run names computed from the page's preset, so they are
the runs ``make report`` stored), and says what to look for. tests/test_exercises.py parses every
command with gradflow's own CLI and checks each ``--page``/``-p`` against the page's parameters.
"""
from __future__ import annotations

import shlex

from .config import make_config
from .narrate import is_preview


def _run(act: str, preset: str, **settings) -> str:
    return make_config(act, preset, **settings).run_name()


def _block(question: str, commands: list[str], look_for: str) -> str:
    code = "\n".join(commands)
    return f"{question}\n\n```bash\n{code}\n```\n\n{look_for}{_in_jupyter(commands)}"


def _in_jupyter(commands: list[str]) -> str:
    """The same change made in Jupyter: a page's ``-p NAME VALUE`` are its parameters cell's variables."""
    report = next((shlex.split(c) for c in commands if c.startswith("gradflow report")), None)
    if report is None:
        return ""
    pairs = [(report[i + 1], report[i + 2]) for i, word in enumerate(report) if word == "-p" and i + 2 < len(report)]
    page = report[report.index("--page") + 1] if "--page" in report else ""
    if not pairs:
        return ""
    values = ", ".join(f"`{name} = \"{value}\"`" for name, value in pairs)
    which = "the first `gradflow report` line" if sum(c.startswith("gradflow report") for c in commands) > 1 else \
        "the `gradflow report` line"
    return (f"\n\nIn Jupyter, {which} is an edit: open page {page}'s notebook, set {values} in its parameters "
            "cell, and Run all.")


def commands(markdown: str, language: str = "bash") -> list[str]:
    """The lines of a block's code fences in ``language`` (for the tests)."""
    inside, out = False, []
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = line.strip() == f"```{language}" if not inside else False
        elif inside and line.strip():  # shell lines lose their comments; code keeps its indentation
            out.append(line.split("  #")[0].strip() if language == "bash" else line.rstrip())
    return out


def activation_functions(preset: str) -> str:
    """Page 1: an activation of one's own, drawn beside the tutorial's (in Jupyter: no command can register one)."""
    code = ("import torch\n"
            "import gradflow\n\n"
            "@gradflow.register_activation(\"clip2\")\n"
            "def clip2(x):\n"
            "    return torch.clamp(x, -2, 2)  # like tanh, bounded; unlike it, flat beyond ±2")
    return ("Draw an activation of your own beside two of the tutorial's. In Jupyter, add a cell after the "
            "parameters cell with\n\n```python\n" + code + "\n```\n\nset `activations = \"relu,tanh,clip2\"` in "
            "the parameters cell, and Run all (running the cell again is fine: the same function replaces itself)."
            "\n\nPredict first: where is its slope exactly 0, and is that a saturated value or a dead unit? Then "
            "read the table and the answers. To train it as pages 3 and 4 train theirs, in the same kernel: "
            f"`from gradflow.train import compare; runs = compare([\"clip2\"], preset=\"{preset}\")` (minutes on a "
            "laptop), then open page 4 with `run` set to `runs[0].name`.")


def gradients_at_init(preset: str) -> str:
    return _block(
        "Are these ratios a property of the activation or of one lucky initialisation? Render this page for "
        "two other seeds and compare the first layer's share of the output layer's gradient.",
        [f"gradflow report --preset {preset} --page 2 -p seed 7 --reports reports/seed-7",
         f"gradflow report --preset {preset} --page 2 -p seed 8 --reports reports/seed-8"],
        "Look for: sigmoid's first layer stays orders of magnitude below its output layer for every seed; the "
        "exact numbers move a little.")


def one_run(preset: str) -> str:
    return _block(
        ("Read a run that has not left chance after these few epochs, " if is_preview(preset) else
         "Read a run that learns late ") + "the way you read this one: the sigmoid network, then the same network "
        "with Kaiming's initialisation (the sweep of page 7 trained it).",
        [f"gradflow report --preset {preset} --page 4 -p run {_run('sigmoid', preset)} --reports reports/sigmoid",
         f"gradflow report --preset {preset} --page 4 -p run {_run('sigmoid', preset, init='kaiming')} "
         "--reports reports/sigmoid-kaiming"],
        "Look for: which layer's gradient line sits lowest, how far its update:data ratio is below 1e-3, and "
        "which findings the diagnosis lists for each.")


def two_runs(preset: str) -> str:
    return _block(
        "Does a better initialisation rescue the sigmoid network, and where inside it? Put the two sigmoid runs "
        "side by side: PyTorch's default initialisation (run A) against Kaiming's (run B).",
        [f"gradflow report --preset {preset} --page 5 -p run_a {_run('sigmoid', preset)} "
         f"-p run_b {_run('sigmoid', preset, init='kaiming')} --reports reports/sigmoid-init"],
        "Predict first: which layer's gradients will differ most, the first or the last? Then check the TV "
        "distances and the findings that only run A gets.")


def sweep(preset: str) -> str:
    name = f"lr-x-act-{preset}"
    return _block(
        "Is the learning rate the setting that matters, rather than the activation? Sweep it, then render this "
        "page for your sweep.",
        [f"gradflow sweep --act relu,sigmoid --lr 0.1,0.01,0.001 --preset {preset} --name {name}",
         f"gradflow report --preset {preset} --page 7 -p sweep {name} --reports reports/{name}"],
        "Look for: which learning-rate changes the seeds tell apart, and whether any rate brings the sigmoid "
        "network off chance within the preset's epochs.")
