"""Candidate causes about the data fed to the model, for the ranked alternatives
(gradflow.diagnose.alternatives): the inputs' scale (0-255 pixels, pixels divided by 255 twice),
the targets' range against a bounded output, the batches' order (one class at a time).
Each returns (score, one line of evidence).
"""
from __future__ import annotations

from .facts import Facts
from .finding import num
from .scale_causes import HEALTHY_UPDATE
from .scores import AGAINST, FOR, NOT_SEEN, RULED_OUT, SELDOM, STRONG, UNKNOWN


def unnormalized(F: Facts, f):
    r = F.input_scale
    if r is not None and r["scale"] == "tiny":
        return AGAINST, f"the inputs are tiny, not large (largest {num(r['max'])})"
    if "UNNORMALIZED_INPUT" in F.codes:
        return STRONG, "UNNORMALIZED_INPUT is also found"
    if r is None:
        return UNKNOWN, "the input range was not recorded"
    return AGAINST, f"inputs look normalised (|mean| {num(r['mean'])}, std {num(r['std'])})"


def tiny_inputs(F: Facts, f):
    """Inputs scaled down to almost nothing: every example looks alike to the first layer, whose weight
    gradient (proportional to the input) is tiny, and a unit is on or off for all examples at once."""
    r = F.input_scale
    if r is None:
        return UNKNOWN, "the input range was not recorded"
    if r["scale"] == "tiny":
        return STRONG, f"inputs in [{num(r['min'])}, {num(r['max'])}]: divided by 255 twice?"
    # a seldom bug, measured directly: listed below the unlikely causes that share its symptom
    return NOT_SEEN, f"inputs reach {num(max(abs(r['min']), abs(r['max'])))}"


def input_cause(scale: str | None, bound: float | None):
    """UNNORMALIZED_INPUT's causes: 0-255 pixels (largest input above ``bound``), pixels scaled twice
    (largest at most ``bound``), or any feature scale (scale None: possible either way)."""
    def check(F: Facts, f):
        found, top = f.evidence.get("cause", "large"), f.evidence.get("max") or 0
        line = f"inputs in [{num(f.evidence.get('min'))}, {num(top)}], std {num(f.evidence.get('std'))}"
        if scale is None:
            return UNKNOWN, line
        if found != scale:
            return NOT_SEEN, line
        fits = top > bound if scale == "large" else top <= bound * 1.001
        return (STRONG if fits else FOR), line
    check.__name__ = f"input_{scale}"
    return check


def unnormalized_fast(F: Facts, f):
    """UPDATE_RATIO: raw inputs make activations, gradients and so updates large at any rate."""
    if f.evidence.get("cause") != "large":
        return AGAINST, "the layer moves too little, not too much"
    return unnormalized(F, f)


def unshuffled(F: Facts, f):
    """NOT_LEARNING: a loader feeding one class at a time leaves a model that answers the last class seen."""
    if "UNSHUFFLED_DATA" in F.codes:
        return STRONG, "UNSHUFFLED_DATA: the recorded batches hold one or two classes each"
    if F.ev.run_config.get("lr"):  # gradflow's own trainer
        return RULED_OUT, "gradflow's trainer draws each seed's own random order every epoch"
    told = ((F.ev.summary or {}).get("targets") or {}).get("batch_classes")
    return (RULED_OUT, "the recorded batches mix classes") if told else \
        (SELDOM, "no class labels passed to rec.step(targets=...)")


def targets_in_range(F: Facts, f):
    kind = f.evidence.get("loss") or ((F.ev.summary or {}).get("loss") or {}).get("kind")
    if f.evidence.get("cause") == "fits_targets":
        lo, hi = f.evidence.get("target_min"), f.evidence.get("target_max")
        return STRONG, f"the targets lie in [{lo:.3g}, {hi:.3g}], inside the output's range (loss {kind})"
    ce = kind and "cross_entropy" in str(kind)
    return (AGAINST if ce else FOR), (f"the loss is {kind}: it wants raw logits" if ce else
                                      f"loss {kind or 'unknown'}: fine if the targets lie in the output's range")


# What a net with labels that do not belong to its inputs shows: nothing wrong in the gradients or
# the updates, yet the loss stays at ln(classes), because what one batch teaches the next one undoes.
GRADIENT_TROUBLE = {"VANISHING_GRADIENT", "EXPLODING_GRADIENT", "UPDATE_RATIO", "SATURATION", "DEAD_UNITS",
                    "SYMMETRIC_UNITS", "NONFINITE", "NOT_UPDATED", "NO_GRADIENT", "ACCUMULATING_GRADIENT"}


def labels_mismatch(F: Facts, f):
    """NOT_LEARNING: labels shuffled apart from their inputs (or read from another file) leave the loss at
    chance while gradients and updates are healthy. Nothing recorded can show it, so at most possible."""
    if F.ev.run_config.get("lr"):  # gradflow's own trainer
        return RULED_OUT, "gradflow's trainer keeps each example with its label"
    trouble = sorted(GRADIENT_TROUBLE & set(F.codes))
    if trouble:
        return NOT_SEEN, f"{trouble[0]} is also found: the gradients explain it"
    u = F.update_ratio
    if u is None:
        return NOT_SEEN, "the update:data ratio was not recorded"
    line = f"{F.lr}: median update:data ratio {num(u)} (healthy ~1e-3)"
    if not HEALTHY_UPDATE[0] <= u <= HEALTHY_UPDATE[1]:
        return NOT_SEEN, line
    told = (F.ev.summary or {}).get("targets")
    # the recording cannot pair an input with its label; passing the labels at least shows their classes per batch
    # and their range (float or one-hot targets, indices off by one), so say what targets= would add when missing
    ask = "" if told else ("; rec.step(loss=loss, targets=y) would show the labels' range and classes per batch "
                           "(float or one-hot targets, indices off by one, one class per batch)")
    return UNKNOWN, (f"{line} and no gradient finding, yet the loss stays at chance: the model moves, but what one "
                     f"batch teaches the next one undoes{ask}")
