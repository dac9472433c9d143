"""Rules on how training went: a loss or an accuracy stuck at chance, early stopping on a plateau."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import quantities as Q
from ..loss_graph import CROSS_ENTROPY_KINDS
from .evidence import Evidence
from .finding import Finding, who

# Not learning: validation accuracy within 5 points of chance (10 % for 10 classes), or a
# cross-entropy loss still within 5 % of ln(classes), the loss of a uniform guess.
CHANCE_MARGIN = 0.05
LOSS_CHANCE_FRACTION = 0.05
NOT_LEARNING_MIN_STEPS = 100  # fewer steps than this are not "after training" (a net on SGD 1e-2 may need them)
LOSS_TAIL_FRACTION = 0.2  # the last 20 % of the loss curve is what "after training" means


def seeds_at_chance(ev: Evidence) -> list[tuple[int | None, pd.DataFrame, float]]:
    """(seed, its epochs before early stopping, best validation accuracy) of each seed whose
    validation accuracy never left chance. Empty without per-epoch metrics."""
    m = ev.metrics
    if m is None or not isinstance(m, pd.DataFrame) or m.empty or "val_acc" not in m:
        return []
    out = []
    for seed in (m["seed"].dropna().unique() if "seed" in m else [None]):
        rows = (m[m["seed"] == seed] if seed is not None else m).sort_values("epoch")
        if "past_stop" in rows:
            rows = rows[~rows["past_stop"].fillna(False).astype(bool)]
        if rows.empty:
            continue
        acc = rows["val_acc"].astype(float)
        best = float((acc / 100.0 if acc.max() > 1.0 else acc).max())  # percent or fraction
        if best <= 1.0 / ev.num_classes + CHANCE_MARGIN:
            out.append((None if seed is None else int(seed), rows, best))
    return out


def accuracy_not_learning(ev: Evidence) -> list[Finding]:
    """NOT_LEARNING: validation accuracy never left chance."""
    chance = 1.0 / ev.num_classes
    return [Finding(
        "NOT_LEARNING", "error", Q.MODEL_LAYER, None,
        f"Validation accuracy never left chance{who(0, seed)}: best {100 * best:.2f} % over {len(rows)} epochs "
        f"(chance {100 * chance:.1f} % with {ev.num_classes} classes).",
        {"best_val_acc": best, "chance": chance, "epochs": len(rows), "last_epoch": int(rows["epoch"].iloc[-1])},
        "Look at the gradient findings; try a ReLU-family activation, another initialisation or optimizer.",
        None, seed) for seed, rows, best in seeds_at_chance(ev)]


def loss_not_learning(ev: Evidence) -> list[Finding]:
    """NOT_LEARNING: a cross-entropy loss still at ln(classes) after training. The accuracy verdict,
    when there is one, is the better witness: then this rule stays silent."""
    loss = ev.quantity(Q.LOSS)
    kind = ((ev.summary or {}).get("loss") or {}).get("kind")
    if loss.empty or kind not in CROSS_ENTROPY_KINDS or seeds_at_chance(ev):
        return []
    chance, out = math.log(ev.num_classes), []
    for member, seed in ev.members(loss):
        rows = loss[loss["member"] == member].sort_values("step")
        if rows["step"].nunique() < NOT_LEARNING_MIN_STEPS:
            continue
        tail = rows.iloc[int(len(rows) * (1 - LOSS_TAIL_FRACTION)):]
        last = float(tail["value"].mean())
        if math.isfinite(last) and last > chance * (1 - LOSS_CHANCE_FRACTION):
            out.append(Finding(
                "NOT_LEARNING", "error", Q.MODEL_LAYER, int(tail["step"].iloc[-1]),
                f"The loss is stuck at the chance level{who(member, seed)}: mean {last:.4f} over the last "
                f"{len(tail)} steps (to step {int(tail['step'].iloc[-1])}) against ln({ev.num_classes}) = {chance:.4f}, "
                "the loss of a uniform guess.",
                {"loss_tail_mean": last, "chance_loss": chance, "steps": int(rows["step"].nunique())},
                "Look at the gradient findings (vanishing, saturation, update ratio); try a ReLU-family activation, "
                "another initialisation, Adam, or a higher learning rate.", member, seed))
    return out


# Plateau stop: the loss fell by at least this fraction of its first value over the run, or the
# first layer's gradient grew by this factor, while accuracy stayed at chance.
PLATEAU_MIN_DROP = 1e-4
PLATEAU_GRAD_GROWTH = 1.5


def _stopped_early(ev: Evidence, rows: pd.DataFrame, seed) -> bool:
    """Early stopping (not max_epochs) ended this seed's training."""
    max_epochs = ev.run_config.get("max_epochs")
    if "stopped" in rows and rows["stopped"].fillna(False).astype(bool).any():
        return True
    res = ev.results
    if isinstance(res, pd.DataFrame) and not res.empty and "stopped_epoch" in res:
        r = res[res["seed"] == seed] if seed is not None and "seed" in res else res
        if not r.empty and pd.notna(r["stopped_epoch"].iloc[0]):
            trained = r["epochs_trained"].iloc[0] if "epochs_trained" in r else r["stopped_epoch"].iloc[0]
            if max_epochs is None or int(trained) < int(max_epochs):
                return True
    return max_epochs is not None and len(rows) < int(max_epochs)


def _signs_of_progress(ev: Evidence, rows: pd.DataFrame, seed, evidence: dict) -> list[str]:
    """A falling training loss, or a first-layer gradient that grew: the net was leaving its plateau."""
    signs = []
    if "train_loss" in rows and len(rows) >= 3:
        tl = rows["train_loss"].astype(float).to_numpy()
        slope, drop = float(np.polyfit(np.arange(len(tl)), tl, 1)[0]), float(tl[0] - tl[-1])
        evidence.update(train_loss_first=float(tl[0]), train_loss_last=float(tl[-1]), train_loss_slope=slope)
        if slope < 0 and drop > PLATEAU_MIN_DROP * abs(tl[0]):
            signs.append(f"the training loss was still falling ({tl[0]:.4f} -> {tl[-1]:.4f}, {slope:.2e} per epoch)")
    params, g = ev.layers("param"), ev.quantity(Q.GRAD_STD)
    if params and not g.empty:
        first = g[g["layer"] == params[0]["name"]]
        if seed is not None:
            first = first[first["seed"].eq(seed).fillna(False).astype(bool)]
        first = first.sort_values("step")
        if len(first) >= 2 and first["value"].iloc[0] > 0:
            growth = float(first["value"].iloc[-1] / first["value"].iloc[0])
            evidence["first_layer_grad_growth"] = growth
            if growth >= PLATEAU_GRAD_GROWTH:
                signs.append(f"{params[0]['name']}'s gradient had grown {growth:.1f}x since the start")
    return signs


def plateau_stop(ev: Evidence) -> list[Finding]:
    """PLATEAU_STOP: early stopping ended a run at chance while it was still (slowly) moving."""
    out = []
    for seed, rows, _ in seeds_at_chance(ev):
        evidence = {"epochs": len(rows), "max_epochs": ev.run_config.get("max_epochs"),
                    "patience": ev.run_config.get("patience")}
        signs = _signs_of_progress(ev, rows, seed, evidence) if _stopped_early(ev, rows, seed) else []
        if signs:
            out.append(Finding(
                "PLATEAU_STOP", "warning", Q.MODEL_LAYER, None,
                f"Early stopping ended the run after {len(rows)} epochs{who(0, seed)} while it was still on its "
                f"initial plateau, but {' and '.join(signs)}: stopped, not unable.", evidence,
                "Give early stopping more patience (or a minimum number of epochs), or help the net off the plateau: "
                "Adam or a higher learning rate, another initialisation (xavier/kaiming), a ReLU-family activation.",
                None, seed))
    return out
