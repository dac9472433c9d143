"""The candidate causes about the model itself: its activations (bounded, ReLU-family), its
normalisation, its dropout, its output op and its initial values (a constant, units that are copies).

Each returns (score, one line of evidence) from the run's Facts and the finding, as every candidate in
``alternatives.CAUSES`` does; ``alternatives`` ranks them beside the loop's, the scale's and the data's.
"""
from __future__ import annotations

from .. import quantities as Q
from .facts import Facts
from .finding import num
from .scores import AGAINST, FOR, RULED_OUT, STRONG, UNKNOWN


def bounded_activation(F: Facts, f):
    if F.bounded:
        a = F.bounded[0]
        d = (a.get("max_derivative") or [None])[0]
        small = d is not None and d < 0.5
        return (STRONG if small else FOR), (f"{F.act_name(a)} in {F.ev.layer_title(a['name'])}"
                                           + (f", maximum derivative {num(d)}: each layer scales the gradient by "
                                              "at most that" if d is not None else ""))
    if F.activations:
        return AGAINST, f"no bounded activation ({', '.join(F.act_names)})"
    return UNKNOWN, "the activations were not recorded"


def no_normalisation(F: Facts, f):
    if F.norm_layers:
        return AGAINST, f"normalisation layers present ({', '.join(F.norm_layers[:3])})"
    return (FOR if F.activations else UNKNOWN), "no BatchNorm/LayerNorm in the model"


def relu_family(F: Facts, f):
    names = [n for n in F.act_names if n.lower() in ("relu", "relu6")]
    if names:
        return FOR, f"{', '.join(names)}: zero gradient for every negative input, so a unit pushed negative stays there"
    return (AGAINST if F.act_names else UNKNOWN), f"activations: {', '.join(F.act_names) or 'not recorded'}"


def constant_init(F: Facts, f):
    """A weight that starts as a constant (norm scales at 1, zero embeddings) has std ~0: ratios against it mislead."""
    if f.evidence.get("scale") == "rms":  # the rule already judged it against its starting size, not its std
        return AGAINST, f"{F.ev.layer_title(f.layer)} is judged against the size (RMS) of its values, not their std"
    layers = f.layers or ([f.layer] if f.layer else [])
    # a normalisation module's scale, by its module's type; the model's own parameters (`<root>`: raw
    # nn.Parameter tensors of a hand-written forward) or a 1-D gain are no norm layer's, judged by their values
    norms = [n for n in layers if F.ev.param_role(n) == "norm"]
    if norms:
        return STRONG, f"{F.ev.layer_title(norms[0])} starts as a constant (scale 1, shift 0)"
    constant = [n for n in layers if F.ev.param_role(n) == "constant-init"]
    if constant:
        rms = F.ev.init_rms(constant[0], None)
        value = f"every value of size {num(rms)}" if rms else "all zeros"
        return STRONG, f"{F.ev.layer_title(constant[0])} starts as one constant ({value}), so its std is no scale"
    w = F.ev.quantity(Q.WEIGHT_STD)
    w = w[w["layer"].isin(layers)]
    if w.empty:
        return UNKNOWN, "weight std not recorded"
    first = w[w["step"] == w["step"].min()]["value"].astype(float)
    if (first < 1e-8).any():
        return STRONG, f"weight std {num(float(first.min()))} at step {int(w['step'].min())}: a constant"
    return AGAINST, f"weight std {num(float(first.min()))} at step {int(w['step'].min())}: not a constant"


def dropout_high(F: Facts, f):
    p = F.dropout_p
    if p is None:
        return AGAINST, "no dropout"
    return (STRONG if p > 0.5 else AGAINST), f"dropout p={p:g} drops {100 * p:.0f} % of the units"


def dropout_scaling(F: Facts, f):
    """DEAD_UNITS: heavy dropout trains each unit on the few images of a batch that keep it, its output scaled by
    1/(1 - p), so its updates are large and noisy, and a unit pushed negative for every input stays there
    (case 001: p=0.7 kills a third of the first layer; p=0.3, same rate and data, kills none)."""
    p = F.dropout_p
    if not p:
        return AGAINST, "no dropout"
    return (STRONG if p > 0.5 else AGAINST), (f"dropout p={p:g}: in training a unit is kept for {100 * (1 - p):.0f} % "
                                              f"of the images of each batch, its output then scaled by 1/(1 - p) = "
                                              f"{1 / (1 - p):.1f}×"
                                              if p < 1 else f"dropout p={p:g} drops every unit")


def keep_prob_as_p(F: Facts, f):
    p = float(f.evidence.get("p", F.dropout_p or 0))
    keep_values = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)  # keep_prob values TF1 code used
    return (STRONG if any(abs(p - k) < 1e-6 for k in keep_values) and p > 0.5 else FOR), \
        f"p={p:g} is a typical TensorFlow 1 keep_prob; as a drop probability it keeps only {100 * (1 - p):.0f} %"


def strong_regularisation(F: Facts, f):
    p = float(f.evidence.get("p", F.dropout_p or 0))
    return (FOR if p <= 0.6 else AGAINST), f"p={p:g}" + (": strong but sometimes chosen on purpose" if p <= 0.6
                                                         else ": far above what regularisation uses (0.1-0.5)")


def output_bounded(F: Facts, f):
    op = f.evidence.get("op")
    out = ((F.ev.summary or {}).get("output") or {})
    op = op or out.get("activation_layer") or (F.ev.model_config.get("output_act") or None)
    if f.evidence.get("cause") == "fits_targets":  # the bounded output is meant: it matches the targets
        return AGAINST, f"{op} on the output matches the targets' range; these are not class logits"
    if "BOUNDED_OUTPUT" in F.codes or f.code == "BOUNDED_OUTPUT":
        kind = str(f.evidence.get("loss") or ((F.ev.summary or {}).get("loss") or {}).get("kind") or "")
        if "cross_entropy" in kind:  # say what the squashing does to this loss, in a student's words
            return STRONG, (f"{op} squeezes every output into a small range before the cross-entropy loss, which "
                            "wants raw, unbounded scores (logits): the right class can never get a clearly higher "
                            "score than the others, so the loss stays high and the gradients stay weak")
        return STRONG, f"a bounded function ({op}) sits on the output"
    return AGAINST, "the output is unbounded"


def softmax_before_ce(F: Facts, f):
    op = str(f.evidence.get("op") or "")
    if "softmax" in op.lower():
        return STRONG, f"{op} before a loss that applies log-softmax itself"
    return AGAINST, (f"the output op is {op}, not a softmax" if op else "no softmax on the output")


def symmetric(F: Facts, f):
    """Units that are copies of each other (constant or zero initialisation) explain a net that cannot
    learn, or one layer's odd numbers: every unit computes and learns the same thing."""
    if "SYMMETRIC_UNITS" in F.codes:
        return STRONG, "SYMMETRIC_UNITS: every unit of a layer is a copy of the others"
    return RULED_OUT, "the units of every recorded layer differ"


# first in each list where it applies: when found it is the root cause (its std-based ratios and
# growth read as a blow-up) and wins ties; when not found it is ruled out and sorts last
SYMMETRIC_CAUSE = ("every unit of a layer the same (constant or zero initialisation)", symmetric)


def started_constant(F: Facts, f):
    if f.evidence.get("started_constant"):
        return STRONG, "the weights' std was 0 at the first recorded step: one constant"
    return FOR, "the units were already copies at the first recorded step"
