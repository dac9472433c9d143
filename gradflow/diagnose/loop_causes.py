"""Candidate causes about how the training loop is wired, for the ranked alternatives
(gradflow.diagnose.alternatives): which call is missing or out of order (optimizer.step(),
rec.step(), model.train()), what goes into NLLLoss, a learning-rate schedule stepped too often.
Each reads the cause its rule found (``evidence["cause"]``) and returns (score, one line of evidence).
"""
from __future__ import annotations

from .facts import Facts
from .finding import num
from .scores import AGAINST, FOR, NOT_SEEN, STRONG, UNKNOWN

WHOLE_MODEL = ("no_optimizer_step", "recorded_before_step")  # NOT_UPDATED's causes when no layer moves


def _stepped(W: dict) -> str:
    """The optimizers that stepped the model, in words: 'SGD (300 steps)'."""
    return ", ".join(f"{o['name']} ({o['steps']} steps)" for o in W["optimizers"])


def _of_layers(names, f) -> list[str]:
    """The parameter names among ``names`` that belong to the finding's modules themselves."""
    layers = set(getattr(f, "layers", None) or [f.layer])
    return [n for n in names or [] if n.rpartition(".")[0] in layers]


def one_layer_fixed(F: Facts, f):
    if f.evidence.get("cause") in WHOLE_MODEL:
        return AGAINST, "no layer moves, not only one"
    W = F.watch
    if W and W["optimizers"]:  # the Recorder saw which parameters the stepping optimizers hold
        left_out = _of_layers(W["not_in_optimizer"], f)
        if left_out:
            return STRONG, f"`{left_out[0]}` is in no parameter group of {_stepped(W)}"
        if W["not_in_optimizer_count"] == len(W["not_in_optimizer"]):  # the list is complete
            return AGAINST, f"{_stepped(W)} holds this layer's parameters"
    return FOR, "gradient present, weights fixed while other layers move"


def whole_model(cause: str, line: str, score: float = STRONG, stepped_elsewhere: bool | None = None):
    """NOT_UPDATED's whole-model causes, told apart by the rule (do the weights move between records?)
    and, when the Recorder watched the optimizers, by what stepped: nothing at all (``stepped_elsewhere``
    False: step() is never called) or only optimizers holding none of the model's parameters (True)."""
    def check(F: Facts, f):
        W = F.watch
        if f.evidence.get("cause") == cause == "no_optimizer_step" and W and stepped_elsewhere is not None:
            if W["optimizers"]:
                return AGAINST, f"{_stepped(W)} stepped this model's parameters"
            others = W["other_steps"]
            seen = (f"optimizers holding none of this model's parameters stepped {others} times" if others
                    else "no torch optimizer stepped while the Recorder was open")
            return (STRONG if bool(others) == stepped_elsewhere else AGAINST), seen
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


# A schedule that spends a quarter of the run below 1/1000 of its starting rate has stopped training
# (StepLR written for epochs, stepped per batch); a cosine to zero spends ~2 % there, by design.
LR_COLLAPSED_SHARE = 0.25


def lr_decayed(F: Facts, f):
    low = F.low_lr_share  # (steps, of steps) seen by the Recorder's optimizer watch; None: not seen
    if low:
        seen = (f"{F.lr}, below 1/1000 of its start in {low[0]} of {low[1]} steps" if low[0]
                else f"{F.lr}, never below 1/1000 of its start in {low[1]} steps")
    if f.evidence.get("cause") == "stalled":
        return STRONG, (f"the step per unit of gradient fell {num(f.evidence.get('drop'))}-fold from step "
                        f"{f.evidence.get('best_step')} to the end" + (f"; {seen}" if low else ""))
    if low is not None:
        return (STRONG if low[0] >= LR_COLLAPSED_SHARE * low[1] else AGAINST), seen
    if f.code != "UPDATE_RATIO" and "UPDATE_RATIO" in F.codes:
        return UNKNOWN, "see the update:data ratio finding"
    return AGAINST, "the step size did not collapse during the run"


def zero_lr(F: Facts, f):
    if f.evidence.get("cause") == "recorded_before_step":
        return AGAINST, "the weights do change, between records"
    W = F.watch
    if W and not W["optimizers"]:
        return AGAINST, "no optimizer stepped this model's parameters"
    if W:
        zero = [n for o in W["optimizers"] for n in o["zero_lr"]]
        zero = zero if f.evidence.get("cause") in WHOLE_MODEL else _of_layers(zero, f)
        if zero:
            return STRONG, f"`{zero[0]}` is in a parameter group with lr=0"
        return AGAINST, f"every group of {_stepped(W)} that holds it has lr > 0"
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


GAP_EVIDENCE = {"cleared": "no trainable layer had a gradient at rec.step()",
                "unused": "the layer never ran in a training forward pass",
                "no_grad": "the layer ran with gradients turned off inside forward()",
                "detached": "the layer ran with gradients on, and later layers got gradients"}


def gradient_gap(cause: str):
    """NO_GRADIENT's causes: where the layer ran tells them apart (structure._gradient_gap)."""
    def check(F: Facts, f):
        found = f.evidence.get("cause")
        if found is None:  # a finding from before the cause was recorded
            return UNKNOWN, "not recorded"
        # the four are exclusive: where the layer ran tells which one it is
        # (the evidence is said once, by the cause it supports; the others point at it)
        return (STRONG, GAP_EVIDENCE[cause]) if found == cause else (NOT_SEEN, "where the layer ran rules it out")
    check.__name__ = f"gap_{cause}"
    return check


def accumulating(F: Facts, f):
    """DIVERGING, EXPLODING_GRADIENT: a .grad never cleared adds every step's gradient to the earlier ones,
    a step size that grows every step whatever the learning rate: when the Recorder saw it, it comes first
    (a healthy SGD lr=0.01 diverges from it alone)."""
    if "ACCUMULATING_GRADIENT" in F.codes:
        return STRONG, "ACCUMULATING_GRADIENT is also found: .grad is never cleared, so the steps grow every step"
    return AGAINST, "no ACCUMULATING_GRADIENT finding (gradients are cleared)"
