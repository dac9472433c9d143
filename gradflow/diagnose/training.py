"""Rules on how training went: a loss or an accuracy stuck at chance, a diverging loss, early stopping on a plateau."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import quantities as Q
from ..loss_graph import CROSS_ENTROPY_KINDS
from . import trend
from .evidence import Evidence
from .finding import Finding, num, who

# Not learning: validation accuracy within 5 points of chance (10 % for 10 classes) over a finished
# run, or a cross-entropy loss still within 5 % of ln(classes) (the loss of a uniform guess) whose
# trend is flat (see trend.py: a slow but real fall is a plateau, not a failure).
CHANCE_MARGIN = trend.CHANCE_MARGIN


def seeds_at_chance(ev: Evidence, reason: str = "accuracy_at_chance") -> list[tuple[int | None, pd.DataFrame, dict]]:
    """(seed, its epochs before early stopping, the accuracy verdict's evidence) of each seed whose
    validation accuracy never left chance (``reason`` "accuracy_back_at_chance": that left it, then
    fell back for the last epochs). Empty without per-epoch metrics."""
    m = ev.metrics
    if m is None or not isinstance(m, pd.DataFrame) or m.empty or "val_acc" not in m:
        return []
    out = []
    for seed in (m["seed"].dropna().unique() if "seed" in m else [None]):
        seed = None if seed is None else int(seed)
        rows = ev.seed_metrics(seed)
        if rows is None:
            continue
        verdict = trend.accuracy_outcome(rows["val_acc"], ev.num_classes)
        if verdict.reason == reason:
            out.append((seed, rows, verdict.evidence))
    return out


def _diverged_seeds(ev: Evidence) -> set:
    """Seeds (and members' seeds) whose loss diverged: their accuracy at chance is DIVERGING's, not NOT_LEARNING's."""
    return {f.seed if f.seed is not None else ev.seed_of(f.member) for f in diverging(ev)}


def accuracy_not_learning(ev: Evidence) -> list[Finding]:
    """NOT_LEARNING: validation accuracy never left chance over the finished run (not when it diverged)."""
    chance, diverged, out = 1.0 / ev.num_classes, _diverged_seeds(ev), []
    for seed, rows, acc in seeds_at_chance(ev):
        if seed in diverged:
            continue
        best = acc["best_val_acc"]
        # a run that early stopping cut while it was leaving its plateau is not stuck: say so here too,
        # so NOT_LEARNING and PLATEAU_STOP tell one story (a warning, not an error)
        stopped_moving = bool(_plateau_signs(ev, rows, seed)[0])
        out.append(Finding(
            "NOT_LEARNING", "warning" if stopped_moving else "error", Q.MODEL_LAYER, None,
            (f"Validation accuracy stayed at chance in the {len(rows)} epochs it was judged on{who(0, seed)}: best "
             f"{100 * best:.2f} % " if stopped_moving else
             f"Validation accuracy never left chance{who(0, seed)}: best {100 * best:.2f} % over {len(rows)} epochs ")
            + f"(chance {100 * chance:.1f} % with {ev.num_classes} classes)."
            + (" Early stopping ended it while it was still moving (PLATEAU_STOP)." if stopped_moving else ""),
            {"best_val_acc": best, "chance": chance, "epochs": len(rows), "last_epoch": int(rows["epoch"].iloc[-1]),
             "cause": "accuracy", "plateau_stop": stopped_moving},
            "Give early stopping more patience, or help the net off its plateau (see PLATEAU_STOP)." if stopped_moving
            else "Look at the gradient findings; try a ReLU-family activation, another initialisation or optimizer.",
            None, seed))
    for seed, rows, acc in seeds_at_chance(ev, "accuracy_back_at_chance"):
        if seed in diverged:
            continue
        first = int(rows["epoch"].iloc[acc["best_epoch"]])
        out.append(Finding(
            "NOT_LEARNING", "error", Q.MODEL_LAYER, None,
            f"Validation accuracy{who(0, seed)} rose to {100 * acc['best_val_acc']:.1f} % in epoch {first}, then fell back "
            f"to within {100 * trend.CHANCE_MARGIN:.0f} points of chance and stayed there for the last {acc['epochs_at_chance']} epochs ({100 * acc['last_val_acc']:.2f} % "
            f"at the end; chance {100 * chance:.1f} %): training undid what the first steps learned.",
            {"best_val_acc": acc["best_val_acc"], "chance": chance, "epochs": len(rows), "cause": "fell_back",
             "epochs_at_chance": acc["epochs_at_chance"], "last_val_acc": acc["last_val_acc"],
             "last_epoch": int(rows["epoch"].iloc[-1])},
            "Look at what pulls the weights after the first epochs: the likely causes below (weight decay, the "
            "learning rate, dead units).", None, seed))
    return out


def loss_not_learning(ev: Evidence) -> list[Finding]:
    """NOT_LEARNING: a cross-entropy loss at ln(classes) whose trend is flat over enough steps to
    tell. A seed with per-epoch accuracy is judged by the accuracy rule instead (the better witness)."""
    chance, loss, out = ev.loss_chance(), ev.quantity(Q.LOSS), []
    if loss.empty or chance is None or ((ev.summary or {}).get("loss") or {}).get("kind") not in CROSS_ENTROPY_KINDS:
        return []
    for member, seed in ev.members(loss[loss["member"] >= 0]) or [(0, ev.seed_of(0))]:
        rows = ev.seed_metrics(seed)
        if rows is not None and "val_acc" in rows:
            continue
        t = ev.loss_trend(member)
        verdict = trend.loss_outcome(t, chance)
        if verdict.reason != "not_learning" or verdict.verdict != trend.HURT:
            continue  # falling (a plateau it is leaving), too short to tell, learned, or diverging
        where = "at" if t.tail_mean <= chance * (1 + trend.LOSS_CHANCE_FRACTION) else "at or above"
        out.append(Finding(
            "NOT_LEARNING", "error", Q.MODEL_LAYER, t.tail_steps[1],
            f"The loss is stuck {where} the chance level{who(member, seed)}: mean {t.tail_mean:.4f} over steps "
            f"{t.tail_steps[0]}-{t.tail_steps[1]} against ln({ev.num_classes}) = {chance:.4f}, the loss of a uniform "
            f"guess, and it is not falling (slope {num(t.tail_slope)} per step, within the noise; "
            f"{_plain(t.head_mean) if abs(t.head_mean) >= 100 else f'{t.head_mean:.4f}'} at the start).",
            {**t.to_dict(), "chance_loss": chance, "cause": "loss"},
            "Look at the gradient findings (vanishing, saturation, update ratio); try a ReLU-family activation, "
            "another initialisation, Adam, or a higher learning rate.", member, seed))
    return out


def _epoch_loss_diverged(rows: pd.DataFrame, chance: float | None) -> tuple[float, float] | None:
    """(first, last) per-epoch training loss when it ended far above its start or far above chance."""
    if rows is None or "train_loss" not in rows or len(rows) < 1:
        return None
    tl = rows["train_loss"].astype(float).to_numpy()
    tl = tl[np.isfinite(tl)]
    if tl.size == 0:
        return None
    first, last = float(tl[0]), float(tl[-1])
    far_above_start = tl.size >= 2 and last > trend.DIVERGE_FACTOR * first
    far_above_chance = chance is not None and last > trend.DIVERGE_FACTOR * chance and last >= first
    return (first, last) if far_above_start or far_above_chance else None


def diverging(ev: Evidence) -> list[Finding]:
    """DIVERGING: the loss now sits far above where it started (and above chance): a learning rate
    far too high. From the recorded loss curve, else from the per-epoch training loss."""
    chance, loss, out, seen = ev.loss_chance(), ev.quantity(Q.LOSS), [], set()
    suggestion = ("Lower the learning rate (by 10x to start with), add warm-up or gradient clipping "
                  "(torch.nn.utils.clip_grad_norm_); check the inputs are normalised.")
    for member, seed in (ev.members(loss[loss["member"] >= 0]) or [(0, ev.seed_of(0))]) if not loss.empty else []:
        t = ev.loss_trend(member)
        if not trend.diverging(t, chance):
            continue
        seen.add(seed)
        vs = f" and ln({ev.num_classes}) = {chance:.2f} for a uniform guess" if chance is not None else ""
        out.append(Finding(
            "DIVERGING", "error", Q.MODEL_LAYER, t.tail_steps[1],
            f"The loss is diverging{who(member, seed)}: mean {_plain(t.tail_mean)} over steps {t.tail_steps[0]}-"
            f"{t.tail_steps[1]} against {_plain(t.head_mean)} at the start{vs}.",
            {**t.to_dict(), "chance_loss": chance, "source": "loss"}, suggestion, member, seed))
    m = ev.metrics
    seeds = (m["seed"].dropna().unique().tolist() if "seed" in m else [None]) if isinstance(m, pd.DataFrame) else []
    for seed in seeds:
        seed = None if seed is None else int(seed)
        found = None if seed in seen else _epoch_loss_diverged(ev.seed_metrics(seed), chance)
        if found:
            first, last = found
            vs = f" (ln({ev.num_classes}) = {chance:.2f} for a uniform guess)" if chance is not None else ""
            out.append(Finding(
                "DIVERGING", "error", Q.MODEL_LAYER, None,
                f"The training loss is diverging{who(0, seed)}: {_plain(last)} in the last epoch against "
                f"{_plain(first)} in the first{vs}.",
                {"train_loss_first": first, "train_loss_last": last, "chance_loss": chance, "source": "metrics"},
                suggestion, None, seed))
    return out


def _plain(x: float) -> str:
    """A loss for a message: 2.31 / 1,234 / 5.81e11 (a blown-up loss in digits would fill the line)."""
    if abs(x) >= 1e6:
        return num(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


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
        chance = ev.loss_chance()
        if slope < 0 and drop > PLATEAU_MIN_DROP * abs(tl[0]):
            # a loss above chance that falls towards it may be a net settling on the uniform guess rather than
            # one starting to learn: the two look alike until the loss passes below chance, so say which it is
            above = chance is not None and tl[-1] > chance
            signs.append(f"the training loss was still falling ({tl[0]:.4f} -> {tl[-1]:.4f}, {num(slope)} per epoch"
                         + (f"; still above the chance loss {chance:.4f}, so on its own this may be the net settling "
                            "on a uniform guess)" if above else ")"))
    params, g = ev.weight_layers(), ev.quantity(Q.GRAD_STD)
    if params and not g.empty:
        first = g[g["layer"] == params[0]["name"]]
        if seed is not None:
            first = first[first["seed"].eq(seed).fillna(False).astype(bool)]
        first = first.sort_values("step")
        if len(first) >= 2 and first["value"].iloc[0] > 0:
            growth = float(first["value"].iloc[-1] / first["value"].iloc[0])
            evidence["first_layer_grad_growth"] = growth
            if growth >= PLATEAU_GRAD_GROWTH:
                signs.append(f"the gradient of {ev.layer_title(params[0]['name'])} had grown {num(growth)} times "
                             "since the start")
    return signs


def _plateau_signs(ev: Evidence, rows: pd.DataFrame, seed) -> tuple[list[str], dict]:
    """Signs that a seed stopped early at chance was still moving, with the evidence behind them."""
    evidence = {"epochs": len(rows), "max_epochs": ev.run_config.get("max_epochs"),
                "patience": ev.run_config.get("patience")}
    return (_signs_of_progress(ev, rows, seed, evidence) if _stopped_early(ev, rows, seed) else []), evidence


def plateau_stop(ev: Evidence) -> list[Finding]:
    """PLATEAU_STOP: early stopping ended a run at chance while it was still (slowly) moving."""
    out, diverged = [], _diverged_seeds(ev)
    for seed, rows, _ in seeds_at_chance(ev):
        if seed in diverged:
            continue
        signs, evidence = _plateau_signs(ev, rows, seed)
        if signs:
            out.append(Finding(
                "PLATEAU_STOP", "warning", Q.MODEL_LAYER, None,
                f"Early stopping ended the run after {len(rows)} epochs{who(0, seed)} while it was still on its "
                f"initial plateau, but {' and '.join(signs)}: stopped, not unable.", evidence,
                "Give early stopping more patience (or a minimum number of epochs), or help the net off the plateau: "
                "Adam or a higher learning rate, another initialisation (xavier/kaiming), a ReLU-family activation.",
                None, seed))
    return out
