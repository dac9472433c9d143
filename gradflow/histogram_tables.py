"""Histogram tables: the recorder's histograms as long bin tables, and what the pages read off them.

A histogram table is long format: one row per bin, columns ``layer``, ``lo``, ``hi``, ``count``
(plus ``step``/``epoch`` for histograms over training, plus any grouping column). Bin edges are
shared by every layer and step (``gradflow.stats``), so rows line up and counts of different
steps, layers and runs can be added and compared directly. Figures draw these tables
(``gradflow.plots``); the narrating modules read them without importing any plotting.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def fractions(d: pd.DataFrame) -> np.ndarray:
    """Each bin's share of the histogram's values (all zeros for an empty histogram)."""
    c = d["count"].to_numpy(dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def recorded_histograms(histograms: pd.DataFrame, edges, kind: str = "grad", scale: str = "log10",
                        layers=None, step=None, seeds=None) -> pd.DataFrame:
    """Recorder histogram rows (``counts`` arrays, layout of ``gradflow.stats``) -> long bin table.

    Counts are summed over members/seeds (they share edges, so sums are exact). The underflow and
    overflow counts become one extra bin below and above the edges (for log10 histograms the
    underflow bin holds exact zeros, e.g. the gradients of dead units); NaN/inf counts are dropped
    here and shown by the diagnosis instead. Returns columns layer, step, epoch, lo, hi, count.
    """
    edges = np.asarray(edges, dtype=float)
    h = histograms[(histograms["kind"] == kind) & (histograms["scale"] == scale)]
    if layers is not None:
        h = h[h["layer"].isin(list(layers))]
    if step is not None:
        h = h[h["step"] == step]
    if seeds is not None:
        h = h[h["seed"].isin(list(seeds))]
    width = edges[1] - edges[0]
    lo = np.concatenate([[edges[0] - width], edges])  # underflow, interior bins, overflow
    hi = np.concatenate([edges, [edges[-1] + width]])
    frames = []
    for (layer, st, ep), d in h.groupby(["layer", "step", "epoch"], sort=False):
        counts = np.sum(np.stack(list(d["counts"])), axis=0)[: len(edges) + 1]
        frames.append(pd.DataFrame({"layer": layer, "step": st, "epoch": ep, "lo": lo, "hi": hi, "count": counts}))
    if not frames:
        return pd.DataFrame(columns=["layer", "step", "epoch", "lo", "hi", "count"])
    return pd.concat(frames, ignore_index=True)


def histogram_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Total-variation distance (0 = identical, 1 = disjoint) between two histograms on shared bins."""
    merged = a[["lo", "count"]].merge(b[["lo", "count"]], on="lo", how="outer", suffixes=("_a", "_b")).fillna(0)
    pa, pb = merged["count_a"].to_numpy(float), merged["count_b"].to_numpy(float)
    if pa.sum() == 0 or pb.sum() == 0:
        return float("nan")
    return float(0.5 * np.abs(pa / pa.sum() - pb / pb.sum()).sum())


# Two TV distances this close are a tie: which one is larger is the seeds' and the batches' noise.
NEAR_TIE_TV = 0.05


def near_top(distances: pd.DataFrame) -> pd.DataFrame:
    """The rows (a ``distance`` column) within NEAR_TIE_TV of the largest, largest first: one row names a
    clear "most different"; several are a tie, said as one."""
    ranked = distances.sort_values("distance", ascending=False)
    return ranked[ranked["distance"] > ranked["distance"].iloc[0] - NEAR_TIE_TV] if len(ranked) else ranked


def histogram_median(h: pd.DataFrame) -> float:
    """The median of a histogram (lo, hi, count), interpolated inside the bin that holds it; nan if empty."""
    found = _median_bin(h)
    if found is None:
        return float("nan")
    lo, hi, below, upto = found
    return lo + (hi - lo) * (0.5 - below) / max(upto - below, 1e-12)


def median_bin(h: pd.DataFrame) -> tuple[float, float] | None:
    """The edges (lo, hi) of the bin that holds the histogram's median; None if it is empty."""
    found = _median_bin(h)
    return None if found is None else found[:2]


def _median_bin(h: pd.DataFrame):
    """(lo, hi, share below the bin, share up to its end) of the median's bin, or None if empty."""
    h = h.sort_values("lo")
    counts = h["count"].to_numpy(float)
    if counts.sum() == 0:
        return None
    cum = np.cumsum(counts) / counts.sum()
    i = int(np.searchsorted(cum, 0.5))
    return float(h["lo"].iloc[i]), float(h["hi"].iloc[i]), (cum[i - 1] if i else 0.0), cum[i]
