"""Rules on weight gradients: vanishing or exploding flow, gradients too large for their weights,
the update:data ratio. Ratios are judged only where they mean something: normalisation scales and
constant-initialised parameters (std ~0 at the start) are judged on their own scale, or skipped; a
symptom's severity follows how the run went (``Evidence.severity``)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, num, round_number, who, who_clause
from .optimization import stalled_updates

# Gradient flow: first vs last trainable layer's weight-gradient std (median over recorded steps).
# Healthy ReLU/tanh MLPs stay within one order of magnitude of each other; the tutorial's sigmoid
# net at initialisation is at ~1e-4 (input layer ~1e-5, output layer ~0.1).
VANISHING_RATIO = 1e-2  # two orders of magnitude smaller at the input end
EXPLODING_RATIO = 1e2  # two orders of magnitude larger at the input end



def _below(ratio: float) -> str:
    """How many times below the healthy 1e-3 an update:data ratio is, said plainly (19, 30, 1,200)."""
    times = 1e-3 / ratio if ratio > 0 else float("inf")
    return "infinitely many" if times == float("inf") else f"{times:,.0f}" if times >= 10 else f"{times:.1f}"

def _first_last_ratio(g: pd.DataFrame, member: int, first: str, last: str) -> pd.DataFrame | None:
    """Per recorded step, the two layers' gradient std where both are finite and non-zero."""
    gm = g[g["member"] == member].pivot_table(index="step", columns="layer", values="value")
    if first not in gm or last not in gm:
        return None
    both = gm[[first, last]].replace(0, np.nan).dropna()
    both = both[np.isfinite(both).all(axis=1)]
    return None if both.empty else both


def _cause_of_vanishing(ev: Evidence) -> str:
    """Why a bounded activation shrinks the gradient, true to its derivative: sigmoid's is at most 0.25
    (small everywhere), tanh's at most 1 (small only away from 0, where units saturate)."""
    acts = [a for a in ev.layers("activation") if a.get("bounded")]
    if not acts:
        return ""
    name, peak = acts[0]["activation"], (acts[0].get("max_derivative") or [float("nan")])[0]
    if peak is None or not math.isfinite(peak):
        return f"; {name} is flat at both ends, so the units that saturate pass almost no gradient back"
    if peak < SMALL_MAX_DERIVATIVE:
        return (f"; {name}'s derivative is at most {num(peak)}, so at each {name} layer the gradient is multiplied "
                f"by {num(peak)} or less on its way back (the weights multiply in a factor of their own)")
    return (f"; {name}'s derivative is at most {num(peak)} (at 0) and falls fast away from 0: wherever units sit "
            f"away from 0 or saturate it is well below 1, so each {name} layer shrinks the gradient")


def _vanishing_fix(ev: Evidence) -> str:
    """What to try, for the activation the net has: sigmoid's small derivative, tanh's saturation, or
    neither (then the initialisation or the depth)."""
    acts = [a for a in ev.layers("activation") if a.get("bounded")]
    peak = (acts[0].get("max_derivative") or [float("nan")])[0] if acts else None
    if acts and peak is not None and math.isfinite(peak) and peak < SMALL_MAX_DERIVATIVE:
        return (f"Replace {acts[0]['activation']} in the hidden layers by a ReLU-family activation (relu, leakyrelu, "
                "elu, swish) or tanh; or add normalisation layers (BatchNorm/LayerNorm) before it.")
    if acts:
        return (f"Keep {acts[0]['activation']}'s units out of saturation: xavier initialisation, normalised inputs, "
                "normalisation layers; or use a ReLU-family activation (relu, leakyrelu, elu, swish).")
    return ("Use an initialisation that matches the activation (kaiming for the ReLU family), normalisation layers, "
            "or residual connections in a deep net.")


# A maximum derivative below this is small enough to shrink the gradient at every layer (sigmoid's 0.25).
SMALL_MAX_DERIVATIVE = 0.5
STRONG = 10.0  # beyond the limit by a further factor of ten: the evidence is unambiguous


def gradient_flow(ev: Evidence) -> list[Finding]:
    """VANISHING_GRADIENT / EXPLODING_GRADIENT from the first vs last *weight* layer's gradient std
    (normalisation scales and constant-initialised parameters have their own scale: left out)."""
    # the model's own parameters (`<root>`) are left out too: the root's hook fires after the whole forward,
    # so its place in the forward order says nothing about where they act (often at the input: embeddings)
    params = [e for e in ev.weight_layers() if e["name"] != Q.ROOT_LAYER]
    g = ev.quantity(Q.GRAD_STD)
    if len(params) < 2 or g.empty:
        return []
    first, last = params[0]["name"], params[-1]["name"]
    t_first, t_last = ev.layer_title(first), ev.layer_title(last)
    out = []
    for member, seed in ev.members(g):
        both = _first_last_ratio(g, member, first, last)
        if both is None:
            continue
        r = both[first] / both[last]
        med, s0 = float(np.exp(np.median(np.log(r)))), int(both.index[0])
        outcome = ev.outcome(member, seed)
        ev_ = {"first_layer": first, "last_layer": last, "ratio_median": med, "ratio_first_step": float(r.iloc[0]),
               "first_grad_std": float(both[first].iloc[0]), "last_grad_std": float(both[last].iloc[0]),
               "recorded_steps": len(r), "run": outcome.verdict, "run_reason": outcome.reason}
        cite = (f"the weight gradient of {t_first} has std {num(ev_['first_grad_std'])} against "
                f"{num(ev_['last_grad_std'])} in {t_last} at step {s0}, {_times(ev_['ratio_first_step'])} "
                + (f"(median over {len(r)} recorded steps: {_times(med)})" if len(r) > 1 else "(one recorded step)"))
        if med < VANISHING_RATIO:
            sev = ev.severity(member, seed, unambiguous=med < VANISHING_RATIO / STRONG)
            out.append(Finding("VANISHING_GRADIENT", sev, first, s0,
                               f"Gradients vanish towards the input{who(member, seed)}: {cite}"
                               f"{_cause_of_vanishing(ev)}{_run_note(outcome, sev)}.", ev_, _vanishing_fix(ev), member, seed))
        elif med > EXPLODING_RATIO:
            sev = ev.severity(member, seed, unambiguous=med > EXPLODING_RATIO * STRONG)
            out.append(Finding("EXPLODING_GRADIENT", sev, first, s0,
                               f"Gradients grow towards the input{who(member, seed)}: {cite}{_run_note(outcome, sev)}.",
                               {**ev_, "cause": "flow"},
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), use a smaller "
                               "initialisation or normalisation layers.", member, seed))
    return out


def _times(ratio: float) -> str:
    """A ratio in words: '1/6,800 of it' or '120 times it'."""
    if not math.isfinite(ratio) or ratio <= 0:
        return f"ratio {num(ratio)}"
    if ratio < 1:
        return f"1/{round_number(1 / ratio)} of it"
    return f"{round_number(ratio)} times it"


def _run_note(outcome, severity: str) -> str:
    """What the run's outcome adds: a borderline symptom in a run that learns is a note (info); a gross one
    stays a warning (Evidence.severity), and its text must not call it a note."""
    if outcome.verdict == "fine":
        learns = "; the run learns all the same (the loss falls / the accuracy is above chance)"
        return learns + (", so this is a note" if severity == "info" else
                         ", but this is far past the limit: it may learn less than it could")
    if outcome.verdict == "slow":
        return "; the loss is still near chance but falling slowly"
    return ""


EXPLODING_GRAD_DATA = 10.0  # a gradient ten times the weights' own scale: one SGD step rewrites them
EXPLODING_GROWTH = 1e3  # weight-gradient norm grew a thousandfold since the first recorded step


def _largest_growth(norms: pd.DataFrame):
    """(layer, growth, first step, last step) of the layer whose gradient norm grew most, above the limit."""
    growth = None
    for layer, rows in norms.groupby("layer"):
        if len(rows) >= 2:
            gr = rows["value"].iloc[-1] / rows["value"].iloc[0]
            if gr > EXPLODING_GROWTH and (growth is None or gr > growth[1]):
                growth = (layer, float(gr), int(rows["step"].iloc[0]), int(rows["step"].iloc[-1]))
    return growth


def _on_own_scale(ev: Evidence, ratio_q: str, numerator) -> pd.DataFrame:
    """Rows of a ratio quantity judged on each layer's own scale: the recorded ratio (divided by the
    weight's std) for weight layers; for normalisation scales and constant-initialised parameters
    ``numerator(rows of that layer)`` divided by the parameter's RMS when first recorded (a scale of
    ones: 1), skipped while that RMS is 0 (zeros have no scale to compare with)."""
    ratios = ev.quantity(ratio_q)
    weights = {e["name"] for e in ev.weight_layers()}
    parts = [ratios[ratios["layer"].isin(weights)].assign(scale="std")]
    for e in ev.layers("param"):
        if e["name"] in weights:
            continue
        for member, rows in numerator(e["name"]).groupby("member"):
            rms = ev.init_rms(e["name"], int(member))
            if rms and rms > 0:
                parts.append(rows.assign(value=rows["value"] / rms, scale="rms"))
    out = pd.concat([p for p in parts if not p.empty]) if any(not p.empty for p in parts) else ratios.iloc[:0]
    return out[np.isfinite(out["value"].astype(float))]


def _grad_std_of(ev: Evidence):
    g = ev.quantity(Q.GRAD_STD)
    return lambda layer: g[g["layer"] == layer]


def _update_std_of(ev: Evidence):
    """std of the optimizer's change: update:data ratio times the weight's std (where both exist)."""
    u, w = ev.quantity(Q.UPDATE_DATA_RATIO), ev.quantity(Q.WEIGHT_STD)

    def rows(layer):
        both = u[u["layer"] == layer].merge(w[w["layer"] == layer][["step", "member", "value"]],
                                             on=["step", "member"], suffixes=("", "_w"))
        return both.assign(value=both["value"] * both["value_w"]).drop(columns="value_w")
    return rows


def exploding_scale(ev: Evidence) -> list[Finding]:
    """EXPLODING_GRADIENT from a gradient far larger than its weights' own scale, or a norm that grew
    a thousandfold."""
    out = []
    gd, gn = _on_own_scale(ev, Q.GRAD_DATA_RATIO, _grad_std_of(ev)), ev.quantity(Q.GRAD_NORM)
    for member, seed in ev.members(ev.quantity(Q.GRAD_STD)):
        d = gd[gd["member"] == member]
        big = d[d["value"] > EXPLODING_GRAD_DATA]
        growth = _largest_growth(gn[(gn["member"] == member) & np.isfinite(gn["value"]) & (gn["value"] > 0)]
                                 .sort_values("step"))
        outcome = ev.outcome(member, seed)
        if not big.empty:
            r = big.sort_values("step").iloc[0]
            layer, value, step = r["layer"], float(r["value"]), int(r["step"])
            scale = "the std of its weights" if r["scale"] == "std" else "the size (RMS) of its values"
            sev = ev.severity(member, seed, unambiguous=value > EXPLODING_GRAD_DATA * STRONG)
            out.append(Finding("EXPLODING_GRADIENT", sev, layer, step,
                               f"The weight gradient of {ev.layer_title(layer)} is {round_number(value)} times {scale} at "
                               f"step {step}{who(member, seed)} (limit {EXPLODING_GRAD_DATA:g}): a plain SGD step at "
                               f"a learning rate of {num(1 / value)} would already change its weights by their whole "
                               f"spread{_run_note(outcome, sev)}.",
                               {Q.GRAD_DATA_RATIO: value, "threshold": EXPLODING_GRAD_DATA, "scale": r["scale"],
                                "run": outcome.verdict, "run_reason": outcome.reason, "cause": "grad_vs_weights"},
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), normalise "
                               "the inputs.", member, seed))
        elif growth is not None:
            layer, gr, s0, s1 = growth
            sev = ev.severity(member, seed, unambiguous=False)
            out.append(Finding("EXPLODING_GRADIENT", sev, layer, s1,
                               f"The gradient norm of {ev.layer_title(layer)} grew {round_number(gr)} times between steps "
                               f"{s0} and {s1}{who(member, seed)}{_run_note(outcome, sev)}.",
                               {"growth": gr, "from_step": s0, "to_step": s1, "run": outcome.verdict,
                                "run_reason": outcome.reason, "cause": "growth"},
                               "Lower the learning rate or clip gradients; look for a diverging loss.", member, seed))
    return out


# Update:data ratio (std of the optimizer's change / std of the weight): ~1e-3 is healthy
# (Karpathy, makemore part 3). Two orders of magnitude either way is a learning-rate problem.
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1


def update_ratio(ev: Evidence) -> list[Finding]:
    """UPDATE_RATIO: a layer's median update:data ratio far from 1e-3. Normalisation scales and
    constant-initialised parameters are judged against their own RMS, and only for moving too fast
    (a scale of ones that barely moves is how a normalised net often trains)."""
    u = _on_own_scale(ev, Q.UPDATE_DATA_RATIO, _update_std_of(ev))
    # Recorded steps where no layer of the member moved had no optimizer step before them (rec.step()
    # called per micro-batch of an accumulated step): they say nothing about the step size.
    moved = u.assign(nonzero=u["value"] != 0).groupby(["member", "step"])["nonzero"].transform("any")
    u = u[moved]
    fastest = _fastest_weight_layer(u)
    # members whose every weight layer barely moves: not a borderline layer but a stalled net, worth a
    # warning even when its accuracy crawls a little above chance
    stalled = {int(m) for m, g in _weight_medians(u).groupby(level=0) if len(g) >= 2 and g.max() < UPDATE_RATIO_LOW}
    # a layer whose learning rate decayed to nothing mid-run has a small median too: one cause, one finding,
    # the one that says why (stalled_updates); a second saying "raise the learning rate" would contradict it
    decayed = {(f.member, f.layer) for f in stalled_updates(ev)}
    out = []
    for (member, layer), rows in u.groupby(["member", "layer"], sort=False):
        if (rows["value"] == 0).all():
            continue  # no optimizer step between the recorded steps (a one-batch snapshot), not a tiny one
        med = float(rows["value"].median())
        own_scale = rows["scale"].iloc[0] == "rms"
        if (UPDATE_RATIO_LOW <= med or own_scale) and med <= UPDATE_RATIO_HIGH:
            continue
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        member = int(member)
        small = med < UPDATE_RATIO_LOW
        if small and (member, layer) in decayed:
            continue
        outcome = ev.outcome(member, seed)
        strong = (med < UPDATE_RATIO_LOW / STRONG or member in stalled) if small else med > UPDATE_RATIO_HIGH * STRONG
        what = "the std of its weights" if not own_scale else "the size (RMS) of its values"
        sev = ev.severity(member, seed, unambiguous=strong)
        out.append(Finding(
            "UPDATE_RATIO", sev, layer, int(rows["step"].min()),
            f"Each optimizer step changes {ev.layer_title(layer)} by {num(med)} times {what} (median over "
            f"{len(rows)} recorded steps{who_clause(member, seed)}); about 0.001 is healthy: the layer "
            f"{'barely moves' if small else 'is rewritten too fast'}{_run_note(outcome, sev)}.",
            {"median": med, "low": UPDATE_RATIO_LOW, "high": UPDATE_RATIO_HIGH, "steps": len(rows),
             "scale": rows["scale"].iloc[0], "run": outcome.verdict, "run_reason": outcome.reason,
             "cause": "small" if small else "large"},
            (_slow_layer_fix(ev, fastest.get(member)) if small else
             "Lower the learning rate, or use warm-up / gradient clipping."), member, seed))
    return out + _whole_net_slow(ev, u, {(f.member, f.layer) for f in out} | decayed)


def _fastest_weight_layer(u: pd.DataFrame) -> dict:
    """member -> (layer, median update:data ratio) of its weight layer that moves most."""
    weights = u[u["scale"] != "rms"] if "scale" in u else u
    weights = weights[weights["value"] > 0]
    medians = weights.groupby(["member", "layer"], sort=False)["value"].median()
    fastest: dict = {}
    for (member, layer), med in medians.items():
        if int(member) not in fastest or med > fastest[int(member)][1]:
            fastest[int(member)] = (str(layer), float(med))
    return fastest


def _slow_layer_fix(ev: Evidence, fastest) -> str:
    """One learning rate moves every layer: when another layer moves at a healthy rate, the slow one's
    own gradient is what is small, and raising the rate would rewrite the healthy layer too fast."""
    if fastest is not None and fastest[1] >= WHOLE_NET_LOW:
        return (f"Fix what makes this layer's gradient small (see VANISHING_GRADIENT) rather than the learning "
                f"rate: the same optimizer moves {ev.layer_title(fastest[0])} by {num(fastest[1])} per step, "
                "so a higher rate would push that layer harder.")
    return "Raise the learning rate (or fix what makes this layer's gradient vanish)."


# Every weight layer at least ten times below the healthy 1e-3: not one layer's vanishing gradient
# but a learning rate too low for the optimizer (Adam at 1e-6 moves each weight by ~1e-6 a step).
WHOLE_NET_LOW = 1e-4


def _weight_medians(u: pd.DataFrame) -> pd.Series:
    """Each member's weight layers' median update:data ratio (index member, layer), the moving steps
    only; norm scales and constant-initialised parameters (judged on their RMS) left out."""
    if u.empty or "value" not in u:  # an empty table (no recording) has no columns
        return pd.Series(dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["member", "layer"]))
    weights = u[u["scale"] != "rms"] if "scale" in u else u
    return weights[weights["value"] > 0].groupby(["member", "layer"])["value"].median()


def _whole_net_slow(ev: Evidence, u: pd.DataFrame, flagged: set) -> list[Finding]:
    """UPDATE_RATIO (cause all_small): every weight layer of a member moves slowly, none flagged alone."""
    out = []
    by_member = _weight_medians(u)
    for member, rows in u.groupby("member", sort=False):
        medians = by_member.loc[member] if member in by_member.index.get_level_values(0) else by_member.iloc[0:0]
        if len(medians) < 2 or medians.max() >= WHOLE_NET_LOW or any((member, lay) in flagged for lay in medians.index):
            continue
        member = int(member)
        seed = ev.seed_of(member)
        first = str(medians.index[0])
        out.append(Finding(
            "UPDATE_RATIO", ev.severity(member, seed, unambiguous=True), first, int(rows["step"].min()),
            f"Every weight layer moves slowly{who(member, seed)}: each optimizer step changes them by "
            f"{num(medians.min())} to {num(medians.max())} times the std of their weights (medians over the "
            f"recorded steps), {_below(medians.max())} to {_below(medians.min())} times below the healthy 0.001. One slow layer points at its "
            "gradient; all of them at once point at the learning rate.",
            {"cause": "all_small", "median_min": float(medians.min()), "median_max": float(medians.max()),
             "limit": WHOLE_NET_LOW, "layers": list(map(str, medians.index))},
            "Raise the learning rate (Adam usually wants 1e-4 to 1e-3; SGD 1e-2 to 1e-1 on normalised inputs).",
            member, seed))
    return out
