"""The suggestion follows the evidence: what to change in the code for each candidate cause, and a
finding's suggestion led by the fix of the cause this run's evidence ranks first.

A rule writes one suggestion per code (or per cause it tells apart itself), before any cause is
ranked. That advice is generic: "try a higher learning rate" for a net that does not learn is the
wrong way round when the run shows a learning rate of 10. The README's loop prints only the
suggestion, so once ``alternatives`` ranks the causes, the suggestion leads with the fix of the first
one when the evidence supports it (``supported``), or when it is clearly ahead of every other
(``possible`` while the rest are ``unlikely``; then the rule's own advice follows as the fallback).

``FIXES`` maps each cause (its text in ``alternatives.CAUSES``) to what to change, in the user's
words. ``OWN`` marks a cause the rule's own suggestion already answers (the rule found that very
cause, e.g. a keep-probability passed as p, with its numbers): the suggestion stays as the rule wrote it.
"""
from __future__ import annotations

from .scores import AGAINST, UNKNOWN

# NONFINITE: what overflowed and why, for a reader who has not seen the code
NONFINITE_INPUTS = ("unnormalised inputs make values overflow float32: raw pixels push an exp() past x = 88.7, "
                    "where exp(x) exceeds float32's largest number (3.4e38) and becomes inf, and inf - inf or "
                    "0 * inf is NaN; or the updates grow until a layer's outputs pass 3.4e38")

OWN = None  # the rule's own suggestion is this cause's fix (it found the cause itself, with its numbers)

# a "possible" cause leads only when every other cause is at most unlikely: e.g. 0.5 against 0.2
CLEAR_LEAD = UNKNOWN - AGAINST

LOWER_LR = ("Lower the learning rate (by 10x to start with); warm-up or gradient clipping "
            "(torch.nn.utils.clip_grad_norm_) keeps the first steps small.")
RAISE_LR = "Raise the learning rate (Adam usually wants 1e-4 to 1e-3; SGD 1e-2 to 1e-1 on normalised inputs)."
NORMALISE = ("Normalise the inputs: pixels to [0, 1] (x / 255) or [-1, 1], or standardise each feature with the "
             "training set's mean and std.")
TINY_INPUTS = ("Scale the inputs once: ToTensor() already gives [0, 1], so drop the extra / 255 (then Normalize "
               "with the training set's mean and std).")
LARGE_INIT = ("Initialise the weights at their usual scale: PyTorch's default, or nn.init.kaiming_uniform_ (ReLU) / "
              "xavier_uniform_ (tanh, sigmoid); not a larger std.")
SMALL_INIT = ("Initialise the weights at their usual scale: PyTorch's default, or nn.init.kaiming_uniform_ (ReLU) / "
              "xavier_uniform_ (tanh, sigmoid); not a smaller std.")
DECAY = ("Lower weight_decay (1e-4 to 1e-2 is usual; with Adam use AdamW) so that it no longer outweighs the "
         "gradient.")
CLIPPING = ("Raise clip_grad_norm_'s max_norm (1.0 is a common choice) or drop the clipping: a max_norm this small "
            "makes every step tiny whatever the learning rate.")
SCHEDULE = ("Step an epoch-based scheduler (StepLR, MultiStepLR, ExponentialLR) once per epoch, not once per batch, "
            "or give it a step size counted in batches; print optimizer.param_groups[0]['lr'] late in training.")
ZERO_GRAD = ("Call optimizer.zero_grad() once per step, before loss.backward(): without it every step adds its "
             "gradient to all earlier ones.")
SYMMETRIC = ("Initialise the weights at random (PyTorch's default, or nn.init.kaiming_uniform_ / xavier_uniform_): "
             "a constant or zero initialisation never breaks the symmetry between units.")
NOT_IN_OPTIMIZER = ("Build the optimizer on model.parameters() once the model is complete (or add the missing "
                    "layer's parameters to it).")
OFF_FROM_START = ("Look at how the layer before this ReLU is initialised: a bias filled with a large negative value "
                  "(or weights that make every input negative) switches every unit off before training starts and "
                  "no gradient turns it back on. Keep PyTorch's default bias, or use LeakyReLU so an off unit "
                  "still passes a gradient.")
LABELS = ("Check that inputs and labels still belong together: look at a few (input, label) pairs from the training "
          "loader by eye; shuffle inputs and labels with one index (x[idx], y[idx]), never each on its own.")


def see(code: str, what: str) -> str:
    """A cause that is another finding: fix that one first, its own suggestion says how."""
    return f"Fix {what} first: see the {code} finding, whose suggestion follows its own likely causes."


FIXES = {
    # whole run and data
    "rec.step() was never called inside the Recorder block": OWN,
    "training ran outside the `with Recorder(...)` block": "Run the training loop inside the `with gradflow.Recorder(model) as rec:` block.",
    "raw 0-255 pixels (no /255 or standardisation)": OWN,
    "pixels divided by 255 twice (ToTensor() had already scaled them)": OWN,
    "features on their own scale, not standardised": OWN,
    "inputs scaled down to almost nothing (divided by 255 twice)": TINY_INPUTS,
    "unnormalised inputs": NORMALISE,
    "unnormalised inputs make every update large": NORMALISE,
    "unnormalised inputs push pre-activations far out": NORMALISE,
    NONFINITE_INPUTS: NORMALISE,
    "training batches ordered by class (no shuffling)": "Shuffle the training data: DataLoader(..., shuffle=True) "
                                                        "(its default is False).",
    "the labels do not match the inputs (a shuffled or misaligned label array)": LABELS,
    # non-finite values, mixed precision
    "an activation's backward creates NaN/inf (exp overflowing in an unused branch)":
        "In a hand-written activation, clamp the argument of exp in the branch torch.where does not take "
        "(exp(min(x, 0)) - 1 for ELU), or use torch's built-in version.",
    "a learning rate so high the weights overflow": LOWER_LR,
    "a log or division of zero in the loss": "Use torch's fused losses (F.cross_entropy on logits, "
                                             "F.binary_cross_entropy_with_logits) or clamp what goes into log() and "
                                             "divisions (x.clamp_min(1e-7)).",
    "a gradient scaler calibrating its float16 scale": OWN,
    "a layer or the loss overflows float16 (or makes NaN) on most batches": OWN,
    # the learning rate, the weight decay, the initialisation
    "too high a learning rate": LOWER_LR,
    "too high a learning rate knocked units out": LOWER_LR,
    "too high a learning rate knocked the units out": LOWER_LR,
    "too low a learning rate": RAISE_LR,
    "the learning rate is off for this layer": OWN,  # the rule knows the direction and the layers it moves
    "a learning-rate schedule that decayed to almost nothing (stepped per batch?)": SCHEDULE,
    "weight decay so strong it pulls the weights to zero": DECAY,
    "an L2 penalty on the weights added to the loss by hand, weighted too strongly":
        "Lower the factor of the L2 term in the loss (or drop it and set the optimizer's weight_decay, 1e-4 to 1e-2).",
    "gradients clipped to a tiny norm every step (clip_grad_norm_)": CLIPPING,
    "too-small initialisation": SMALL_INIT,
    "too-large initialisation": LARGE_INIT,
    "every unit of a layer the same (constant or zero initialisation)": SYMMETRIC,
    # a ratio misread, not a bug to fix: the rule's advice stays (it is what to do if the ratio is real)
    "a parameter initialised to a constant (norm scale, zero embedding), whose std is no scale": OWN,
    "a parameter initialised to a constant (a norm scale, a gain of ones)": OWN,
    "constant or zero initialisation (nn.init.constant_ / zeros_ on the weights)": OWN,
    "units copied from one another (e.g. one tensor repeated to build the weight)": OWN,
    # the training loop's wiring
    "gradients accumulate (no zero_grad)": ZERO_GRAD,
    "optimizer.zero_grad() is missing from the loop": OWN,
    "deliberate gradient accumulation with too many steps": "When accumulating on purpose, call optimizer.zero_grad() "
                                                            "after every optimizer.step() and divide the loss by the "
                                                            "number of accumulated micro-batches.",
    "the layer was left out of the optimizer's parameter groups": OWN,
    "optimizer.step() is never called": "Call optimizer.step() after loss.backward() in every step, then rec.step().",
    "the optimizer holds another model's parameters (the model was created again after it)":
        "Build the optimizer after the model, on this model's parameters (or build it again after re-creating the model).",
    "rec.step() is called before optimizer.step()": "Call rec.step() after optimizer.step(), once per training step.",
    "its param group has lr=0 or it is frozen on purpose": "Give its parameter group a learning rate above 0; if the "
                                                           "layer is meant to stay fixed, freeze it with "
                                                           "requires_grad_(False).",
    "the layer is not in the optimizer": NOT_IN_OPTIMIZER,
    "layers that never update": NOT_IN_OPTIMIZER,
    "gradients cleared before rec.step() (zero_grad before the step)": OWN,
    "the layer is not used in forward": OWN,
    "the graph is cut after the layer (.detach(), .data, a NumPy round trip)": OWN,
    "the layer runs under torch.no_grad() in forward": OWN,
    "the backbone was frozen by mistake (requires_grad_(False) on everything)": OWN,
    "fine-tuning only the norms on purpose": OWN,
    "model.eval() for validation, model.train() not called again": OWN,
    "model.eval() before the training loop": OWN,
    "eval mode on purpose (fixed batch-norm statistics)": OWN,
    # activations and units
    "a bounded activation with a small derivative": OWN,  # the rule names the activation and its derivative
    "no normalisation before the bounded activation": OWN,
    "saturated units pass no gradient": see("SATURATION", "the saturated units"),
    "saturated units": see("SATURATION", "the saturated units"),
    "dead ReLU units cut the path": see("DEAD_UNITS", "the dead units"),
    "dead units": see("DEAD_UNITS", "the dead units"),
    "vanishing gradients": see("VANISHING_GRADIENT", "the vanishing gradient"),
    "NaN or inf weights (see NONFINITE)": see("NONFINITE", "the NaN"),
    "its gradient vanishes": OWN,  # the rule says so, naming the layer the same rate moves at a healthy pace
    "ReLU units pushed negative stay there": OWN,
    "units switched off from the start (a bias initialised far negative, or weights that make every input "
    "negative)": OFF_FROM_START,
    "heavy dropout (see HIGH_DROPOUT) makes each unit's updates large and noisy": "Lower the dropout rate to 0.1-0.5 "
                                                                                 "(nn.Dropout(p) takes the probability "
                                                                                 "to drop, not to keep).",
    "dropout drops most units": "Lower the dropout rate to 0.1-0.5 (nn.Dropout(p) takes the probability to drop, not "
                                "to keep).",
    "a keep-probability passed as p (TensorFlow 1 habit)": OWN,
    "strong regularisation on purpose": OWN,
    # outputs and losses
    "softmax before a loss that applies log-softmax itself": OWN,
    "an output activation left on the logits (tanh/sigmoid)": OWN,
    "a regression/autoencoder whose targets lie in that range": OWN,
    "a bounded function on the logits": "Remove the activation on the output: nn.CrossEntropyLoss expects raw logits "
                                        "(it applies log-softmax itself).",
    "log_softmax forgotten between the model and NLLLoss": OWN,
    "softmax used where log_softmax was meant": OWN,
    "the output keeps a trailing dimension of 1 the targets lack (or the other way round)": OWN,
    "DataLoader(shuffle=False) (its default) on a dataset stored class by class": OWN,
    "a sampler that groups classes on purpose (curriculum, class-balanced blocks)": OWN,
    "the targets are not scaled to the output's range": OWN,
    "the wrong output activation for these targets": OWN,
    # how training went
    "early stopping ended it on its initial plateau": "Give early stopping more patience (or a minimum number of "
                                                      "epochs).",
    "too little patience for a slow start": OWN,
    "a slow start from vanishing gradients": see("VANISHING_GRADIENT", "the vanishing gradient"),
    "a statistic the recorder cannot compute for this layer type": OWN,
}


def leading_cause(alternatives: list) -> dict | None:
    """The ranked cause the evidence points at: the first when supported, or when it is possible and
    every other cause is at least CLEAR_LEAD below it; None when no cause stands out."""
    if not alternatives:
        return None
    top = alternatives[0]
    if top["verdict"] == "supported":
        return top
    runner_up = alternatives[1]["score"] if len(alternatives) > 1 else 0.0
    if top["score"] >= UNKNOWN and top["score"] - runner_up >= CLEAR_LEAD - 1e-9:
        return top
    return None


def evidence_led(suggestion: str, alternatives: list) -> str:
    """The suggestion to print: the leading cause's fix first. A supported cause's fix stands alone
    (the generic advice may point the other way: "a higher learning rate" for a rate of 10); a cause
    that is only clearly ahead is followed by the rule's own advice, in case it is not that."""
    top = leading_cause(alternatives)
    fix = FIXES.get(top["cause"], OWN) if top else OWN
    if fix is OWN or fix == suggestion:
        return suggestion
    if top["verdict"] == "supported" or not suggestion:
        return fix
    return f"{fix} If that is not it: {suggestion}"
