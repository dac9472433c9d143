"""A finding: one diagnosed problem, the numbers behind it and what to do; and how it is printed.

Rules return one finding per instance (one member/seed and layer). ``diagnose()`` then merges the
instances of one cause into a single grouped finding (``grouping.py``): the fields below the line
(``layers``, ``seeds``, ``members``, ``of_seeds``, ``instances``, ``alternatives``) say where it was
seen and what else could explain it. A finding survives ``to_dict()`` -> JSON -> ``from_dict()``
unchanged, so findings.json is the findings.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields

import numpy as np

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
NONFINITE_STRINGS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}  # how JSON stores them


@dataclass
class Finding:
    code: str  # stable identifier, e.g. 'VANISHING_GRADIENT' (every one is in codes.CODES)
    severity: str  # 'error' | 'warning' | 'info' (grouped: the most severe instance's)
    layer: str | None  # module name ('layers.0'), '<input>', '<output>', '<model>' or None (grouped: the first)
    step: int | None  # training step the evidence comes from (None: whole run / structure)
    message: str  # plain language, citing the numbers (grouped: the worst instance's, then where it was seen)
    evidence: dict = field(default_factory=dict)  # grouped: the worst instance's
    suggestion: str = ""
    member: int | None = None  # grouped: None when seen in several members
    seed: int | None = None  # grouped: None when seen in several seeds
    # ---- filled in by grouping (empty on a rule's per-instance finding)
    layers: list = field(default_factory=list)  # every layer it was seen in, in forward order
    seeds: list = field(default_factory=list)  # the seeds it was seen in (all of them for a whole-run finding)
    members: list = field(default_factory=list)  # the members it was seen in (a recording without seeds)
    of_seeds: int | None = None  # how many seeds (members) the run had: "3 of 3"
    instances: list = field(default_factory=list)  # per instance: layer, step, member, seed, severity, evidence
    alternatives: list = field(default_factory=list)  # ranked causes: {cause, verdict, score, evidence}

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        # numpy scalars and tuples as JSON will give them back, so a round trip compares equal
        self.evidence = _plain(self.evidence)
        self.instances = _plain(self.instances)

    @property
    def seen_in(self) -> int:
        """In how many seeds (or members) this was seen; 1 for an ungrouped finding."""
        return max(len(self.seeds), len(self.members), 1)

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        """The finding ``to_dict()`` wrote (also an older, ungrouped findings.json entry)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown or not {"code", "severity", "message"} <= set(d):
            raise ValueError(f"not a finding: keys {sorted(d)} (expected code, severity, message, layer, step, ..."
                             + (f"; unknown {unknown})" if unknown else ")"))
        given = {k: _from_json(v) if k in ("evidence", "instances", "alternatives") else v for k, v in d.items()}
        return cls(**{"layer": None, "step": None, **given})

    def sort_key(self):
        """Most severe first, then by step (whole-run findings first), then by code."""
        return SEVERITY_RANK[self.severity], self.step if self.step is not None else -1, self.code


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _jsonable(obj):
    obj = _plain(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _from_json(obj):
    """JSON's stand-ins for non-finite floats ('inf', 'nan') back to floats."""
    if isinstance(obj, dict):
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return NONFINITE_STRINGS.get(obj, obj) if isinstance(obj, str) else obj


def num(x) -> str:
    """A number for a message: three significant digits, 'nan' for missing, exponents written as the
    reports write them ('8.4e-6', not '8.4e-06')."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], f"{x:.3g}")


def round_number(x: float) -> str:
    """A plain number with two significant digits: 6,800 / 97 / 4.4 / 0.0012 (exponents only beyond 1e9)."""
    if not math.isfinite(x) or abs(x) >= 1e9:
        return num(x)
    if abs(x) >= 10:
        return f"{round(x, 1 - int(math.floor(math.log10(abs(x))))):,.0f}"
    return num(float(f"{x:.2g}"))  # two significant digits, exponent written like num()


def who(member, seed) -> str:
    """' (seed 42)', ' (member 1)' or '' (the only member of an unseeded recording)."""
    clause = who_clause(member, seed)
    return f" ({clause[2:]})" if clause else ""


def who_clause(member, seed) -> str:
    """The same inside a parenthesis already open: ', seed 42', ', member 1' or ''."""
    return f", seed {seed}" if seed is not None else (f", member {member}" if member else "")


def scope(f: Finding) -> str:
    """Where a finding was seen, for a reader: '3 of 3 seeds' / 'seed 42' / 'member 1' / ''."""
    if f.of_seeds and f.of_seeds > 1:
        what = "seeds" if f.seeds or not f.members else "members"
        return f"{f.seen_in} of {f.of_seeds} {what}"
    return f"seed {f.seed}" if f.seed is not None else (f"member {f.member}" if f.member else "")


def which_seeds(f: Finding, of: int) -> str:
    """' (seed 43)' / ' (seeds 42, 43)' when a grouped finding was seen in some of ``of`` seeds, else '':
    two findings of one table that each hold for "1 of 3" seeds may hold for different seeds, and their
    numbers then need not agree."""
    seen = [s for s in (f.seeds or []) if s is not None]
    if not seen or len(seen) >= of:
        return ""
    return f" (seed{'s' if len(seen) > 1 else ''} {', '.join(str(s) for s in seen)})"


MAX_ALTERNATIVES_SHOWN = 4


def format_findings(findings: list[Finding]) -> str:
    """Findings as text for a terminal, most severe first: one block per cause, where it was seen,
    what to do, and the likely causes ranked by the run's evidence."""
    if not findings:
        return "No findings: nothing unusual in the recorded gradient flow."
    lines = []
    for f in findings:
        layers = [n for n in (f.layers or [f.layer]) if n and n != "<model>"]  # the loss: no layer to name
        where = "; ".join(p for p in (scope(f), f"layer {f.layer}" if len(layers) == 1 else
                                      (f"{len(layers)} layers" if layers else ""),
                                      f"step {f.step}" if f.step is not None else "") if p)
        lines.append(f"{f.severity.upper():7} {f.code}" + (f" [{where}]" if where else ""))
        lines.append(f"        {f.message}")
        if f.suggestion:
            lines.append(f"        -> {f.suggestion}")
        if f.alternatives:
            lines.append("        likely causes:")
            for i, a in enumerate(f.alternatives[:MAX_ALTERNATIVES_SHOWN], 1):
                lines.append(f"          {i}. {a['cause']} [{a['verdict']}]: {a['evidence']}")
    return "\n".join(lines)
