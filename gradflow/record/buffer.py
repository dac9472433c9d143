"""The Recorder's buffer: small device tensors pile up here and move to the CPU in batches.

Reductions run on the training device and leave one tensor per (layer, quantity) with one value
per member. Reading each one with ``.item()`` would sync the device every time; instead they wait
here and a flush moves each kind of entry to the CPU in one transfer, then lays them out as the
tidy tables of :mod:`gradflow.recording`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import stats
from ..quantities import NONFINITE_COUNT
from ..recording import build_tables
from .sentinel import NonfiniteLog

# Pending device entries kept before a flush to the CPU (a flush is one device->host copy).
FLUSH_ENTRIES = 4096
SHARED_MEMBER = -1  # a value that belongs to all members at once (one loss for the whole batch)


class Buffer:
    def __init__(self, seed_of, nonfinite: NonfiniteLog, workspace: stats.Workspace):
        self.seed_of = seed_of  # member -> seed (None when unknown)
        self.nonfinite = nonfinite
        self._scalars: list = []  # (step, epoch, layer, quantity, tensor (M,), shared)
        self._hists: list = []  # (step, epoch, layer, kind, scale, tensor (M, bins))
        self._scalar_chunks: list[pd.DataFrame] = []
        self._hist_rows: list[dict] = []
        self.dead_rows: list[dict] = []
        self._workspace = workspace  # the histograms' scratch memory, reused every recorded step

    def __len__(self) -> int:
        return len(self._scalars) + len(self._hists)

    def scalar(self, step, epoch, layer, quantity, value: torch.Tensor, shared: bool = False):
        """One value per member (``shared``: one value for all members, stored as member -1)."""
        self._scalars.append((step, epoch, layer, quantity, value.detach(), shared))

    def histograms(self, step, epoch, layer, kind, x: torch.Tensor, with_histograms: bool):
        """Both histograms of ``x`` (member view) when enabled, and its non-finite count either way
        (the histograms' last bin counts the non-finite values, so no extra pass is needed)."""
        if not with_histograms:
            self.scalar(step, epoch, layer, NONFINITE_COUNT[kind], stats.nonfinite_count(x, self._workspace))
            return
        hists = stats.histograms(x, kind, self._workspace)
        for scale, counts in hists.items():
            self._hists.append((step, epoch, layer, kind, scale, counts))
        self.scalar(step, epoch, layer, NONFINITE_COUNT[kind], hists["linear"][:, -1].float())

    def flush(self):
        """Move pending device results to the CPU: one transfer per kind of entry."""
        if self._scalars:
            pend, self._scalars = self._scalars, []
            values = torch.cat([p[4].reshape(-1).float() for p in pend]).cpu().numpy().astype(np.float64)
            sizes = [p[4].numel() for p in pend]
            members = np.concatenate([np.full(n, SHARED_MEMBER) if p[5] else np.arange(n)
                                      for n, p in zip(sizes, pend)])
            chunk = pd.DataFrame({
                "step": np.repeat([p[0] for p in pend], sizes).astype(np.int64),
                "epoch": np.repeat([p[1] for p in pend], sizes).astype(np.int64),
                "member": members.astype(np.int64),
                "layer": np.repeat([p[2] for p in pend], sizes),
                "quantity": np.repeat([p[3] for p in pend], sizes),
                "value": values,
            })
            self._scalar_chunks.append(chunk)
            self.nonfinite.note_chunk(chunk)
        if self._hists:
            pend, self._hists = self._hists, []
            flat = torch.cat([c.reshape(-1) for *_, c in pend]).cpu().numpy()
            start = 0
            for step, epoch, layer, kind, scale, c in pend:
                m, bins = c.shape
                block = flat[start:start + m * bins].reshape(m, bins)
                start += m * bins
                for member in range(m):
                    self._hist_rows.append({"step": step, "epoch": epoch, "member": member, "layer": layer,
                                            "kind": kind, "scale": scale, "counts": block[member].astype(np.int64)})

    def tables(self, order: dict) -> dict[str, pd.DataFrame]:
        self.flush()
        return build_tables(self._scalar_chunks, self._hist_rows, self.nonfinite.sightings(), self.dead_rows,
                            order, self.seed_of)

