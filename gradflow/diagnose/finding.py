"""A finding: one diagnosed problem, the numbers behind it and what to do; and how it is printed."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


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

    def sort_key(self):
        """Most severe first, then by step (whole-run findings first), then by code."""
        return SEVERITY_RANK[self.severity], self.step if self.step is not None else -1, self.code


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


def num(x) -> str:
    """A number for a message: three significant digits, 'nan' for missing."""
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def who(member, seed) -> str:
    """' (seed 42)', ' (member 1)' or '' (the only member of an unseeded recording)."""
    return f" (seed {seed})" if seed is not None else (f" (member {member})" if member else "")


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
