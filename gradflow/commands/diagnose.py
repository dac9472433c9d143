"""``gradflow diagnose``: the findings of a stored run or of a recording saved from a user's own loop,
one per cause (grouped across seeds and layers) with its likely causes ranked by the run's evidence.

It says when it cannot know: with no recording, or one that holds no recorded step, the command
prints "cannot diagnose: ..." and exits with status 3, never "nothing unusual" (the absence of
data is not health). Findings the metrics alone support (a run trained with ``--record off``) are
still printed above that line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

CANNOT_DIAGNOSE = 3  # exit status: the input holds no gradient data to judge


def add_arguments(d) -> None:
    d.add_argument("run", help="run name (see `gradflow runs`), run folder, or a folder written by Recorder.save()")
    d.add_argument("--json", action="store_true",
                   help="the findings as JSON: one object per cause, as findings.json stores them "
                        "(seeds, layers, instances, ranked alternatives)")
    d.add_argument("--out", default=None, metavar="DIR", help="runs folder (default: $GRADFLOW_RUNS or ./checkpoints)")


def _recorded_steps(recording) -> int:
    """How many steps a recording holds (0 for a missing or empty one)."""
    if recording is None:
        return 0
    scalars = recording.tables()["scalars"]
    return int(scalars["step"].nunique()) if len(scalars) else 0


def gather(run_arg: str, runs_dir=None):
    """(findings, why not) for a run or recording; ``why not`` is None when the gradient flow was judged."""
    from ..paths import check_input_dir
    if runs_dir is not None:
        check_input_dir(runs_dir)
    from ..diagnose import diagnose
    from ..recording import SUMMARY_FILE, load_recording
    from ..store import load_run
    path = Path(run_arg)
    if path.exists() and not path.is_dir():  # a file (or device) is neither; a run name is never taken for one
        raise ValueError(f"{path} is a file, not a run: give a run name (see `gradflow runs`), a run folder or a "
                         f"folder written by Recorder.save() (it holds {SUMMARY_FILE})")
    if (path / SUMMARY_FILE).is_file():  # a recording saved from the user's own loop (Recorder.save)
        recording = load_recording(path)
        if not _recorded_steps(recording):
            return [], (f"recording {path} holds no recorded step (call rec.step(loss=loss) once per training "
                        "step, after optimizer.step(), inside the `with Recorder(...)` block)")
        return diagnose(recording), None
    if path.is_dir() and not (path / "config.json").is_file() and not (path / "manifest.json").is_file():
        raise ValueError(f"{path} is neither a gradflow run (config.json is missing) nor a recording "
                         f"({SUMMARY_FILE} is missing; Recorder.save(directory) writes one)")
    run = load_run(run_arg, runs_dir)  # a damaged run stops here, naming its bad file
    findings = diagnose(run)
    if run.recordings is None:
        how = ("it was trained with --record off" if run.config["run"].get("record") == "off"
               else "it has no recordings/ folder")
        return findings, (f"run {run.name} has no gradient recording ({how}); "
                          "train it again with --record default --overwrite to record one")
    if not _recorded_steps(run.recordings):
        return findings, f"run {run.name}'s recording holds no recorded step"
    return findings, None


def run(args) -> int:
    from ..diagnose import format_findings
    findings, why_not = gather(args.run, args.out)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, default=str))
    elif findings or why_not is None:
        if why_not is not None:
            print("From the metrics alone:")
        print(format_findings(findings))
    if why_not is not None:
        print(f"gradflow: cannot diagnose the gradient flow: {why_not}", file=sys.stderr)
        return CANNOT_DIAGNOSE
    return 0
