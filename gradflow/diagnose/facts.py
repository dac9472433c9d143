"""What the ranked alternative causes read about one run, computed once from its Evidence: the
activations (bounded or not), normalisation layers, the first weight layer's initial scale, the
update:data ratio, the inputs' range, the loss trend, the learning rate and dropout."""
from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from .. import quantities as Q
from ..quantities import is_norm_type
from .evidence import Evidence
from .structure import input_scale


class Facts:
    """What the candidates read, computed once per run from its Evidence."""

    def __init__(self, ev: Evidence, codes: set):
        self.ev, self.codes = ev, codes

    @cached_property
    def activations(self) -> list[dict]:
        return self.ev.layers("activation")

    @cached_property
    def bounded(self) -> list[dict]:
        return [a for a in self.activations if a.get("bounded")]

    def act_name(self, a: dict) -> str:
        """An activation as the user named it: the project's stacked wrapper by the run's activation."""
        name = str(a.get("activation"))
        cfg = self.ev.model_config.get("act_fn") or self.ev.run_config.get("activation")
        return str(cfg.get("name", cfg) if isinstance(cfg, dict) else cfg) if name.startswith("stacked") and cfg else name

    @cached_property
    def act_names(self) -> list[str]:
        names = {self.act_name(a) for a in self.activations}
        cfg = self.ev.model_config.get("act_fn") or self.ev.run_config.get("activation")
        return sorted(names | ({str(cfg)} if cfg and not names else set()))

    def layer_type(self, name: str) -> str:
        return next((str(e.get("type")) for e in (self.ev.summary or {}).get("layers", []) if e["name"] == name), "")

    @cached_property
    def norm_layers(self) -> list[str]:
        # a normalisation module's type, not a 1-D parameter nor a class merely named so (evidence.is_norm_type)
        return [e["name"] for e in (self.ev.summary or {}).get("layers", []) if is_norm_type(e.get("type"))]

    def median(self, quantity: str, layer: str | None = None) -> float | None:
        q = self.ev.quantity(quantity)
        if layer is not None:
            q = q[q["layer"] == layer]
        v = q["value"].astype(float)
        v = v[np.isfinite(v) & (v > 0)] if quantity == Q.UPDATE_DATA_RATIO else v[np.isfinite(v)]
        return float(v.median()) if len(v) else None

    @cached_property
    def update_ratio(self) -> float | None:
        """Median update:data ratio over the weight layers (biases and norm scales judged elsewhere)."""
        return self.median(Q.UPDATE_DATA_RATIO)

    @cached_property
    def fastest_update(self) -> tuple[str, float] | None:
        """(layer, median update:data ratio) of the weight layer that moves most. One learning rate
        moves every layer, so a layer moving at a healthy rate says the rate is not too low: the
        slow layers' own gradients are small."""
        q = self.ev.quantity(Q.UPDATE_DATA_RATIO)
        q = q[q["layer"].isin([e["name"] for e in self.ev.weight_layers()])]
        v = q["value"].astype(float)
        keep = np.isfinite(v) & (v > 0)
        medians = v[keep].groupby(q["layer"][keep]).median()
        return None if medians.empty else (str(medians.idxmax()), float(medians.max()))

    @cached_property
    def first_weight(self):
        """(layer, weight std at the first recorded step, 1/sqrt(fan_in)) of the first weight layer."""
        params = [p for p in self.ev.layers("param") if len(p.get("shape") or []) >= 2]
        if not params:
            return None
        p = params[0]
        w = self.ev.quantity(Q.WEIGHT_STD)
        w = w[w["layer"] == p["name"]].sort_values("step")
        if w.empty:
            return None
        shape = p["shape"]
        stacked = (p.get("members") or 1) > 1 and len(shape) == 3 and "Linear" in str(p.get("type"))
        fan_in = shape[-1] if ("Linear" in str(p.get("type")) or stacked) else int(np.prod(shape[1:]))
        return p["name"], float(w["value"].iloc[0]), 1.0 / math.sqrt(max(fan_in, 1))

    @cached_property
    def input_scale(self) -> dict | None:
        """The input range and its verdict ('large', 'tiny' or None), as UNNORMALIZED_INPUT judges it."""
        return input_scale(self.ev)

    @cached_property
    def loss_trend(self) -> tuple[float, float] | None:
        """(first, last) training loss: the recorded loss, else the per-epoch train_loss."""
        loss = self.ev.quantity(Q.LOSS)
        if len(loss) >= 2:
            per_step = loss.groupby("step")["value"].mean().astype(float)
            n = max(1, len(per_step) // 10)
            return float(per_step.iloc[:n].mean()), float(per_step.iloc[-n:].mean())
        m = self.ev.metrics
        if m is not None and hasattr(m, "columns") and "train_loss" in m and len(m) >= 2:
            per_epoch = m.groupby("epoch")["train_loss"].mean().astype(float)
            return float(per_epoch.iloc[0]), float(per_epoch.iloc[-1])
        return None

    @cached_property
    def watch(self) -> dict | None:
        """What the Recorder saw of the torch optimizers (gradflow.record.optimizer_watch); None when
        the recording predates the watch."""
        return (self.ev.summary or {}).get("optimizer_watch")

    @cached_property
    def optimizer(self) -> dict | None:
        """The one optimizer the Recorder saw step the model with a known learning rate (None: none,
        several, or not watched)."""
        seen = (self.watch or {}).get("optimizers") or []
        return seen[0] if len(seen) == 1 and seen[0].get("lr_first") is not None else None

    @cached_property
    def low_lr_share(self) -> tuple[int, int] | None:
        """(steps whose learning rate was below 1/1000 of the first step's, steps) of that optimizer."""
        o = self.optimizer
        if not o or not o["lr_first"] or not o.get("steps"):
            return None
        return int(o.get("low_lr_steps", 0)), int(o["steps"])

    @cached_property
    def lr(self) -> str:
        """The optimizer and its learning rate in words: from the run's config (gradflow train), else
        from the optimizer the Recorder saw step the model."""
        run = self.ev.run_config
        if run.get("lr"):
            return f"{run.get('optimizer', 'the optimizer')} lr={run['lr']:g}"
        o = self.optimizer
        if o is None:
            return "the learning rate"
        first, last = o["lr_first"], o.get("lr_last")
        now = f" (lr={last:g} at the end)" if last is not None and not math.isclose(last, first) else ""
        return f"{o['name']} lr={first:g}{now}"

    @cached_property
    def dropout_p(self) -> float | None:
        ps = [float(np.max(d["p"])) for d in (self.ev.summary or {}).get("dropout") or []]
        p = self.ev.model_config.get("dropout")
        return max(ps) if ps else (float(p) if isinstance(p, (int, float)) else None)
