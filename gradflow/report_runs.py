"""Which stored runs each report reads, and the command that trains the missing ones.

Rendering trains nothing (gradflow/report.py): before a notebook runs, its runs are looked up in
the run store by name, the names computed from the same configs `gradflow train` uses.
"""
from __future__ import annotations

from pathlib import Path

ALL_SIX = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish")  # config.TUTORIAL_ACTIVATIONS, no torch import


def _train_command(preset: str, out: str, acts=ALL_SIX, seeds=None, max_epochs=None, case_studies=False) -> str:
    where = "" if out == "checkpoints" else f" --out {out}"
    if case_studies:
        return f"gradflow train --case-studies --preset {preset}{where}"
    act = "all" if tuple(acts) == ALL_SIX else " ".join(acts)
    extra = (f" --seeds {' '.join(map(str, seeds))}" if seeds else "") + (f" --max-epochs {max_epochs}" if max_epochs else "")
    return f"gradflow train --act {act} --preset {preset}{extra}{where}"


def case_study_runs(preset: str) -> list:
    """The case-study run configs of ``preset`` (gradflow.case_studies.run_configs), [] without that module."""
    try:
        from . import case_studies
    except ImportError:
        return []
    run_configs = getattr(case_studies, "run_configs", None)
    return list(run_configs(preset)) if run_configs else []


def needed_runs(spec, preset: str, params: dict, runs_shown: str = "checkpoints") -> dict[str, str]:
    """{run name: the command that trains it} for the stored runs ``spec`` reads with ``params``.

    Parameters the notebook validates itself (a bad activation name, a named run) are left to it:
    its first cell then says what is wrong, which is a clearer message than a missing run.
    """
    from .config import make_config
    from .notebook_helpers import as_list

    preset = params.get("preset", preset)
    needed: dict[str, str] = {}
    try:
        # as the page's first cell reads them: `-p activations relu,tanh -p seeds 42,43` arrive as text
        acts = [a for a, p in zip(spec.needs, spec.run_params) if not params.get(p)] if spec.run_params \
            else as_list(params.get("activations"), "activations") or list(spec.needs)
        seeds, max_epochs = as_list(params.get("seeds"), "seeds", int), params.get("max_epochs") or None
        for act in acts:
            config = make_config(act, preset, seeds=seeds or None, max_epochs=max_epochs)
            needed[config.run_name()] = _train_command(preset, runs_shown, acts if spec.needs == ALL_SIX else ALL_SIX,
                                                       seeds, max_epochs)
        if spec.case_studies:
            command = _train_command(preset, runs_shown, case_studies=True)
            needed.update({c.run_name(): command for c in case_study_runs(preset)})
    except (ValueError, TypeError):
        return {}
    return needed


def missing_runs(spec, preset: str, params: dict, runs: Path, runs_shown: str) -> dict[str, str]:
    from .store import exists

    return {name: cmd for name, cmd in needed_runs(spec, preset, params, runs_shown).items() if not exists(name, runs)}
