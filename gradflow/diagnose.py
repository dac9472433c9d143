"""Rules that turn a recording (and a run's metrics) into plain-language findings.

Each rule reads the tidy tables of a :class:`~gradflow.record.Recorder` (or a recording loaded
from disk) and/or a run's per-epoch metrics, and returns :class:`Finding`s with a stable ``code``,
the numbers behind it (``evidence``) and a suggestion. Thresholds are module constants with the
reason for their value next to them.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SEVERITIES = ("error", "warning", "info")

# Gradient flow: first vs last trainable layer's weight-gradient std (median over recorded steps).
# Healthy ReLU/tanh MLPs stay within one order of magnitude of each other; the tutorial's sigmoid
# net at initialisation is at ~1e-4 (input layer ~1e-5, output layer ~0.1).
VANISHING_RATIO = 1e-2  # two orders of magnitude smaller at the input end
EXPLODING_RATIO = 1e2  # two orders of magnitude larger at the input end
EXPLODING_GRAD_DATA = 10.0  # a gradient ten times the weights' own scale: one SGD step rewrites them
EXPLODING_GROWTH = 1e3  # weight-gradient norm grew a thousandfold since the first recorded step
# Update:data ratio (std of the optimizer's change / std of the weight): ~1e-3 is healthy
# (Karpathy, makemore part 3). Two orders of magnitude either way is a learning-rate problem.
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1
# Saturation (fraction of units whose derivative is < 6 % of the maximum). Bounded activations
# (tanh, sigmoid) flat on both sides: a quarter of the units saturated starves the layer behind.
SATURATION_BOUNDED = 0.25
# One-sided activations (ReLU family) are "flat" for every negative input: about half the units
# at initialisation is normal, so only near-total silence is reported, and only as info.
SATURATION_ONE_SIDED = 0.95
# Dead units (no example moves them during a full pass). The tutorial's untrained ReLU net has
# 7.8 % dead in its last hidden layer; a quarter is a real loss of capacity, 90 % a broken layer.
DEAD_WARNING = 0.25
DEAD_ERROR = 0.9
# Not learning: validation accuracy within 5 points of chance (10 % for 10 classes), or a
# cross-entropy loss still within 5 % of ln(classes), the loss of a uniform guess.
CHANCE_MARGIN = 0.05
LOSS_CHANCE_FRACTION = 0.05
NOT_LEARNING_MIN_STEPS = 100  # fewer steps than this are not "after training" (a net on SGD 1e-2 may need them)
LOSS_TAIL_FRACTION = 0.2  # the last 20 % of the loss curve is what "after training" means
# Plateau stop: the loss fell by at least this fraction of its first value over the run, or the
# first layer's gradient grew by this factor, while accuracy stayed at chance.
PLATEAU_MIN_DROP = 1e-4
PLATEAU_GRAD_GROWTH = 1.5
# Unnormalised input: raw 0-255 pixels have mean ~70 and std ~90; normalised data have both ~1.
INPUT_STD_MAX = 5.0
INPUT_MEAN_MAX = 5.0
# Dropout: PyTorch's p is the probability of DROPPING a unit; above one half most units are gone.
HIGH_DROPOUT_P = 0.5
DEFAULT_NUM_CLASSES = 10


@dataclass
class Finding:
    code: str  # stable identifier, e.g. 'VANISHING_GRADIENT'
    severity: str  # 'error' | 'warning' | 'info'
    layer: str | None  # module name ('layers.0'), '<input>', '<output>', '<model>' or None
    step: int | None  # training step the evidence comes from (None: whole run / structure)
    message: str  # plain language, citing the numbers
    evidence: dict = field(default_factory=dict)
    suggestion: str = ""
    member: int | None = None
    seed: int | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _g(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


# --------------------------------------------------------------------------- inputs


@dataclass
class _Context:
    tables: dict | None
    summary: dict | None
    metrics: pd.DataFrame | None
    results: pd.DataFrame | None
    config: dict
    num_classes: int

    @property
    def scalars(self) -> pd.DataFrame:
        if self.tables is None:
            return pd.DataFrame(columns=["step", "epoch", "member", "seed", "layer", "quantity", "value"])
        return self.tables["scalars"]

    def quantity(self, q: str) -> pd.DataFrame:
        s = self.scalars
        return s[s["quantity"] == q]

    def layers(self, kind: str) -> list[dict]:
        if not self.summary:
            return []
        return [e for e in self.summary["layers"] if e["kind"] == kind and e.get("order") is not None]


def _resolve(obj, metrics, num_classes) -> _Context:
    from .recording import load_recording

    recording, results, config = None, None, {}
    if isinstance(obj, (str, Path)):
        recording = load_recording(obj)
    elif callable(getattr(obj, "tables", None)) and callable(getattr(obj, "summary", None)):
        recording = obj
    elif hasattr(obj, "recordings") or hasattr(obj, "metrics"):  # a stored run (duck-typed)
        recording = getattr(obj, "recordings", None)
        metrics = metrics if metrics is not None else getattr(obj, "metrics", None)
        results = getattr(obj, "results", None)
        config = dict(getattr(obj, "config", None) or {})
    else:
        raise TypeError("diagnose() takes a Recorder, a recording from load_recording(), a recording directory, or a "
                        f"run with .recordings/.metrics/.results/.config; got {type(obj).__name__}")
    tables = summary = None
    if recording is not None:
        tables, summary = recording.tables(), recording.summary()
        tables["scalars"] = tables["scalars"].astype({"value": float})
    nc = num_classes or config.get("num_classes") or (summary or {}).get("num_classes")
    if not nc and summary and (summary.get("loss") or {}).get("kind") in ("cross_entropy", "nll"):
        nc = (summary.get("output") or {}).get("features")
    return _Context(tables, summary, metrics, results, config, int(nc or DEFAULT_NUM_CLASSES))


def _members(df: pd.DataFrame):
    """(member, seed) pairs present in df."""
    if df.empty:
        return []
    pairs = df[["member", "seed"]].drop_duplicates().sort_values("member")
    return [(int(m), None if pd.isna(s) else int(s)) for m, s in pairs.itertuples(index=False)]


def _who(member, seed) -> str:
    return f" (seed {seed})" if seed is not None else (f" (member {member})" if member else "")


# --------------------------------------------------------------------------- rules on recordings


def _gradient_flow(ctx: _Context) -> list[Finding]:
    """VANISHING_GRADIENT / EXPLODING_GRADIENT from the first vs last layer's weight-gradient std."""
    params = ctx.layers("param")
    g = ctx.quantity("grad_std")
    if len(params) < 2 or g.empty:
        return []
    first, last = params[0]["name"], params[-1]["name"]
    out = []
    for member, seed in _members(g):
        gm = g[g["member"] == member].pivot_table(index="step", columns="layer", values="value")
        if first not in gm or last not in gm:
            continue
        both = gm[[first, last]].replace(0, np.nan).dropna()
        both = both[np.isfinite(both).all(axis=1)]
        if both.empty:
            continue
        r = both[first] / both[last]
        med = float(np.exp(np.median(np.log(r))))
        s0 = int(both.index[0])
        ev = {"first_layer": first, "last_layer": last, "ratio_median": med, "ratio_first_step": float(r.iloc[0]),
              "first_grad_std": float(both[first].iloc[0]), "last_grad_std": float(both[last].iloc[0]),
              "recorded_steps": len(r)}
        cite = (f"{first}'s weight-gradient std is {_g(ev['first_grad_std'])} against {_g(ev['last_grad_std'])} in "
                f"{last} at step {s0} (ratio {_g(ev['ratio_first_step'])}; median ratio {_g(med)} over {len(r)} recorded steps)")
        if med < VANISHING_RATIO:
            acts = [a for a in ctx.layers("activation") if a.get("bounded")]
            cause = (f"; the bounded activation ({acts[0]['activation']}) has a small maximum derivative "
                     f"({_g((acts[0].get('max_derivative') or [float('nan')])[0])}), so each layer shrinks the gradient"
                     if acts else "")
            out.append(Finding("VANISHING_GRADIENT", "warning", first, s0,
                               f"Gradients vanish towards the input{_who(member, seed)}: {cite}{cause}.", ev,
                               "Use a ReLU-family activation (relu, leakyrelu, elu, swish), a matching initialisation "
                               "(kaiming for ReLU, xavier for tanh), or normalisation layers; check the early layers' "
                               "update:data ratio.", member, seed))
        elif med > EXPLODING_RATIO:
            out.append(Finding("EXPLODING_GRADIENT", "warning", first, s0,
                               f"Gradients grow towards the input{_who(member, seed)}: {cite}.", ev,
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), use a smaller "
                               "initialisation or normalisation layers.", member, seed))
    out.extend(_exploding_scale(ctx))
    return out


def _exploding_scale(ctx: _Context) -> list[Finding]:
    out = []
    gd, gn = ctx.quantity("grad_data_ratio"), ctx.quantity("grad_norm")
    for member, seed in _members(gd):
        d = gd[(gd["member"] == member) & np.isfinite(gd["value"])]
        big = d[d["value"] > EXPLODING_GRAD_DATA]
        n = gn[(gn["member"] == member) & np.isfinite(gn["value"]) & (gn["value"] > 0)].sort_values("step")
        growth = None
        for layer, rows in n.groupby("layer"):
            if len(rows) >= 2:
                gr = rows["value"].iloc[-1] / rows["value"].iloc[0]
                if gr > EXPLODING_GROWTH and (growth is None or gr > growth[1]):
                    growth = (layer, float(gr), int(rows["step"].iloc[0]), int(rows["step"].iloc[-1]))
        if not big.empty:
            r = big.sort_values("step").iloc[0]
            out.append(Finding("EXPLODING_GRADIENT", "error", r["layer"], int(r["step"]),
                               f"{r['layer']}'s gradient is {_g(r['value'])}x the std of its weights at step {int(r['step'])}"
                               f"{_who(member, seed)} (above {EXPLODING_GRAD_DATA:g}): one optimizer step can rewrite the layer.",
                               {"grad_data_ratio": float(r["value"]), "threshold": EXPLODING_GRAD_DATA},
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), normalise inputs.",
                               member, seed))
        elif growth is not None:
            layer, gr, s0, s1 = growth
            out.append(Finding("EXPLODING_GRADIENT", "warning", layer, s1,
                               f"{layer}'s gradient norm grew {_g(gr)}x between steps {s0} and {s1}{_who(member, seed)}.",
                               {"growth": gr, "from_step": s0, "to_step": s1},
                               "Lower the learning rate or clip gradients; look for a diverging loss.", member, seed))
    return out


def _nonfinite(ctx: _Context) -> list[Finding]:
    if ctx.tables is None:
        return []
    nf = ctx.tables["nonfinite"]
    out = []
    for member, seed in _members(nf):
        rows = nf[nf["member"] == member]
        step = int(rows["step"].min())
        at = rows[rows["step"] == step]  # already in order: forward pass (forward order), then backward pass
        first = at.iloc[0]
        wheres = {f"{r.layer}:{r.where}": int(r.count) for r in at.itertuples(index=False)}
        # an activation whose backward lets out more non-finite values than came in creates them
        created = []
        for r in at[at["where"] == "activation_grad_in"].itertuples(index=False):
            came_in = at[(at["layer"] == r.layer) & (at["where"] == "activation_grad_out")]["count"]
            n_in = int(came_in.iloc[0]) if len(came_in) else 0
            if r.count > n_in >= 0 and at[(at["layer"] == r.layer) & (at["where"] == "activation")].empty:
                created.append((r.layer, int(r.count), n_in))
        origin = ""
        if created:
            layer, n_out, n_in = created[0]
            origin = (f" They are created inside the backward pass of activation {', '.join(c[0] for c in created)}: "
                      f"its forward output is finite, yet {n_out} non-finite gradient values leave {layer} where {n_in} "
                      "arrive (e.g. exp() overflowing to inf in the unused branch of torch.where, then 0 * inf = NaN).")
        what = {"grad": "weight gradient", "activation": "activation output", "activation_grad_out":
                "gradient at the activation output", "activation_grad_in": "gradient at the activation input",
                "input": "input", "output": "model output", "loss": "loss"}.get(first["where"], first["where"])
        count = int(first["count"])
        counted = f" ({count} values)" if count > 0 else ""
        out.append(Finding(
            "NONFINITE", "error", first["layer"], step,
            f"First NaN/inf at step {step}, epoch {int(first['epoch'])}{_who(member, seed)}: the {what} of "
            f"{first['layer']}{counted}, the first layer in forward order with a non-finite value "
            f"({'in the forward pass' if first['phase'] == 'forward' else 'the forward pass was finite; it arose in the backward pass'}).{origin}",
            {"step": step, "layer": first["layer"], "where": first["where"], "count": count, "at_step": wheres,
             "created_by": [c[0] for c in created]},
            "Normalise the inputs (e.g. pixels to [0, 1] or [-1, 1]); clamp the argument of exp/log in hand-written "
            "activations (exp(min(x, 0)) - 1 for ELU) or use torch's built-in version; lower the learning rate; clip "
            "gradients.", member, seed))
    return out


def _dead_units(ctx: _Context) -> list[Finding]:
    if ctx.tables is None or ctx.tables["dead_units"].empty:
        return []
    dead = ctx.tables["dead_units"]
    last = dead[dead["step"] == dead["step"].max()]
    out = []
    for r in last.itertuples(index=False):
        if r.dead_fraction < DEAD_WARNING:
            continue
        seed = None if pd.isna(r.seed) else int(r.seed)
        sev = "error" if r.dead_fraction >= DEAD_ERROR else "warning"
        out.append(Finding("DEAD_UNITS", sev, r.layer, int(r.step),
                           f"{r.dead} of {r.units} units of {r.layer} ({100 * r.dead_fraction:.1f} %) are dead"
                           f"{_who(r.member, seed)}: over all {r.examples} examples they never pass a gradient or carry a signal.",
                           {"dead": int(r.dead), "units": int(r.units), "dead_fraction": float(r.dead_fraction),
                            "examples": int(r.examples)},
                           "Use LeakyReLU/ELU/swish instead of ReLU, a lower learning rate, kaiming initialisation, "
                           "or normalisation before the activation.", int(r.member), seed))
    return out


def _saturation(ctx: _Context) -> list[Finding]:
    sat = ctx.quantity("saturation")
    if sat.empty:
        return []
    info = {a["name"]: a for a in ctx.layers("activation")}
    out = []
    for (member, layer), rows in sat.groupby(["member", "layer"]):
        rows = rows.sort_values("step")
        tail = rows.iloc[len(rows) // 2:]  # the second half of training: where the net has settled
        med = float(tail["value"].median())
        a = info.get(layer, {})
        bounded = bool(a.get("bounded"))
        limit = SATURATION_BOUNDED if bounded else SATURATION_ONE_SIDED
        if not med > limit:
            continue
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        step = int(tail["step"].iloc[-1])
        out.append(Finding(
            "SATURATION", "warning" if bounded else "info", layer, step,
            f"{100 * med:.1f} % of the units of {layer} ({a.get('activation', '?')}) sit in the flat region of the "
            f"activation{_who(member, seed)} (derivative below 6 % of its maximum; median over recorded steps "
            f"{int(tail['step'].iloc[0])}-{step}; limit {100 * limit:.0f} %): little gradient passes them.",
            {"saturation_median": med, "limit": limit, "bounded": bounded, "steps": [int(tail["step"].iloc[0]), step]},
            "Normalise the layer's input (BatchNorm/LayerNorm), use a smaller initialisation or learning rate, "
            "or a non-saturating activation (relu, leakyrelu, elu, swish).", int(member), seed))
    return out


def _update_ratio(ctx: _Context) -> list[Finding]:
    u = ctx.quantity("update_data_ratio")
    u = u[np.isfinite(u["value"].astype(float))]
    out = []
    for (member, layer), rows in u.groupby(["member", "layer"]):
        if (rows["value"] == 0).all():
            continue  # no optimizer step between the recorded steps (a one-batch snapshot), not a tiny one
        med = float(rows["value"].median())
        if UPDATE_RATIO_LOW <= med <= UPDATE_RATIO_HIGH:
            continue
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        small = med < UPDATE_RATIO_LOW
        out.append(Finding(
            "UPDATE_RATIO", "warning", layer, int(rows["step"].iloc[0]),
            f"{layer}'s update:data ratio (std of the optimizer's change / std of the weights) has median {_g(med)} "
            f"(log10 {_g(math.log10(med)) if med > 0 else '-inf'}) over {len(rows)} recorded steps{_who(member, seed)}; "
            f"about 1e-3 is healthy: the layer {'barely moves' if small else 'is rewritten too fast'}.",
            {"median": med, "low": UPDATE_RATIO_LOW, "high": UPDATE_RATIO_HIGH, "steps": len(rows)},
            ("Raise the learning rate (or fix what makes this layer's gradient vanish)." if small else
             "Lower the learning rate, or use warm-up / gradient clipping."), int(member), seed))
    return out


def _structure(ctx: _Context) -> list[Finding]:
    """BOUNDED_OUTPUT, HIGH_DROPOUT, NO_GRADIENT, RECORDER_ERROR from the recorded structure (or run config)."""
    out = []
    s = ctx.summary or {}
    loss = s.get("loss") or {}
    output = s.get("output") or {}
    cfg = ctx.config.get("model") if isinstance(ctx.config.get("model"), dict) else ctx.config
    kind = loss.get("kind")
    bounded_op = loss.get("logits_op") if loss.get("bounded_logits") else None
    if not bounded_op and output.get("bounded"):
        bounded_op = output.get("activation_layer") or output.get("grad_fn")
    cfg_act = cfg.get("output_act") if isinstance(cfg, dict) else None
    if not bounded_op and cfg_act:
        from .activations import is_bounded
        name = cfg_act.get("name") if isinstance(cfg_act, dict) else cfg_act
        if isinstance(name, str) and is_bounded(name):
            bounded_op, kind = name, kind or "cross_entropy"  # the project's trainer uses cross-entropy
    if bounded_op:
        bounded_op = re.sub(r"Backward\d*$", "", str(bounded_op))  # autograd's SoftmaxBackward0 -> Softmax
        c = ctx.num_classes
        hi, lo = _output_range(ctx)
        low, top = _bounds(bounded_op, lo, hi)
        best_p = math.exp(top) / (math.exp(top) + (c - 1) * math.exp(low))
        ev = {"op": bounded_op, "loss": kind, "output_min": lo, "output_max": hi, "num_classes": c,
              "best_probability": best_p, "min_loss": -math.log(best_p)}
        rng = f" (observed range [{_g(lo)}, {_g(hi)}])" if hi is not None else ""
        if kind in ("cross_entropy", "nll"):
            out.append(Finding(
                "BOUNDED_OUTPUT", "error", output.get("activation_layer") or "<output>", None,
                f"The logits pass through a bounded function ({bounded_op}) before the cross-entropy loss{rng}: with "
                f"{c} classes and logits in [{_g(low)}, {_g(top)}] the softmax can give the right class at most "
                f"p = {best_p:.2f}, so the loss can never fall below {-math.log(best_p):.2f} and the gradients stay weak.",
                ev, "Remove the activation on the output: nn.CrossEntropyLoss expects raw logits (it applies log-softmax "
                    "itself). Apply softmax/tanh only for display or after training.", None, None))
        elif kind in (None, "unknown"):
            out.append(Finding(
                "BOUNDED_OUTPUT", "info", output.get("activation_layer") or "<output>", None,
                f"The model output passes through a bounded function ({bounded_op}){rng}. That is right for targets in "
                "that range (e.g. MSE on [0, 1] images), wrong if the output feeds a cross-entropy loss as logits; pass "
                "loss= to rec.step() so the diagnosis can tell.", ev, "If these are class logits, remove the activation.",
                None, None))
    drops = list(s.get("dropout") or [])
    if not drops and isinstance(cfg, dict) and isinstance(cfg.get("dropout"), (int, float)) and cfg["dropout"] > 0:
        drops = [{"layer": "dropout", "p": float(cfg["dropout"]), "type": "Dropout"}]
    for d in drops:
        if d["p"] > HIGH_DROPOUT_P:
            out.append(Finding(
                "HIGH_DROPOUT", "warning", d["layer"], None,
                f"{d['type']}(p={d['p']:g}) at {d['layer']} drops {100 * d['p']:.0f} % of the units: in PyTorch p is the "
                f"probability of DROPPING a unit, not of keeping it (TensorFlow 1's keep_prob). If you meant to keep "
                f"{100 * d['p']:.0f} %, use p={1 - d['p']:.2g}.",
                {"p": d["p"], "keep_probability": 1 - d["p"], "limit": HIGH_DROPOUT_P},
                f"Use nn.Dropout(p={1 - d['p']:.2g}) if {d['p']:g} was a keep-probability; rates above {HIGH_DROPOUT_P} "
                "are rarely useful.", d.get("member"), _seed_of(s, d.get("member"))))
    for layer, steps in (s.get("missing_grad") or {}).items():
        out.append(Finding(
            "NO_GRADIENT", "warning", layer, int(steps[0]) if steps else None,
            f"{layer} has trainable parameters but received no gradient at recorded steps {steps[:5]}: it is not used in "
            "the forward pass, its output is detached, or the gradients were cleared before rec.step().",
            {"steps": list(steps)}, "Check the forward pass uses this layer, or freeze it (requires_grad_(False)); "
            "call rec.step() after optimizer.step() and before optimizer.zero_grad().", None, None))
    for err in (s.get("errors") or [])[:3]:
        out.append(Finding("RECORDER_ERROR", "warning", None, None,
                           f"A statistic could not be computed and was skipped: {err}", {"error": err},
                           "Report this with the model definition; training itself was not affected.", None, None))
    return out


def _seed_of(summary: dict, member):
    seeds = summary.get("member_seeds")
    return seeds[member] if member is not None and seeds and member < len(seeds) else None


def _bounds(op: str, lo, hi):
    """The interval a bounded op maps into: sigmoid-like and softmax [0, 1], tanh-like [-1, 1], else as observed."""
    name = str(op).lower()
    if "sigmoid" in name or "softmax" in name:
        return 0.0, 1.0
    if "tanh" in name or "clamp" in name or lo is None:
        return -1.0, 1.0
    return lo, hi


def _output_range(ctx):
    lo, hi = ctx.quantity("output_min"), ctx.quantity("output_max")
    if lo.empty or hi.empty:
        return None, None
    return float(hi["value"].max()), float(lo["value"].min())


def _input(ctx: _Context) -> list[Finding]:
    q = {k: ctx.quantity(f"input_{k}") for k in ("min", "max", "mean", "std")}
    if q["std"].empty:
        return []
    std, mean = float(q["std"]["value"].max()), float(q["mean"]["value"].abs().max())
    if not (std > INPUT_STD_MAX or mean > INPUT_MEAN_MAX):
        return []
    lo, hi = float(q["min"]["value"].min()), float(q["max"]["value"].max())
    step = int(q["std"]["step"].min())
    return [Finding(
        "UNNORMALIZED_INPUT", "warning", "<input>", step,
        f"The model's inputs are far outside a normalised range: values in [{_g(lo)}, {_g(hi)}], mean {_g(mean)}, "
        f"std {_g(std)} (normalised data have mean ~0 and std ~1; limits {INPUT_MEAN_MAX:g}/{INPUT_STD_MAX:g}). "
        f"Raw 0-255 pixels make pre-activations huge" + (" and exp() overflows above 88.7" if hi > 88.7 else "") + ".",
        {"min": lo, "max": hi, "mean": mean, "std": std}, "Scale the inputs, e.g. x / 255 or (x / 255 - 0.5) / 0.5, "
        "or standardise with the training set's mean and std.", None, None)]


def _loss_not_learning(ctx: _Context) -> list[Finding]:
    loss = ctx.quantity("loss")
    kind = ((ctx.summary or {}).get("loss") or {}).get("kind")
    if loss.empty or kind not in ("cross_entropy", "nll"):
        return []
    chance = math.log(ctx.num_classes)
    out = []
    for member, seed in _members(loss):
        rows = loss[loss["member"] == member].sort_values("step")
        if rows["step"].nunique() < NOT_LEARNING_MIN_STEPS:
            continue
        tail = rows.iloc[int(len(rows) * (1 - LOSS_TAIL_FRACTION)):]
        last = float(tail["value"].mean())
        if math.isfinite(last) and last > chance * (1 - LOSS_CHANCE_FRACTION):
            out.append(Finding(
                "NOT_LEARNING", "error", "<model>", int(tail["step"].iloc[-1]),
                f"The loss is stuck at the chance level{_who(member, seed)}: mean {last:.4f} over the last "
                f"{len(tail)} steps (to step {int(tail['step'].iloc[-1])}) against ln({ctx.num_classes}) = {chance:.4f}, "
                "the loss of a uniform guess.",
                {"loss_tail_mean": last, "chance_loss": chance, "steps": int(rows["step"].nunique())},
                "Look at the gradient findings (vanishing, saturation, update ratio); try a ReLU-family activation, "
                "another initialisation, Adam, or a higher learning rate.", member, seed))
    return out


# --------------------------------------------------------------------------- rules on run metrics


def _acc_fraction(x: pd.Series) -> pd.Series:
    return x / 100.0 if x.max() > 1.0 else x


def _run_rules(ctx: _Context) -> list[Finding]:
    m = ctx.metrics
    if m is None or not isinstance(m, pd.DataFrame) or m.empty or "val_acc" not in m:
        return []
    chance = 1.0 / ctx.num_classes
    out = []
    seeds = m["seed"].dropna().unique() if "seed" in m else [None]
    for seed in seeds:
        rows = (m[m["seed"] == seed] if seed is not None else m).sort_values("epoch")
        if "past_stop" in rows:
            rows = rows[~rows["past_stop"].fillna(False).astype(bool)]
        if rows.empty:
            continue
        acc = _acc_fraction(rows["val_acc"].astype(float))
        best = float(acc.max())
        sd = None if seed is None else int(seed)
        if best > chance + CHANCE_MARGIN:
            continue
        last_epoch = int(rows["epoch"].iloc[-1])
        out.append(Finding(
            "NOT_LEARNING", "error", "<model>", None,
            f"Validation accuracy never left chance{_who(0, sd)}: best {100 * best:.2f} % over {len(rows)} epochs "
            f"(chance {100 * chance:.1f} % with {ctx.num_classes} classes).",
            {"best_val_acc": best, "chance": chance, "epochs": len(rows), "last_epoch": last_epoch},
            "Look at the gradient findings; try a ReLU-family activation, another initialisation or optimizer.",
            None, sd))
        plateau = _plateau(ctx, rows, sd)
        if plateau is not None:
            out.append(plateau)
    return out


def _plateau(ctx: _Context, rows: pd.DataFrame, seed) -> Finding | None:
    """PLATEAU_STOP: early stopping ended a run at chance while it was still (slowly) moving."""
    max_epochs = ctx.config.get("max_epochs")
    stopped = False
    if "stopped" in rows and rows["stopped"].fillna(False).astype(bool).any():
        stopped = True
    res = ctx.results
    if isinstance(res, pd.DataFrame) and not res.empty and "stopped_epoch" in res:
        r = res[res["seed"] == seed] if seed is not None and "seed" in res else res
        if not r.empty and pd.notna(r["stopped_epoch"].iloc[0]):
            trained = r["epochs_trained"].iloc[0] if "epochs_trained" in r else r["stopped_epoch"].iloc[0]
            stopped = stopped or max_epochs is None or int(trained) < int(max_epochs)
    if not stopped and max_epochs is not None and len(rows) < int(max_epochs):
        stopped = True
    if not stopped:
        return None
    signs, ev = [], {"epochs": len(rows), "max_epochs": max_epochs, "patience": ctx.config.get("patience")}
    if "train_loss" in rows and len(rows) >= 3:
        tl = rows["train_loss"].astype(float).to_numpy()
        slope = float(np.polyfit(np.arange(len(tl)), tl, 1)[0])
        drop = float(tl[0] - tl[-1])
        ev.update(train_loss_first=float(tl[0]), train_loss_last=float(tl[-1]), train_loss_slope=slope)
        if slope < 0 and drop > PLATEAU_MIN_DROP * abs(tl[0]):
            signs.append(f"the training loss was still falling ({tl[0]:.4f} -> {tl[-1]:.4f}, {slope:.2e} per epoch)")
    params = ctx.layers("param")
    g = ctx.quantity("grad_std")
    if params and not g.empty:
        first = g[g["layer"] == params[0]["name"]]
        if seed is not None:
            first = first[first["seed"].eq(seed).fillna(False).astype(bool)]
        first = first.sort_values("step")
        if len(first) >= 2 and first["value"].iloc[0] > 0:
            growth = float(first["value"].iloc[-1] / first["value"].iloc[0])
            ev["first_layer_grad_growth"] = growth
            if growth >= PLATEAU_GRAD_GROWTH:
                signs.append(f"{params[0]['name']}'s gradient had grown {growth:.1f}x since the start")
    if not signs:
        return None
    return Finding(
        "PLATEAU_STOP", "warning", "<model>", None,
        f"Early stopping ended the run after {len(rows)} epochs{_who(0, seed)} while it was still on its initial "
        f"plateau, but {' and '.join(signs)}: stopped, not unable.", ev,
        "Give early stopping more patience (or a minimum number of epochs), or help the net off the plateau: "
        "Adam or a higher learning rate, another initialisation (xavier/kaiming), a ReLU-family activation.",
        None, seed)


# --------------------------------------------------------------------------- entry points

_SEV_RANK = {"error": 0, "warning": 1, "info": 2}


def diagnose(obj, metrics: pd.DataFrame | None = None, num_classes: int | None = None) -> list[Finding]:
    """Findings for a Recorder, a loaded recording (or its directory), or a stored run.

    metrics     -- per-epoch metrics (seed, epoch, train_loss, val_acc, ...) when ``obj`` has none
    num_classes -- for the chance levels; default from the run config / model, else 10
    """
    ctx = _resolve(obj, metrics, num_classes)
    findings: list[Finding] = []
    if ctx.summary is not None:
        if not ctx.summary.get("steps"):
            findings.append(Finding("NO_DATA", "info", None, None,
                                    "Nothing was recorded: rec.step() was never called inside the `with Recorder(...)` block.",
                                    {}, "Call rec.step() once per training step, after optimizer.step()."))
        for rule in (_nonfinite, _gradient_flow, _update_ratio, _saturation, _dead_units, _input, _loss_not_learning):
            findings.extend(rule(ctx))
    findings.extend(_structure(ctx))
    run_findings = _run_rules(ctx)
    if any(f.code == "NOT_LEARNING" for f in run_findings):  # the accuracy verdict supersedes the loss one
        findings = [f for f in findings if f.code != "NOT_LEARNING"]
    findings.extend(run_findings)
    findings.sort(key=lambda f: (_SEV_RANK[f.severity], f.step if f.step is not None else -1, f.code))
    return findings


def format_findings(findings: list[Finding]) -> str:
    """Findings as text for a terminal, most severe first."""
    if not findings:
        return "No findings: nothing unusual in the recorded gradient flow."
    lines = []
    for f in findings:
        where = " ".join(p for p in (f"layer {f.layer}" if f.layer else "",
                                     f"step {f.step}" if f.step is not None else "",
                                     f"seed {f.seed}" if f.seed is not None else "") if p)
        lines.append(f"{f.severity.upper():7} {f.code}" + (f" [{where}]" if where else ""))
        lines.append(f"        {f.message}")
        if f.suggestion:
            lines.append(f"        -> {f.suggestion}")
    return "\n".join(lines)
