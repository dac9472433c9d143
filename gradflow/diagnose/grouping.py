"""One finding per cause: the rules' per-instance findings (one per member/seed and layer) merged
across seeds and layers, so twelve identical HIGH_DROPOUT findings for one setting read as one.

Instances belong together when they share the code and ``evidence["cause"]`` (a rule that has two
causes under one code keeps them apart that way). The grouped finding leads with the worst
instance's message and numbers (most severe, then the largest magnitude), says where it was seen
("Seen in 3 of 3 seeds (42, 43, 44) and 2 layers (Linear `layers.4`, Linear `layers.6`)") and keeps
every instance's evidence in ``instances``.
"""
from __future__ import annotations

import math

from .evidence import Evidence
from .finding import SEVERITY_RANK, Finding

# How bad an instance is, from its evidence: larger is worse. Codes not here rank by severity, then step.
_MAGNITUDE = {
    "DEAD_UNITS": lambda e: e.get("dead_fraction"),
    "SATURATION": lambda e: e.get("saturation_median"),
    "VANISHING_GRADIENT": lambda e: -_log(e.get("ratio_median")),
    "EXPLODING_GRADIENT": lambda e: _log(e.get("grad_data_ratio") or e.get("growth") or e.get("ratio_median")),
    "UPDATE_RATIO": lambda e: abs(_log(e.get("median")) + 3),  # distance from the healthy 1e-3
    "HIGH_DROPOUT": lambda e: e.get("p"),
    "NOT_LEARNING": lambda e: -(e.get("best_val_acc") or 0) if "best_val_acc" in e else e.get("loss_tail_mean"),
}
MAX_NAMED = 6  # seeds or layers named in a message; more are counted ("and 6 more")
SEEN_IN = " Seen in "  # starts the sentence grouping appends to the worst instance's message


def _log(x) -> float:
    try:
        return math.log10(float(x)) if float(x) > 0 else float("-inf")
    except (TypeError, ValueError):
        return 0.0


def _magnitude(f: Finding) -> float:
    try:
        m = float(_MAGNITUDE.get(f.code, lambda e: 0.0)(f.evidence) or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return m if math.isfinite(m) else (1e300 if m > 0 else -1e300)


def run_seeds(ev: Evidence) -> tuple[list[int], int]:
    """(the run's seeds, how many seeds or members it had), from the recording, metrics, results or config."""
    summary = ev.summary or {}
    seeds = [s for s in (summary.get("member_seeds") or []) if s is not None]
    for table in (ev.metrics, ev.results):
        if not seeds and table is not None and hasattr(table, "columns") and "seed" in table.columns:
            seeds = sorted(int(s) for s in table["seed"].dropna().unique())
    if not seeds:
        seeds = [int(s) for s in (ev.run_config.get("seeds") or [])]
    return seeds, max(len(seeds), int(summary.get("members") or 0), 1)


def _layer_order(ev: Evidence) -> dict:
    return {e["name"]: i for i, e in enumerate((ev.summary or {}).get("layers") or [])}


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _instance(f: Finding) -> dict:
    return {"layer": f.layer, "step": f.step, "member": f.member, "seed": f.seed, "severity": f.severity,
            "evidence": f.evidence}


def merge(instances: list[Finding], ev: Evidence, seeds: list[int], of_seeds: int) -> Finding:
    """One finding from the instances of one cause."""
    worst = min(instances, key=lambda f: (SEVERITY_RANK[f.severity], -_magnitude(f),
                                          f.step if f.step is not None else -1, f.member or 0))
    order = _layer_order(ev)
    first_seen = {}
    for f in instances:
        if f.layer is not None:
            first_seen.setdefault(f.layer, len(first_seen))
    layers = sorted(first_seen, key=lambda name: (order.get(name, len(order)), first_seen[name]))
    whole_run = any(f.member is None and f.seed is None for f in instances)
    # a rule that named the member only: its seed from the recording, so seeds and members agree
    seed_of = {f.member: f.seed if f.seed is not None else ev.seed_of(f.member) for f in instances}
    seen_seeds = set(seeds) if whole_run else ({f.seed for f in instances if f.seed is not None}
                                               | {s for s in seed_of.values() if s is not None})
    members = set(range(of_seeds)) if whole_run and (ev.summary or {}).get("members") else set()
    members |= {f.member for f in instances if f.member is not None}
    seen_seeds, members = sorted(seen_seeds), sorted(members)
    g = Finding(worst.code, worst.severity, layers[0] if layers else None, worst.step, worst.message,
                dict(worst.evidence), worst.suggestion,
                member=members[0] if len(members) == 1 else None,
                seed=seen_seeds[0] if len(seen_seeds) == 1 else None,
                layers=layers, seeds=seen_seeds, members=members, of_seeds=of_seeds,
                instances=[_instance(f) for f in instances])
    where = []
    if of_seeds > 1:
        what = "seeds" if seen_seeds else "members"
        listed = seen_seeds or members
        where.append(f"{g.seen_in} of {of_seeds} {what}" + (f" ({_named([str(s) for s in listed])})"
                                                             if listed and len(listed) < of_seeds else ""))
    if len(layers) > 1:
        where.append(f"{len(layers)} layers ({_named([ev.layer_title(name) for name in layers])})")
    if where:
        g.message = f"{worst.message.rstrip()}{SEEN_IN}{' and '.join(where)}."
    return g


def core_message(f) -> str:
    """The worst instance's message without grouping's "Seen in ..." sentence (for a table whose
    columns already say which seeds and layers). ``f``: a Finding or its dict."""
    message = f.message if isinstance(f, Finding) else str(f.get("message", ""))
    return message.split(SEEN_IN)[0] if SEEN_IN in message else message


def group(findings: list[Finding], ev: Evidence) -> list[Finding]:
    """The rules' per-instance findings merged into one per (code, cause), most severe first,
    each with its ranked alternative causes."""
    from .alternatives import rank_causes
    from .facts import Facts
    from .fixes import evidence_led
    seeds, of_seeds = run_seeds(ev)
    by_cause: dict = {}
    for f in findings:
        by_cause.setdefault((f.code, str(f.evidence.get("cause", ""))), []).append(f)
    grouped = [merge(fs, ev, seeds, of_seeds) for fs in by_cause.values()]
    facts = Facts(ev, {g.code for g in grouped})  # read once, shared by every finding's ranking
    for g in grouped:
        g.alternatives = rank_causes(g, ev, facts.codes, facts)
        # the printed advice follows this run's likeliest cause, not the code's generic one (fixes.py)
        g.suggestion = evidence_led(g.suggestion, g.alternatives)
    return sorted(grouped, key=Finding.sort_key)


def as_grouped(findings: list, seeds: list | None = None) -> list[Finding]:
    """Stored findings (dicts or Findings) as grouped Findings: a findings.json written before
    grouping (one entry per seed and layer) is grouped here, without the recording (so without
    ranked alternatives); a grouped one is returned as it is."""
    fs = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in findings or []]
    if all(f.of_seeds is not None for f in fs):
        return fs
    ev = Evidence(config={"run": {"seeds": list(seeds or [])}})
    seeds_, of_seeds = run_seeds(ev)
    by_cause: dict = {}
    for f in fs:
        by_cause.setdefault((f.code, str(f.evidence.get("cause", ""))), []).append(f)
    return sorted((merge(group_, ev, seeds_, of_seeds) for group_ in by_cause.values()), key=Finding.sort_key)
