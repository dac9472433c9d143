"""Test accuracy over seeds: the mean, its 95 % confidence interval, and which pairs the seeds tell apart.

The reports rank nothing the seeds cannot support: two groups are "apart" only when their 95 %
intervals do not overlap (a conservative reading of a few seeds). Pure functions of tables; the
figures that draw these numbers live in ``gradflow.plots``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def t_quantile_95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for n samples (n - 1 degrees of freedom); no scipy needed."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
    dof = n - 1
    if dof < 1:
        return float("nan")
    if dof in table:
        return table[dof]
    below = max(k for k in table if k <= dof) if dof <= 30 else None
    return table[below] if below else 1.96


def mean_ci(values) -> tuple[float, float, int]:
    """Mean and half-width of the 95 % confidence interval of the mean (t distribution)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    if len(v) == 1:
        return float(v[0]), float("nan"), 1
    return float(v.mean()), float(t_quantile_95(len(v)) * v.std(ddof=1) / math.sqrt(len(v))), len(v)


def single_run_half(half: float, n: int) -> float:
    """Half-width of the 95 % prediction interval for ONE more run, from the half-width of the interval of
    the mean over n runs. A single published result is one draw, so it is judged against where one draw
    lands: mean ± t·s·sqrt(1 + 1/n), which is the mean's t·s/sqrt(n) times sqrt(n + 1)."""
    return half * math.sqrt(n + 1)


def accuracy_summary(results: pd.DataFrame, group: str = "activation") -> pd.DataFrame:
    """Test accuracy per group over seeds: columns group, seeds, mean_pct, half_pp (95 % CI), min_pct, max_pct."""
    rows = []
    for name, d in results.groupby(group, sort=False):
        m, h, n = mean_ci(d["test_acc"])
        rows.append({group: name, "seeds": n, "mean_pct": 100 * m, "half_pp": 100 * h if math.isfinite(h) else float("nan"),
                     "min_pct": 100 * d["test_acc"].min(), "max_pct": 100 * d["test_acc"].max()})
    return pd.DataFrame(rows)


def accuracy_display(summary: pd.DataFrame, group: str = "activation", reference: dict | None = None,
                     with_ci: bool = True) -> pd.DataFrame:
    """The summary as a reader's table: units in every header; the tutorial's column only when asked.
    A group whose seeds split between chance and learning shows no interval: ±99 points around a mean
    that describes none of its seeds would only mislead (the pages tell the split in words)."""
    from .narrate import seeds_split
    out = pd.DataFrame({group: summary[group], "seeds": summary["seeds"],
                        "mean test accuracy (%)": summary["mean_pct"].round(2)})
    if with_ci:
        out["± 95 % CI (percentage points)"] = [
            "seeds split" if seeds_split(r.min_pct / 100, r.max_pct / 100) else round(r.half_pp, 2)
            for r in summary.itertuples()]
    out["lowest seed (%)"] = summary["min_pct"].round(2)
    out["highest seed (%)"] = summary["max_pct"].round(2)
    if reference is not None:
        out["tutorial's published result, one seed (%)"] = [round(100 * reference[a], 2) if a in reference else float("nan")
                                             for a in summary[group]]
    return out


def distinguishable(summary: pd.DataFrame, group: str = "activation") -> tuple[list, list]:
    """Pairs whose 95 % intervals do / do not overlap (a conservative reading of the seeds)."""
    rows = list(summary.itertuples(index=False))
    apart, overlap = [], []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            na, nb = getattr(a, group), getattr(b, group)
            if not (math.isfinite(a.half_pp) and math.isfinite(b.half_pp)):
                overlap.append((na, nb))
            elif a.mean_pct - a.half_pp > b.mean_pct + b.half_pp or b.mean_pct - b.half_pp > a.mean_pct + a.half_pp:
                apart.append((na, nb) if a.mean_pct > b.mean_pct else (nb, na))
            else:
                overlap.append((na, nb))
    return apart, overlap
