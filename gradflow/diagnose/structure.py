"""Rules on the model's structure and inputs: dropout p (in a module or seen in the masks), unused
layers, raw inputs, a model left in eval mode while it trains. The output against its loss and targets: ``outputs``."""
from __future__ import annotations

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, num


def no_data(ev: Evidence) -> list[Finding]:
    """NO_DATA: a recorder that saw no rec.step() call."""
    if ev.summary is None or ev.summary.get("steps"):
        return []
    return [Finding("NO_DATA", "info", None, None,
                    "Nothing was recorded: rec.step() was never called inside the `with Recorder(...)` block.",
                    {}, "Call rec.step() once per training step, after optimizer.step().")]


# Dropout: PyTorch's p is the probability of DROPPING a unit; above one half most units are gone.
HIGH_DROPOUT_P = 0.5


# The mask probe (record/dropout_probe.py): a layer's input counts as masked right there when the
# units alive in both passes carry the same values (downstream of a mask they differ, and the zeros
# there are ReLU sign flips); a module with a p within MASK_MATCHES_MODULE of it is the same dropout.
MASK_AGREE_MIN = 0.9
MASK_MATCHES_MODULE = 0.1
EVAL_DROP_MIN = 0.05  # a drop fraction in eval mode above this: the dropout ignores model.eval()


def high_dropout(ev: Evidence) -> list[Finding]:
    """HIGH_DROPOUT: a dropout p above one half, likely a keep-probability passed as p; in a module's
    p, or seen in the masks of a layer's input (F.dropout inside forward())."""
    drops = list((ev.summary or {}).get("dropout") or [])
    p_config = ev.model_config.get("dropout")
    if not drops and isinstance(p_config, (int, float)) and p_config > 0:
        drops = [{"layer": "dropout", "p": float(p_config), "type": "Dropout"}]
    out = [Finding(
        "HIGH_DROPOUT", "warning", d["layer"], None,
        f"{d['type'].removeprefix('Stacked')}(p={d['p']:g}) at {ev.layer_title(d['layer'])} drops {100 * d['p']:.0f} % of the units: in "
        f"PyTorch p is the probability of DROPPING a unit, not of keeping it (TensorFlow 1's keep_prob). If you meant "
        f"to keep {100 * d['p']:.0f} %, use p={1 - d['p']:.2g}.",
        {"p": d["p"], "keep_probability": 1 - d["p"], "limit": HIGH_DROPOUT_P, "cause": "module"},
        f"Use nn.Dropout(p={1 - d['p']:.2g}) if {d['p']:g} was a keep-probability; rates above {HIGH_DROPOUT_P} "
        "are rarely useful.", d.get("member"), ev.seed_of(d.get("member")))
        for d in drops if d["p"] > HIGH_DROPOUT_P]
    # every module, reported or not: the masks of a healthy nn.Dropout(0.5) estimate p at 0.50 +- 0.01, and that
    # module explains them as surely as a Dropout(0.7) explains its own
    modules = [(d.get("member"), d["p"]) for d in drops]
    for d in (ev.summary or {}).get("dropout_masks") or []:
        # the setting the estimate most likely was (0.51 is a p of 0.5 seen through a few thousand units)
        if "p" not in d or _nominal(d["p"]) <= HIGH_DROPOUT_P or d["agree"] < MASK_AGREE_MIN:
            continue
        if any(m in (d["member"], None) and abs(p - d["p"]) < MASK_MATCHES_MODULE for m, p in modules):
            continue  # a Dropout module does it: its own finding (if its p is high) already says so
        out.append(_mask_finding(ev, d))
    return out


def _nominal(p: float) -> float:
    """A mask estimate rounded to the nearest 0.05: the p it most likely was set to."""
    return round(p * 20) / 20


def _mask_finding(ev: Evidence, d: dict) -> Finding:
    p, p_eval = d["p"], d.get("p_eval")
    nominal = _nominal(p)  # an estimate from a few thousand units: the setting it most likely was
    in_eval = p_eval is not None and p_eval > EVAL_DROP_MIN
    eval_note = (f" It drops in eval mode too ({100 * p_eval:.0f} %): F.dropout's training argument defaults to True, "
                 "so model.eval() does not turn it off." if in_eval else "")
    return Finding(
        "HIGH_DROPOUT", "warning", d["layer"], None,
        f"The input of {ev.layer_title(d['layer'])} loses {100 * p:.0f} % of its units at random in training mode "
        f"(two forward passes of the same batch zero different units; no Dropout module does it): a dropout applied "
        f"inside forward(), like F.dropout(x, p=keep_prob). In PyTorch p is the probability of DROPPING a unit, not "
        f"TensorFlow 1's keep_prob; if you meant to keep {100 * nominal:.0f} %, use p={1 - nominal:.2g}.{eval_note}",
        {"p": p, "nominal_p": nominal, "keep_probability": 1 - p, "limit": HIGH_DROPOUT_P, "cause": "mask",
         "agree": d["agree"], "p_eval": p_eval},
        f"Use F.dropout(x, p={1 - nominal:.2g}, training=self.training), or an nn.Dropout(p={1 - nominal:.2g}) module "
        "(it follows model.train()/eval() by itself).", d.get("member"), ev.seed_of(d.get("member")))


def _gradient_gap(ev: Evidence, layer: str, missing: dict) -> tuple[str, str]:
    """Why ``layer`` got no gradient, from where it ran: (cause, the sentence that says so)."""
    s = ev.summary or {}
    entries = s.get("layers") or []
    params = [e for e in entries if e.get("kind") == "param"]
    title = ev.layer_title(layer)
    if params and all(e["name"] in missing for e in params):
        return "cleared", (f"No trainable layer had a gradient at rec.step() (recorded steps {missing[layer][:5]}): "
                           "the gradients were cleared before it, or rec.step() runs before loss.backward().")
    entry = next((e for e in entries if e["name"] == layer), {})
    if entry.get("order") is None:
        return "unused", (f"{title} has trainable parameters but never ran in a training forward pass: it is "
                          "defined in __init__ and not called in forward() (or only in a branch that was not taken).")
    if layer in (s.get("ran_without_grad") or []):
        return "no_grad", (f"{title} ran inside a torch.no_grad() block of forward(): no graph is kept for it, "
                           "so backward() never reaches its parameters and they never train.")
    # ran with gradients on but none came back: the graph is cut between it and the loss
    ran = [e for e in params if e.get("order") is not None]
    cut = max((e for e in ran if e["name"] in missing), key=lambda e: e["order"])
    after = min((e for e in ran if e["name"] not in missing and e["order"] > cut["order"]),
                key=lambda e: e["order"], default=None)
    where = (f"between {ev.layer_title(cut['name'])} and {ev.layer_title(after['name'])}" if after
             else f"after {ev.layer_title(cut['name'])}")
    return "detached", (f"{title} ran in the training forward pass but no gradient came back to it: the graph is cut "
                        f"{where}, by a .detach(), .data, an .item()/.numpy() round trip or torch.tensor(...) on an "
                        "intermediate result; every layer before the cut keeps its random initial weights.")


NO_GRADIENT_FIX = {
    "cleared": "Call rec.step() after optimizer.step() and before optimizer.zero_grad().",
    "unused": "Call the layer in forward(), or delete it; to keep it untrained on purpose, requires_grad_(False).",
    "no_grad": "Move the layer out of the torch.no_grad() block; to freeze it on purpose, requires_grad_(False) "
               "says so (and this warning goes).",
    "detached": "Keep the forward pass in torch operations from input to loss: no .detach(), .data, .numpy() or "
                "torch.tensor(...) on tensors that need a gradient.",
}


def no_gradient(ev: Evidence) -> list[Finding]:
    """NO_GRADIENT: a trainable layer that received no gradient at recorded steps; the cause (never
    called, run under no_grad, graph cut after it, gradients cleared) from where it ran."""
    missing = (ev.summary or {}).get("missing_grad") or {}
    out = []
    for layer, steps in missing.items():
        cause, message = _gradient_gap(ev, layer, missing)
        out.append(Finding("NO_GRADIENT", "warning", layer, int(steps[0]) if steps else None, message,
                           {"steps": list(steps), "cause": cause}, NO_GRADIENT_FIX[cause]))
    return out


def recorder_error(ev: Evidence) -> list[Finding]:
    """RECORDER_ERROR: statistics that failed (the first three); training was not affected."""
    return [Finding("RECORDER_ERROR", "warning", None, None, f"A statistic could not be computed and was skipped: {err}",
                    {"error": err}, "Report this with the model definition; training itself was not affected.")
            for err in ((ev.summary or {}).get("errors") or [])[:3]]


# Unnormalised input: raw 0-255 pixels have mean ~70 and std ~90; normalised data have both ~1.
INPUT_STD_MAX = 5.0
INPUT_MEAN_MAX = 5.0
EXP_OVERFLOW = 88.7  # float32 exp() is inf above this
# ... and pixels divided by 255 twice (ToTensor() already scales to [0, 1]) never exceed 1/255 = 0.0039.
# The largest |x|, not the std: one-hot and other sparse inputs have a small std but reach 1.
INPUT_TINY_MAX = 0.02


def input_scale(ev: Evidence) -> dict | None:
    """The model's input range over recorded steps and its verdict: scale 'large', 'tiny' or None."""
    q = {k: ev.quantity(v) for k, v in Q.INPUT_RANGE.items()}
    if q["std"].empty:
        return None
    r = {"std": float(q["std"]["value"].max()), "mean": float(q["mean"]["value"].abs().max()),
         "min": float(q["min"]["value"].min()), "max": float(q["max"]["value"].max())}
    largest = max(abs(r["min"]), abs(r["max"]))
    r["scale"] = ("large" if r["std"] > INPUT_STD_MAX or r["mean"] > INPUT_MEAN_MAX
                  else "tiny" if 0 < largest < INPUT_TINY_MAX else None)
    return r


def unnormalized_input(ev: Evidence) -> list[Finding]:
    """UNNORMALIZED_INPUT: inputs with a mean or std far above a normalised range, or all tiny."""
    r = input_scale(ev)
    if r is None or r["scale"] is None:
        return []
    lo, hi, mean, std = r["min"], r["max"], r["mean"], r["std"]
    step = int(ev.quantity(Q.INPUT_STD)["step"].min())
    evidence = {"min": lo, "max": hi, "mean": mean, "std": std, "cause": r["scale"]}
    if r["scale"] == "tiny":
        return [Finding(
            "UNNORMALIZED_INPUT", "warning", Q.INPUT_LAYER, step,
            f"The model's inputs are tiny: every value lies in [{num(lo)}, {num(hi)}] (std {num(std)}; normalised "
            f"data have std ~1 and reach about ±2). Pixels divided by 255 twice look like this: ToTensor() already "
            f"scales them to [0, 1]. The first layer then sees almost the same input for every example, and its "
            f"weight gradient, proportional to the input, is about {num(1 / max(abs(lo), abs(hi)))} times smaller than "
            f"with inputs of order 1.",
            evidence, "Scale the inputs once: after ToTensor(), Normalize((0.5,), (0.5,)) or (x - mean) / std with "
            "the training set's numbers; no extra / 255.")]
    return [Finding(
        "UNNORMALIZED_INPUT", "warning", Q.INPUT_LAYER, step,
        f"The model's inputs are far outside a normalised range: values in [{num(lo)}, {num(hi)}], mean {num(mean)}, "
        f"std {num(std)} (normalised data have mean ~0 and std ~1; limits {INPUT_MEAN_MAX:g}/{INPUT_STD_MAX:g}). "
        "Raw 0-255 pixels make pre-activations huge, and every weight update with them"
        + (" (and any exp() in the model, such as a hand-written ELU's, overflows above 88.7)" if hi > EXP_OVERFLOW
           else "") + ".", evidence, "Scale the inputs, e.g. x / 255 or "
        "(x / 255 - 0.5) / 0.5, or standardise with the training set's mean and std.")]


def eval_mode(ev: Evidence) -> list[Finding]:
    """EVAL_MODE: recorded training steps ran with the model in eval mode (model.eval() left on after
    a validation pass), so its dropout and batch norm computed their test-time forward. Only the
    model's own mode counts: one batch norm put in eval mode inside a training model is a deliberate
    choice (frozen statistics for fine-tuning), and so is a whole model in eval mode when some of its
    layers are frozen (a linear probe on a frozen trunk keeps the trunk's statistics)."""
    s = ev.summary or {}
    mode = s.get("train_mode") or {}
    modules, count = mode.get("modules") or [], int(mode.get("eval_count") or 0)
    if not count or not modules or s.get("frozen_layers"):
        return []
    steps, recorded = mode.get("eval_steps") or [], int(mode.get("recorded") or count)
    types = {m["type"].removeprefix("Stacked") for m in modules}
    titles = [f"{m['type'].removeprefix('Stacked')} `{m['layer']}`" for m in modules[:3]]
    effects = []
    if any("Dropout" in t for t in types):
        effects.append("dropout drops nothing")
    if any("Norm" in t for t in types):
        effects.append("batch norm normalises with its running statistics instead of the batch's, and no longer "
                       "updates them")
    when = ("from the first recorded step on: the model never trained in training mode" if count == recorded
            else f"from step {steps[0]} on" if steps else "")
    return [Finding(
        "EVAL_MODE", "warning", modules[0]["layer"], steps[0] if steps else None,
        f"The model was in eval mode (model.eval()) during {count} of {recorded} recorded training steps ({when}), "
        f"so {' and '.join(effects) or 'its layers computed their test-time forward'} "
        f"({', '.join(titles)}{', ...' if len(modules) > 3 else ''}). Training in eval mode trains another model "
        "than the one you meant: usually model.eval() for a validation pass without model.train() before training "
        "goes on.",
        {"eval_count": count, "recorded": recorded, "eval_steps": steps, "modules": [m["layer"] for m in modules],
         "from_start": count == recorded},
        "Call model.train() before each epoch's training steps (model.eval() is for validation and testing); to "
        "keep batch-norm statistics fixed on purpose, put only those modules in eval mode, or freeze them.")]
