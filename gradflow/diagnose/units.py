"""Rules on units: dead units, saturated units, and units that are copies of each other."""
from __future__ import annotations

import pandas as pd

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, num, who

# Dead units (no example moves them during a full pass). The tutorial's untrained ReLU net has
# 7.8 % dead in its last hidden layer; a quarter is a real loss of capacity, 90 % a broken layer.
DEAD_WARNING = 0.25
DEAD_ERROR = 0.9


def dead_units(ev: Evidence) -> list[Finding]:
    """DEAD_UNITS from the latest dead-unit pass."""
    if ev.tables is None or ev.tables["dead_units"].empty:
        return []
    dead = ev.tables["dead_units"]
    out = []
    for r in dead[dead["step"] == dead["step"].max()].itertuples(index=False):
        if r.dead_fraction < DEAD_WARNING:
            continue
        seed = None if pd.isna(r.seed) else int(r.seed)
        outcome = ev.outcome(int(r.member), seed)
        # a layer (almost) entirely dead passes (almost) nothing: that alone hurts the run, unless the run
        # is seen learning all the same (then a warning); a partly dead layer follows the run's outcome
        if r.dead_fraction >= DEAD_ERROR:
            sev = "warning" if outcome.verdict == "fine" else "error"
        else:
            sev = ev.severity(int(r.member), seed, unambiguous=False)
        out.append(Finding("DEAD_UNITS", sev, r.layer, int(r.step),
                           f"{r.dead} of {r.units} units of {ev.layer_title(r.layer)} ({100 * r.dead_fraction:.1f} %) "
                           f"are dead{who(r.member, seed)}: over all {r.examples} examples they never pass a gradient "
                           f"or carry a signal{_learns(outcome, sev)}.",
                           {"dead": int(r.dead), "units": int(r.units), Q.DEAD_FRACTION: float(r.dead_fraction),
                            "examples": int(r.examples), "run": outcome.verdict, "run_reason": outcome.reason},
                           "Use LeakyReLU/ELU/swish instead of ReLU, a lower learning rate, kaiming initialisation, "
                           "or normalisation before the activation.", int(r.member), seed))
    return out


# Saturation (fraction of units whose derivative is < 6 % of the maximum). Bounded activations
# (tanh, sigmoid) flat on both sides: a quarter of the units saturated starves the layer behind.
SATURATION_BOUNDED = 0.25
# One-sided activations (ReLU family) are "flat" for every negative input: about half the units
# at initialisation is normal, so only near-total silence is reported, and only as info.
SATURATION_ONE_SIDED = 0.95
SATURATION_STRONG = 0.5  # half a bounded layer's units flat: unambiguous


def _learns(outcome, severity: str) -> str:
    """What a run that learns adds to a unit finding, true to its severity: a note is a note, but a gross
    symptom stays a warning (Evidence.severity) and must not call itself one."""
    if outcome.verdict != "fine":
        return ""
    if severity == "info":
        return "; the run learns all the same, so this is a note"
    return "; the run learns all the same, but this many units is far past the limit: it may learn less than it could"


def _first_nonfinite_step(ev: Evidence) -> dict:
    """(member, seed) -> the first step at which the sentinel saw a NaN/inf in that model."""
    t = (ev.tables or {}).get("nonfinite")
    if t is None or t.empty or "member" not in t:
        return {}
    t = t[t["member"] >= 0]  # -1: a loss shared by every member, told by the members' own sightings
    first = t.groupby(["member", "seed"], dropna=False)["step"].min()  # the recording's nonfinite table has both
    return {(int(m), None if pd.isna(s) else int(s)): int(step) for (m, s), step in first.items()}


def saturation(ev: Evidence) -> list[Finding]:
    """SATURATION: the median saturated fraction over the second half of training, above its limit."""
    from .outputs import output_fits_targets
    sat = ev.quantity(Q.SATURATION)
    info = {a["name"]: a for a in ev.layers("activation")}
    fitting = output_fits_targets(ev)  # an output pushed to the ends of its range by targets that lie there
    broken = _first_nonfinite_step(ev)
    out = []
    for (member, layer), rows in sat.groupby(["member", "layer"]):
        rows = rows.sort_values("step")
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        # after a NaN/inf every unit reads as flat: that is NONFINITE's story, not saturation
        rows = rows[rows["step"] < broken.get((int(member), seed), float("inf"))]
        if rows.empty:
            continue
        tail = rows.iloc[len(rows) // 2:]  # the second half of training: where the net has settled
        med = float(tail["value"].median())
        a = info.get(layer, {})
        bounded = bool(a.get("bounded"))
        limit = SATURATION_BOUNDED if bounded else SATURATION_ONE_SIDED
        if not med > limit:
            continue
        step, member = int(tail["step"].iloc[-1]), int(member)
        outcome = ev.outcome(member, seed)
        # one-sided activations (ReLU family) silent on one side: a note at most; bounded ones by the run
        sev = ev.severity(member, seed, unambiguous=med > SATURATION_STRONG) if bounded and layer != fitting else "info"
        act = a.get("activation", "?")
        # a ReLU is flat on its negative side only: its "saturated" units are switched off, and the advice
        # is about what pushed them negative, not "use a non-saturating activation such as relu"
        relu_like = "relu" in str(act).lower() and "leaky" not in str(act).lower()  # flat at exactly 0 for x < 0
        where = (f"sit in the flat region of the activation{who(member, seed)}" if bounded else
                 f"are switched off{who(member, seed)}: their input is negative, where {act} is flat" if relu_like else
                 f"sit far out on the negative side{who(member, seed)}, where {act} flattens")
        out.append(Finding(
            "SATURATION", sev, layer, step,
            f"{100 * med:.1f} % of the units of {ev.layer_title(layer)} ({act}) {where} (derivative below 6 % of its "
            f"maximum; median over recorded steps {int(tail['step'].iloc[0])}-{step}; limit {100 * limit:.0f} %): "
            "little gradient passes them"
            + ("; this is the output, and its targets lie in its range, so outputs at its ends are fitting targets "
               "there (the dark pixels of an image, say), not units stuck; a note" if layer == fitting else
               _learns(outcome, sev)) + ".",
            {"saturation_median": med, "limit": limit, "bounded": bounded, "steps": [int(tail["step"].iloc[0]), step],
             "run": outcome.verdict, "run_reason": outcome.reason, **({} if bounded else {"cause": "one_sided"})},
            ("Normalise the layer's input (BatchNorm/LayerNorm), use a smaller initialisation or learning rate, "
             "or a non-saturating activation (relu, leakyrelu, elu, swish)." if bounded else
             "Find what pushes the units negative (a bias initialised far negative, too high a learning rate, "
             f"unnormalised inputs: see the likely causes); {'ELU' if 'leaky' in str(act).lower() else 'LeakyReLU or ELU'} "
             f"instead of {act} keeps a gradient "
             "for negative inputs."), member, seed))
    return out


# Units that are copies of each other: their weights' spread across units, over their size, at the last
# recorded step. Random initialisation gives ~1 (0.58 for a uniform draw); units that started equal
# stay equal to the last bit (float rounding is the same for each), so the limit only has to sit far
# above 0 and far below any real spread.
SYMMETRIC_SPREAD = 1e-6
# The std of weights set to one constant is 0 up to float rounding (1e-10 for 0.01 with one torch thread,
# exactly 0 with two: the summation order differs); any real initialisation's is above 1e-4.
CONSTANT_STD = 1e-8


def copied_layers(spread) -> set:
    """(member, layer) of the weight layers whose units are copies of each other at their last recorded
    step (``spread``: the recording's unit_spread rows)."""
    return {(int(m), layer) for (m, layer), rows in spread.groupby(["member", "layer"], sort=False)
            if float(rows.sort_values("step")["value"].iloc[-1]) <= SYMMETRIC_SPREAD}


def symmetric_units(ev: Evidence) -> list[Finding]:
    """SYMMETRIC_UNITS: every unit of a weight layer is still a copy of the others after training
    steps (constant or zero initialisation: identical units get identical gradients, forever)."""
    spread = ev.quantity(Q.UNIT_SPREAD)
    if spread.empty:
        return []
    w_std = ev.quantity(Q.WEIGHT_STD)
    # units: dim 0 of the weight, dim 1 when dim 0 holds the members (gradflow's stacked layers)
    units_of = {e["name"]: (e.get("shape") or [None, None])[1 if (e.get("members") or 1) > 1 else 0]
                for e in ev.layers("param")}
    out, copies = [], copied_layers(spread)
    for (member, layer), rows in spread.groupby(["member", "layer"], sort=False):
        rows = rows.sort_values("step")
        last = float(rows["value"].iloc[-1])
        if len(rows) < 2 or (int(member), layer) not in copies:
            continue  # one recorded step says nothing about training; distinct units
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        first_std = w_std[(w_std["member"] == member) & (w_std["layer"] == layer)].sort_values("step")["value"]
        started_constant = len(first_std) > 0 and float(first_std.iloc[0]) <= CONSTANT_STD
        units = units_of.get(layer)
        title = ev.layer_title(layer)
        out.append(Finding(
            "SYMMETRIC_UNITS", ev.severity(int(member), seed, unambiguous=True), layer, int(rows["step"].iloc[-1]),
            f"All {units or 'the'} units of {title} are copies of each other at step {int(rows['step'].iloc[-1])}"
            f"{who(member, seed)}, the last of {len(rows)} recorded steps (their incoming weights differ between "
            f"units by {num(last)} of their size): units that start identical get identical gradients, so they "
            "stay identical and the layer works like a single unit."
            + (" Its weights started as one constant (std 0 at the first recorded step)." if started_constant else ""),
            {"spread_last": last, "steps": [int(x) for x in rows["step"]], "units": units,
             "started_constant": started_constant},
            "Initialise the weights at random (PyTorch's default, or nn.init.kaiming_uniform_ / xavier_uniform_): "
            "a constant or zero initialisation never breaks the symmetry between units.", int(member), seed))
    return out
