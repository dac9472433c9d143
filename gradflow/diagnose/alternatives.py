"""Ranked alternative causes: for each finding, the causes its symptom can have, each weighed by
what this run's evidence says for or against it, the likeliest first.

A symptom-to-cause diagnosis is honest only when it offers alternatives (Humbatova et al.,
EMSE 2025, re-evaluating AUTOTRAINER, DeepDiagnosis and others: the best found the one ground-truth
cause in a third of cases). So each code of ``codes.CODES`` lists its candidate
causes in the order they are usually met (the prior), and each candidate is scored from the run:

- ``supported`` (score >= 0.7): the run shows it (a sigmoid layer whose derivative is at most 0.25, a learning
  rate whose update:data ratio is 1e-6);
- ``possible`` (0.4-0.7): nothing recorded speaks for or against it;
- ``unlikely`` (< 0.4): the run shows the opposite (ReLU everywhere, a healthy update:data ratio).

Candidates sort by score, ties in prior order. Every line cites the number it rests on. The checks
on the training loop's wiring (missing calls, NLLLoss's input, a schedule stepped per batch) live in
``loop_causes``, those on the learning rate, the weight decay and the initial weight scale in
``scale_causes``, those on the data (input scale, target range, batch order) in ``data_causes``, those
on the model itself (activations, dropout, output op, initial values) in ``model_causes``, those on
switched-off ReLU units in ``unit_causes``; the scores and verdicts in ``scores``.
"""
from __future__ import annotations

from .data_causes import (
    input_cause,
    labels_mismatch,
    targets_in_range,
    tiny_inputs,
    unnormalized,
    unnormalized_fast,
    unshuffled,
)
from .evidence import Evidence
from .facts import Facts
from .finding import Finding
from .fixes import NONFINITE_INPUTS
from .loop_causes import (
    accumulating,
    eval_after_start,
    gradient_gap,
    lr_decayed,
    nll_cause,
    one_layer_fixed,
    whole_model,
    zero_lr,
)
from .model_causes import (
    SYMMETRIC_CAUSE,
    bounded_activation,
    constant_init,
    dropout_high,
    dropout_scaling,
    keep_prob_as_p,
    no_normalisation,
    output_bounded,
    relu_family,
    softmax_before_ce,
    started_constant,
    strong_regularisation,
)
from .nonfinite import SKIPPED_WARN_SHARE
from .scale_causes import (
    high_lr,
    l2_in_loss,
    large_init,
    low_lr,
    rate_for_layer,
    small_init,
    strong_weight_decay,
    tiny_clipping,
)
from .scores import AGAINST, FOR, RULED_OUT, STRONG, UNKNOWN, verdict
from .unit_causes import knocked_out, off_from_start

# --------------------------------------------------------------------------- candidate causes
# Each returns (score, one line of evidence). They read Facts and the finding itself.


def nan_weights(F: Facts, f):
    """A net whose weights turned NaN cannot learn, whatever made them NaN: that comes first, and NONFINITE
    ranks what made it (raw pixels, a hand-written exp, a rate too high)."""
    if "NONFINITE" in F.codes:
        return STRONG, "NONFINITE is also found: from its first NaN/inf on, every output is NaN"
    return RULED_OUT, "every recorded value is finite"


# first in NOT_LEARNING where it applies; ruled out, it sorts last
NAN_WEIGHTS = ("NaN or inf weights (see NONFINITE)", nan_weights)


def found(code: str, what: str):
    def check(F: Facts, f):
        return (FOR, f"{code} is also found") if code in F.codes else (AGAINST, f"no {code} finding ({what})")
    check.__name__ = f"found_{code.lower()}"
    return check


def plateau_patience(F: Facts, f):
    if "PLATEAU_STOP" in F.codes:
        return STRONG, "PLATEAU_STOP: early stopping ended the run while its loss was still falling"
    patience = F.ev.run_config.get("patience")
    # NOT_LEARNING from the validation accuracy counts each seed's epochs: a seed that trained every
    # epoch the recipe allows was not stopped at all, and one that stopped without a sign of moving
    # (the PLATEAU_STOP rule looked) was stuck, not cut short
    counted = [i["evidence"].get("epochs") for i in f.instances or [{"evidence": f.evidence}]]
    most = F.ev.run_config.get("max_epochs")
    if "plateau_stop" in f.evidence and most and counted and None not in counted:
        if min(counted) >= int(most):
            return AGAINST, f"{'every seed' if len(counted) > 1 else 'it'} trained all {most} epochs: early stopping never ended it"
        return AGAINST, (f"early stopping ended it after {min(counted)} epochs (patience {patience}), with neither "
                         "a falling loss nor a growing first-layer gradient: stuck, not cut short")
    return (UNKNOWN if patience else AGAINST), (f"early stopping patience {patience} epoch{'s' if patience != 1 else ''}" if patience
                                                 else "no early stopping recorded")


def nonfinite_in_backward(F: Facts, f):
    made = f.evidence.get("created_by") or []
    return (STRONG if made else AGAINST), (f"created in the backward pass of the activation at {', '.join(made)}" if made
                                           else "not created inside an activation's backward pass")


def first_place(where: str):
    def check(F: Facts, f):
        w = str(f.evidence.get("where", ""))
        return (FOR if where in w else UNKNOWN), f"the first non-finite value is in the {w or 'unknown place'}"
    check.__name__ = f"first_in_{where}"
    return check


def stated(line: str, score: float = UNKNOWN):
    """A cause this recording cannot test: listed so the reader checks it, with the reason."""
    def check(F: Facts, f):
        return score, line
    check.__name__ = "stated"
    return check


OFF_FROM_START = ("units switched off from the start (a bias initialised far negative, or weights that make every "
                  "input negative)", off_from_start)


def skips_share(settling: bool):
    """SKIPPED_STEPS: a few skips are a scaler finding its scale; most of the steps, a model that overflows."""
    def check(F: Facts, f):
        share = float(f.evidence.get("share") or 0)
        few = share <= SKIPPED_WARN_SHARE
        return (FOR if few == settling else AGAINST), f"{100 * share:.0f} % of the steps skipped"
    check.__name__ = "skips_settling" if settling else "skips_overflow"
    return check


CAUSES = {
    "NO_DATA": [("rec.step() was never called inside the Recorder block", stated("no step recorded", FOR)),
                ("training ran outside the `with Recorder(...)` block", stated("no step recorded"))],
    "NONFINITE": [("an activation's backward creates NaN/inf (exp overflowing in an unused branch)", nonfinite_in_backward),
                  (NONFINITE_INPUTS,
                   unnormalized),
                  ("a learning rate so high the weights overflow", high_lr),
                  ("too-large initialisation", large_init),
                  ("a log or division of zero in the loss", first_place("loss"))],
    "SKIPPED_STEPS": [("a gradient scaler calibrating its float16 scale", skips_share(settling=True)),
                      ("a layer or the loss overflows float16 (or makes NaN) on most batches", skips_share(settling=False))],
    "UNNORMALIZED_INPUT": [("raw 0-255 pixels (no /255 or standardisation)", input_cause("large", 100)),
                           ("pixels divided by 255 twice (ToTensor() had already scaled them)", input_cause("tiny", 1 / 255)),
                           ("features on their own scale, not standardised", input_cause(None, None))],
    "VANISHING_GRADIENT": [("inputs scaled down to almost nothing (divided by 255 twice)", tiny_inputs),
                           ("a bounded activation with a small derivative", bounded_activation),
                           ("saturated units pass no gradient", found("SATURATION", "units are not saturated")),
                           ("too-small initialisation", small_init),
                           ("weight decay so strong it pulls the weights to zero", strong_weight_decay),
                           ("dead ReLU units cut the path", found("DEAD_UNITS", "no layer with many dead units"))],
    "EXPLODING_GRADIENT": [SYMMETRIC_CAUSE,
                           ("too high a learning rate", high_lr),
                           ("unnormalised inputs", unnormalized),
                           ("too-large initialisation", large_init),
                           ("gradients accumulate (no zero_grad)", accumulating),
                           ("a parameter initialised to a constant (norm scale, zero embedding), "
                            "whose std is no scale", constant_init)],
    "UPDATE_RATIO": [SYMMETRIC_CAUSE,
                     ("a learning-rate schedule that decayed to almost nothing (stepped per batch?)", lr_decayed),
                     ("inputs scaled down to almost nothing (divided by 255 twice)", tiny_inputs),
                     ("gradients clipped to a tiny norm every step (clip_grad_norm_)", tiny_clipping),
                     ("the learning rate is off for this layer", rate_for_layer),
                     ("unnormalised inputs make every update large", unnormalized_fast),
                     ("its gradient vanishes", found("VANISHING_GRADIENT", "the gradient reaches the input end")),
                     ("the layer is not in the optimizer", found("NOT_UPDATED", "the layer's weights change")),
                     ("a parameter initialised to a constant (a norm scale, a gain of ones)", constant_init)],
    "ACCUMULATING_GRADIENT": [("optimizer.zero_grad() is missing from the loop", stated("gradient norm grows step after step", FOR)),
                              ("deliberate gradient accumulation with too many steps", stated("check the loop"))],
    "NOT_UPDATED": [("the layer was left out of the optimizer's parameter groups", one_layer_fixed),
                    ("optimizer.step() is never called", whole_model("no_optimizer_step",
                                                                     "the weights never change, not even between records",
                                                                     stepped_elsewhere=False)),
                    ("the optimizer holds another model's parameters (the model was created again after it)",
                     whole_model("no_optimizer_step", "the weights never change, not even between records", FOR,
                                 stepped_elsewhere=True)),
                    ("rec.step() is called before optimizer.step()", whole_model("recorded_before_step",
                                                                                 "the weights change between records, never before rec.step()")),
                    ("its param group has lr=0 or it is frozen on purpose", zero_lr)],
    "NO_GRADIENT": [("gradients cleared before rec.step() (zero_grad before the step)", gradient_gap("cleared")),
                    ("the layer is not used in forward", gradient_gap("unused")),
                    ("the graph is cut after the layer (.detach(), .data, a NumPy round trip)", gradient_gap("detached")),
                    ("the layer runs under torch.no_grad() in forward", gradient_gap("no_grad"))],
    "ONLY_NORM_TRAINABLE": [("the backbone was frozen by mistake (requires_grad_(False) on everything)",
                             stated("only normalisation scales and shifts train", FOR)),
                            ("fine-tuning only the norms on purpose", stated("fine if intended"))],
    "SATURATION": [SYMMETRIC_CAUSE,
                   ("unnormalised inputs push pre-activations far out", unnormalized),
                   ("too-large initialisation", large_init),
                   ("too high a learning rate", high_lr),
                   ("no normalisation before the bounded activation", no_normalisation)],
    "DEAD_UNITS": [SYMMETRIC_CAUSE,
                   OFF_FROM_START,
                   ("inputs scaled down to almost nothing (divided by 255 twice)", tiny_inputs),
                   ("weight decay so strong it pulls the weights to zero", strong_weight_decay),
                   ("ReLU units pushed negative stay there", relu_family),
                   ("heavy dropout (see HIGH_DROPOUT) makes each unit's updates large and noisy", dropout_scaling),
                   ("too high a learning rate knocked units out", knocked_out),
                   ("gradients accumulate (no zero_grad)", accumulating),
                   ("unnormalised inputs", unnormalized),
                   ("too-large initialisation", large_init)],
    "EVAL_MODE": [("model.eval() for validation, model.train() not called again", eval_after_start(FOR, AGAINST)),
                  ("model.eval() before the training loop", eval_after_start(AGAINST, FOR)),
                  ("eval mode on purpose (fixed batch-norm statistics)",
                   stated("no layer is frozen: the statistics stay fixed while the weights train"))],
    "HIGH_DROPOUT": [("a keep-probability passed as p (TensorFlow 1 habit)", keep_prob_as_p),
                     ("strong regularisation on purpose", strong_regularisation)],
    "BOUNDED_OUTPUT": [("softmax before a loss that applies log-softmax itself", softmax_before_ce),
                       ("an output activation left on the logits (tanh/sigmoid)", output_bounded),
                       ("a regression/autoencoder whose targets lie in that range", targets_in_range)],
    "NOT_LOG_PROBABILITIES": [("log_softmax forgotten between the model and NLLLoss", nll_cause("raw_outputs")),
                              ("softmax used where log_softmax was meant", nll_cause("probabilities"))],
    "LOSS_BROADCAST": [("the output keeps a trailing dimension of 1 the targets lack (or the other way round)",
                        lambda F, f: (STRONG, f"output {tuple(f.evidence.get('output_shape') or ())}, targets "
                                              f"{tuple(f.evidence.get('target_shape') or ()) or 'of another shape'}"))],
    "UNSHUFFLED_DATA": [("DataLoader(shuffle=False) (its default) on a dataset stored class by class",
                         lambda F, f: (STRONG, f"{f.evidence.get('narrow')} of {f.evidence.get('batches')} recorded "
                                               f"batches hold at most {f.evidence.get('most_classes')} classes")),
                        ("a sampler that groups classes on purpose (curriculum, class-balanced blocks)",
                         stated("check the loader's sampler", UNKNOWN))],
    "TARGET_OUT_OF_RANGE": [("the targets are not scaled to the output's range", stated("targets outside the reachable range", FOR)),
                            ("the wrong output activation for these targets", output_bounded)],
    "SYMMETRIC_UNITS": [("constant or zero initialisation (nn.init.constant_ / zeros_ on the weights)", started_constant),
                        ("units copied from one another (e.g. one tensor repeated to build the weight)",
                         stated("check how the weights were set", UNKNOWN))],
    "NOT_LEARNING": [NAN_WEIGHTS, SYMMETRIC_CAUSE,
                     # a .grad never cleared blows the steps up at any rate: first when seen (review b01)
                     ("gradients accumulate (no zero_grad)", accumulating),
                     # first when UNSHUFFLED_DATA is found (it wins the tie with a high rate's STRONG), else last
                     ("training batches ordered by class (no shuffling)", unshuffled),
                     ("inputs scaled down to almost nothing (divided by 255 twice)", tiny_inputs),
                     ("weight decay so strong it pulls the weights to zero", strong_weight_decay),
                     ("vanishing gradients", found("VANISHING_GRADIENT", "the gradient reaches the input end")),
                     ("a bounded function on the logits", output_bounded),
                     ("gradients clipped to a tiny norm every step (clip_grad_norm_)", tiny_clipping),
                     ("too low a learning rate", low_lr),
                     ("too high a learning rate", high_lr),
                     ("too-large initialisation", large_init),
                     ("unnormalised inputs", unnormalized),
                     ("dead units", found("DEAD_UNITS", "no layer with many dead units")),
                     ("saturated units", found("SATURATION", "units are not saturated")),
                     ("dropout drops most units", dropout_high),
                     ("early stopping ended it on its initial plateau", plateau_patience),
                     ("layers that never update", found("NOT_UPDATED", "every recorded layer moves")),
                     ("a learning-rate schedule that decayed to almost nothing (stepped per batch?)", lr_decayed),
                     # possible only when nothing else is wrong: healthy gradients and updates, the loss at chance
                     ("the labels do not match the inputs (a shuffled or misaligned label array)", labels_mismatch)],
    "DIVERGING": [("too high a learning rate", high_lr),
                  ("unnormalised inputs", unnormalized),
                  ("too-large initialisation", large_init),
                  ("gradients accumulate (no zero_grad)", accumulating)],
    "PLATEAU_STOP": [("too little patience for a slow start", plateau_patience),
                     ("a slow start from vanishing gradients", found("VANISHING_GRADIENT", "the gradient reaches the input end")),
                     ("a bounded activation with a small derivative", bounded_activation),
                     ("too low a learning rate", low_lr)],
    "RECORDER_ERROR": [("a statistic the recorder cannot compute for this layer type",
                        stated("training itself was not affected", FOR))],
}


L2_BY_HAND = "an L2 penalty on the weights added to the loss by hand, weighted too strongly"

# A finding whose rule tells several kinds of one symptom apart (``evidence["cause"]``) can have its own
# list. SATURATION of a ReLU-family layer is its units switched off (the negative half is the flat one):
# no normalisation "before the bounded activation", but a far-negative bias or a rate that knocked them out.
KIND_CAUSES = {
    # a layer rewritten too fast: a decayed schedule, tiny inputs, clipping, a vanishing gradient or a layer left
    # out of the optimizer all make steps small, never large; listed "unlikely" they only lengthen the list
    ("UPDATE_RATIO", "large"): [SYMMETRIC_CAUSE,
                                ("unnormalised inputs make every update large", unnormalized_fast),
                                ("the learning rate is off for this layer", rate_for_layer),
                                ("weight decay so strong it pulls the weights to zero", strong_weight_decay),
                                ("a parameter initialised to a constant (a norm scale, a gain of ones)", constant_init)],
    # every layer's weights shrank towards zero (collapse.py): what pulls all of them down at once
    ("NOT_LEARNING", "weights_collapsed"): [NAN_WEIGHTS,
                                            ("weight decay so strong it pulls the weights to zero", strong_weight_decay),
                                            (L2_BY_HAND, l2_in_loss),
                                            ("too high a learning rate", high_lr)],
    ("SATURATION", "one_sided"): [SYMMETRIC_CAUSE,
                                  OFF_FROM_START,
                                  ("too high a learning rate knocked the units out", knocked_out),
                                  ("gradients accumulate (no zero_grad)", accumulating),
                                  ("unnormalised inputs push pre-activations far out", unnormalized),
                                  ("too-large initialisation", large_init)],
}


def causes_of(f) -> list:
    """The candidate causes of ``f``'s symptom: its kind's own list, else its code's."""
    return KIND_CAUSES.get((f.code, f.evidence.get("cause")), CAUSES.get(f.code, []))


def likely_causes(f, n: int = 3, evidence: bool = True) -> str:
    """The first ``n`` ranked causes as one line: "1. cause [supported: evidence]; 2. ...".
    ``f``: a Finding or its dict."""
    alts = (f.alternatives if isinstance(f, Finding) else f.get("alternatives")) or []
    return "; ".join(f"{i}. {a['cause']} [{a['verdict']}" + (f": {a['evidence']}]" if evidence else "]")
                     for i, a in enumerate(alts[:n], 1))


def rank_causes(f: Finding, ev: Evidence, codes: set, facts: Facts | None = None) -> list[dict]:
    """The candidate causes of ``f``'s symptom, likeliest first: {cause, verdict, score, evidence}."""
    F = facts or Facts(ev, codes)
    ranked = []
    for prior, (cause, check) in enumerate(causes_of(f)):
        try:
            score, line = check(F, f)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:  # a damaged recording
            score, line = UNKNOWN, f"could not be weighed ({type(e).__name__})"
        ranked.append((-score, prior, {"cause": cause, "verdict": verdict(score), "score": round(score, 2),
                                       "evidence": line}))
    return [r[2] for r in sorted(ranked, key=lambda r: r[:2])]

