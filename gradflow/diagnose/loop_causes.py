"""Candidate causes about how the training loop is wired, for the ranked alternatives
(gradflow.diagnose.alternatives): which call is missing or out of order (optimizer.step(),
rec.step(), model.train()), what goes into NLLLoss, a learning-rate schedule stepped too often.
Each reads the cause its rule found (``evidence["cause"]``) and returns (score, one line of evidence).
"""
from __future__ import annotations

from .facts import Facts
from .finding import num
from .scores import AGAINST, FOR, STRONG, UNKNOWN

WHOLE_MODEL = ("no_optimizer_step", "recorded_before_step")  # NOT_UPDATED's causes when no layer moves


def one_layer_fixed(F: Facts, f):
    if f.evidence.get("cause") in WHOLE_MODEL:
        return AGAINST, "no layer moves, not only one"
    return FOR, "gradient present, weights fixed while other layers move"


def whole_model(cause: str, line: str, score: float = STRONG):
    """NOT_UPDATED's two whole-model causes, told apart by the rule (do the weights move between records?)."""
    def check(F: Facts, f):
        if f.evidence.get("cause") == cause:
            return score, line
        if f.evidence.get("cause") in WHOLE_MODEL:
            return AGAINST, "the weights " + ("do" if cause == "no_optimizer_step" else "never") + " change between records"
        return AGAINST, "other layers' weights change"
    check.__name__ = cause
    return check


def nll_cause(cause: str):
    """NOT_LOG_PROBABILITIES: what the rule saw go into NLLLoss decides between its two causes."""
    def check(F: Facts, f):
        saw = f.evidence.get("cause")
        line = ("softmax probabilities go into NLLLoss" if saw == "probabilities" else
                f"raw outputs up to {num(f.evidence.get('output_max'))} go into NLLLoss")
        return (STRONG if saw == cause else AGAINST), line
    check.__name__ = f"nll_{cause}"
    return check


def lr_decayed(F: Facts, f):
    if f.evidence.get("cause") == "stalled":
        return STRONG, (f"the step per unit of gradient fell {num(f.evidence.get('drop'))}-fold from step "
                        f"{f.evidence.get('best_step')} to the end")
    return AGAINST, "the step size did not collapse during the run"


def zero_lr(F: Facts, f):
    if f.evidence.get("cause") == "recorded_before_step":
        return AGAINST, "the weights do change, between records"
    return UNKNOWN, "check the optimizer's groups"


def eval_after_start(after: float, from_start: float):
    """EVAL_MODE: eval mode that began after training mode points to a validation pass left on."""
    def check(F: Facts, f):
        steps, start = f.evidence.get("eval_steps") or [], f.evidence.get("from_start")
        if start:
            return from_start, "eval mode from the first recorded step"
        return after, f"training mode at first, eval mode from step {steps[0]}" if steps else "eval mode later on"
    check.__name__ = "eval_after_start"
    return check
