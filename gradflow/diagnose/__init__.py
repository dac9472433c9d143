"""Diagnosis: rules that turn one run's evidence into plain-language findings.

``diagnose(x)`` builds an :class:`Evidence` (from a Recorder, a loaded recording or its directory,
or a stored run) and runs every rule of ``RULES`` on it, in order. A rule is a function
``Evidence -> list[Finding]``; its thresholds sit beside it with the reason for their values.
To add a rule, write it in the module of its subject and list it here.
"""
from __future__ import annotations

import pandas as pd

from . import batches, collapse, gradients, nonfinite, optimization, outputs, structure, training, units
from .evidence import Evidence
from .finding import SEVERITIES, Finding, format_findings
from .grouping import group

RULES = [
    structure.no_data,  # NO_DATA
    nonfinite.nonfinite,  # NONFINITE
    nonfinite.skipped_steps,  # SKIPPED_STEPS (a gradient scaler's skipped steps, kept apart from NONFINITE)
    gradients.gradient_flow,  # VANISHING_GRADIENT, EXPLODING_GRADIENT (first vs last layer)
    gradients.exploding_scale,  # EXPLODING_GRADIENT (gradient vs weights, growth over time)
    gradients.update_ratio,  # UPDATE_RATIO
    units.saturation,  # SATURATION
    units.dead_units,  # DEAD_UNITS
    units.symmetric_units,  # SYMMETRIC_UNITS (constant or zero initialisation: every unit a copy)
    structure.unnormalized_input,  # UNNORMALIZED_INPUT
    batches.unshuffled_data,  # UNSHUFFLED_DATA (class labels that arrive one class at a time)
    training.loss_not_learning,  # NOT_LEARNING (loss at chance and flat; silent when accuracy says it)
    training.diverging,  # DIVERGING (loss far above its start / chance)
    outputs.bounded_output,  # BOUNDED_OUTPUT, TARGET_OUT_OF_RANGE
    outputs.broadcast_loss,  # LOSS_BROADCAST (an output (N, 1) against targets (N,) in MSE/L1)
    structure.high_dropout,  # HIGH_DROPOUT
    structure.eval_mode,  # EVAL_MODE
    structure.no_gradient,  # NO_GRADIENT
    optimization.not_updated,  # NOT_UPDATED
    optimization.stalled_updates,  # UPDATE_RATIO (the learning rate decayed to nothing)
    optimization.accumulating_gradient,  # ACCUMULATING_GRADIENT
    optimization.only_norm_trainable,  # ONLY_NORM_TRAINABLE
    structure.recorder_error,  # RECORDER_ERROR
    training.accuracy_not_learning,  # NOT_LEARNING (validation accuracy at chance)
    collapse.weights_collapsed,  # NOT_LEARNING (every layer's weights shrank towards zero: weight decay)
    training.plateau_stop,  # PLATEAU_STOP
]


def diagnose(obj, metrics: pd.DataFrame | None = None, num_classes: int | None = None,
             grouped: bool = True) -> list[Finding]:
    """Findings for a Recorder, a loaded recording (or its directory), a stored run, or an Evidence;
    one per cause (grouped across seeds and layers, with ranked alternative causes), most severe first.

    metrics     -- per-epoch metrics (seed, epoch, train_loss, val_acc, ...) when ``obj`` has none
    num_classes -- for the chance levels; default from the run config / model, else 10
    grouped     -- False: the rules' per-instance findings (one per member/seed and layer), unmerged
    """
    evidence = Evidence.of(obj, metrics, num_classes)
    findings = [finding for rule in RULES for finding in rule(evidence)]
    if grouped:
        return group(findings, evidence)
    return sorted(findings, key=Finding.sort_key)


__all__ = ["RULES", "SEVERITIES", "Evidence", "Finding", "diagnose", "format_findings"]
