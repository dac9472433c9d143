"""What a sweep shows (page 07), in sentences computed from its results table.

The sweep page reads one table, a row per (run, seed) with the grid's axes, the test accuracy and
the finding codes. These functions turn it into the page's tables and sentences, so they are
tested on planted tables and the notebook only displays what they return. Rules as in
:mod:`gradflow.narrate`: say the number and what it is compared with; a preview preset says its
epochs before it says which settings separate, and never calls a cell the best.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .narrate import CHANCE_ACC, final_epochs, join_names
from .seed_intervals import mean_ci
from .sweep_callout import is_preview_sweep, plan_settings, preview_reasons, sweep_callout  # noqa: F401 (the page's names)

METRIC_NAMES = {"val_acc": "validation accuracy", "train_acc": "training accuracy",
                "val_loss": "validation loss (nats)", "train_loss": "training loss (nats)"}


def cell_label(values: dict) -> str:
    """'sigmoid | init=kaiming': the activation, then the other axes' values."""
    act = values.get("act")
    rest = ", ".join(f"{k}={v}" for k, v in values.items() if k != "act")
    return " | ".join(str(p) for p in (act, rest) if p)


def cell_table(ok: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """One row per cell of the grid: its axes' values, mean test accuracy, 95 % half-width, seeds, the
    lowest and highest seed, and how many seeds ended at chance (see :func:`at_chance`)."""
    rows = []
    for key, d in ok.groupby(axes, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, half, n = mean_ci(d["test_acc"].tolist())
        rows.append({**dict(zip(axes, key)), "mean": mean, "half": half, "n": n, "min": float(d["test_acc"].min()),
                     "max": float(d["test_acc"].max()), "at_chance": int(at_chance(d).sum())})
    return pd.DataFrame(rows, columns=[*axes, "mean", "half", "n", "min", "max", "at_chance"])


# A seed the diagnosis calls NOT_LEARNING counts as at chance up to here: far enough above chance's
# 10 % that a seed at 15.9 % is not "rescued", low enough that a seed whose best checkpoint learned
# before its curve fell back (NOT_LEARNING covers that too) is not counted as stuck.
CLEAR_OF_CHANCE = 0.20


def at_chance(rows: pd.DataFrame) -> pd.Series:
    """Per seed: ended at chance, i.e. below CHANCE_ACC (15 %), or below CLEAR_OF_CHANCE (20 %) and
    flagged NOT_LEARNING by the diagnosis (which reads the whole validation curve, not one number)."""
    below = rows["test_acc"] < CHANCE_ACC
    if "finding_codes" not in rows:
        return below
    flagged = rows["finding_codes"].fillna("").astype(str).str.split(",").map(lambda c: "NOT_LEARNING" in c)
    return below | (flagged & (rows["test_acc"] < CLEAR_OF_CHANCE))


def is_split(cell) -> bool:
    """Some seeds at chance, some not: a mean and an interval that describe no single run."""
    return 0 < cell["at_chance"] < cell["n"]


def one_setting_pairs(cells: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Every pair of cells that differ in exactly one axis: the accuracy change (percentage points),
    whether the two 95 % intervals are apart (a conservative reading of 'more than the seeds' spread'),
    and the seeds at chance on each side. A pair with a split cell is never 'told apart' by intervals.
    Each pair reads from the lower cell to the higher ("sigmoid -> tanh: +74 points"), so a change is said as
    what it gains, not as a step towards the broken setting."""
    rows = []
    records = cells.to_dict("records")
    for i, first in enumerate(records):
        for second in records[i + 1:]:
            diff = [k for k in axes if first[k] != second[k]]
            if len(diff) != 1:
                continue
            a, b = (second, first) if second["mean"] < first["mean"] else (first, second)
            split = is_split(a) or is_split(b)
            apart = bool(not split and np.isfinite(a["half"]) and np.isfinite(b["half"])
                         and abs(a["mean"] - b["mean"]) > a["half"] + b["half"])
            rows.append({"axis": diff[0], "from": a[diff[0]], "to": b[diff[0]],
                         "where": ", ".join(f"{k}={a[k]}" for k in axes if k != diff[0]) or "–",
                         "change (pp)": 100 * (b["mean"] - a["mean"]), "told apart": apart, "split": split,
                         "at chance, from": f"{a['at_chance']} of {a['n']}", "at chance, to": f"{b['at_chance']} of {b['n']}",
                         "_chance": (a["at_chance"], b["at_chance"]),
                         "_cells": tuple(cell_label({k: c[k] for k in axes}) for c in (a, b))})
    return pd.DataFrame(rows, columns=["axis", "from", "to", "where", "change (pp)", "told apart", "split",
                                       "at chance, from", "at chance, to", "_chance", "_cells"])


def _rescues(pairs: pd.DataFrame) -> list[dict]:
    """One-setting changes that move seeds off chance, each turned to start at the cell with more seeds
    at chance; the most seeds moved first ("matters most" is counted, whatever the axis), and among
    changes that move as many, settings before activations (a setting is the cheaper change to make)."""
    out = []
    for r in pairs.to_dict("records"):
        (before, after), (was, now) = r["_chance"], (r["at chance, from"], r["at chance, to"])
        if before == after:
            continue
        if after > before:  # say it as the rescue: from the cell at chance to the one that learns
            r = {**r, "from": r["to"], "to": r["from"], "at chance, from": now, "at chance, to": was,
                 "_cells": r["_cells"][::-1]}
        out.append({**r, "_moved": abs(before - after)})
    return sorted(out, key=lambda r: (-r["_moved"], r["axis"] == "act"))


def _where(r: dict) -> str:
    return f" ({r['where']})" if r["where"] != "–" else ""  # a one-axis grid has no other settings to name


def _rescue_sentence(r: dict) -> str:
    return (f"Changing {r['axis']} from {r['from']} to {r['to']}{_where(r)} takes the seeds that end at chance "
            f"from {r['at chance, from']} to {r['at chance, to']}.")


def _chance_changes(pairs: pd.DataFrame) -> list[str]:
    """Per cell with seeds at chance, the one-setting changes that move them off it: one sentence per cell,
    so "relu -> sigmoid" and "sigmoid -> tanh" read as the one fact they are (sigmoid ends at chance)."""
    by_cell: dict = {}
    for r in _rescues(pairs):
        by_cell.setdefault((r["_cells"][0], r["at chance, from"]), []).append(r)
    out = []
    for (cell, was), rescues in by_cell.items():
        left: dict = {}  # seeds still at chance -> the changes that leave that many
        for r in rescues:
            left.setdefault(r["at chance, to"], []).append(f"{r['axis']} → {r['to']}")
        if len(left) == 1:
            (count, changes), = left.items()
            after = f"with one setting changed ({_or(changes)}), {count} do"
        else:
            after = "; ".join(f"with {_or(changes)}, {count}" for count, changes in left.items())
        out.append(f"**{cell}** ends at chance in {was} seeds; {after}.")
    return out


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def pair_sentences(pairs: pd.DataFrame, cells: pd.DataFrame, axes: list[str], n_seeds: int, preview: bool,
                   epochs: int | None = None) -> list[str]:
    """Split cells first (seeds at chance and seeds that learned), which changes move seeds off chance,
    then per axis: how many one-setting changes the seeds tell apart, the largest, and the widest that is not."""
    if pairs.empty:
        return ["The grid has one cell: nothing to compare."]
    if n_seeds < 2:
        return ["With one seed per cell there is no spread to compare a difference with: nothing can be told "
                "apart. Run the sweep with `--n-seeds 3` or more."]
    out = []
    for cell in cells.to_dict("records"):
        if is_split(cell):
            out.append(f"**{cell_label({k: cell[k] for k in axes})}**'s seeds split: {cell['at_chance']} of "
                       f"{cell['n']} end at chance ({100 * cell['min']:.1f} %), the best at {100 * cell['max']:.1f} %. "
                       "Its mean and interval describe no single run, so its comparisons count seeds at chance "
                       "instead.")
    out.extend(_chance_changes(pairs)[:3])
    when = f"after {epochs} epoch{'s' * (epochs != 1)}, " if preview and epochs else ""
    for axis, d in pairs[~pairs["split"]].groupby("axis", sort=False):
        told = d[d["told apart"]]
        skipped = int((pairs["split"] & (pairs["axis"] == axis)).sum())  # judged by seeds at chance above
        line = (f"**{axis}**: {when}{len(told)} of {len(d)} one-setting changes are told apart by {n_seeds} seeds"
                + (f" (leaving out the {skipped} with a split cell, counted by seeds at chance above)" if skipped else ""))
        if len(told):
            big = told.loc[told["change (pp)"].abs().idxmax()]
            line += (f"; the largest, {big['from']} → {big['to']} ({big['where']}), moves test accuracy by "
                     f"{big['change (pp)']:+.1f} points")
        hidden = d[~d["told apart"]].sort_values("change (pp)", key=abs, ascending=False)
        if len(hidden):  # every one when few, so a reader finds each "no" of the table here
            said = [f"{r['from']} vs {r['to']} ({r['where']}), {abs(r['change (pp)']):.1f} points"
                    for r in hidden.head(3).to_dict("records")]
            more = f" and {len(hidden) - 3} more" if len(hidden) > 3 else ""
            line += (f". Not told apart: {'; '.join(said)}{more}: "
                     + ("a difference" if len(hidden) == 1 else "differences") + " within the seeds' spread")
        out.append(line + ".")
    return out


def capped_cells(ok: pd.DataFrame, axes: list[str], max_epochs: int | None, last: int = 5) -> dict:
    """{cell label: (lowest, highest best epoch)} for the cells whose every seed trained to the epoch cap
    and had its best epoch in the last ``last`` of them: still improving when the epochs ran out."""
    if not max_epochs or not {"best_epoch", "epochs_trained"} <= set(ok.columns):
        return {}
    out = {}
    for key, d in ok.groupby(axes, sort=False):
        if (d["epochs_trained"] >= max_epochs).all() and (d["best_epoch"] > max_epochs - last).all():
            label = cell_label(dict(zip(axes, key if isinstance(key, tuple) else (key,))))
            out[label] = (int(d["best_epoch"].min()), int(d["best_epoch"].max()))
    return out


def still_improving(ok: pd.DataFrame, axes: list[str], max_epochs: int | None, last: int = 5) -> list[str]:
    """A sentence per capped cell: its accuracy is where the cap stopped it, so part of any gap between it
    and another cell may be the cap rather than the setting."""
    return [f"**{label}** was still improving when the {max_epochs} epochs ran out (every seed's best epoch is "
            f"{lo if lo == hi else f'{lo}–{hi}'}): its accuracy is where the cap stopped it, so part of any gap "
            "between it and another cell may be the cap rather than the setting."
            for label, (lo, hi) in capped_cells(ok, axes, max_epochs, last).items()]


def finding_counts(ok: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Seeds flagged per cell and finding code (cells without findings kept, as rows of zeros)."""
    cells = ok[axes].drop_duplicates()
    long = ok.assign(code=ok["finding_codes"].fillna("").astype(str).str.split(",")).explode("code")
    long = long[long["code"].astype(bool)]
    # one axis: a plain index, as groupby gives for one key (a one-level MultiIndex matches none of its
    # labels, and reindexing against it turned every count into 0)
    index = pd.MultiIndex.from_frame(cells) if len(axes) > 1 else pd.Index(cells[axes[0]], name=axes[0])
    if long.empty:
        return pd.DataFrame(index=index)
    return long.groupby([*axes, "code"]).size().unstack("code", fill_value=0).reindex(index, fill_value=0)


def finding_sentences(counts: pd.DataFrame, n_seeds: int, axes: list[str], cells: pd.DataFrame | None = None) -> list[str]:
    """Which cells the diagnosis flags and with what, and which single-setting change clears a finding.

    cells -- cell_table(...): when given, a flagged cell whose seeds all learned is said to learn despite its
             findings (a finding is evidence about the inside of a run, not a verdict on its accuracy)"""
    if counts.shape[1] == 0:
        return ["The diagnosis flags no cell of the grid."]
    out, clean = [], []
    codes = {}
    for key, row in counts.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        label = cell_label(dict(zip(axes, key)))
        found = row[row > 0]
        codes[key] = set(found.index)
        if found.empty:
            clean.append(label)
            continue
        if found.nunique() > 1:
            out.append(f"**{label}**: {join_names([f'{c} ({n} of {n_seeds} seeds)' for c, n in found.items()])}.")
        else:
            each = ", each" if len(found) > 1 else ""
            out.append(f"**{label}**: {join_names(found.index)}{each} in {int(found.iloc[0])} of {n_seeds} seeds.")
    if clean:
        out.append(f"No finding in {join_names(clean)}.")
    # one sentence per (cell, axis, what clears): "from sigmoid to relu or tanh", not a sentence per target
    merged: dict = {}
    for a, ca in codes.items():
        for b, cb in codes.items():
            diff = [i for i in range(len(axes)) if a[i] != b[i]]
            if len(diff) != 1 or not (ca - cb):
                continue
            merged.setdefault((diff[0], a, tuple(sorted(ca - cb)), tuple(sorted(ca & cb))), []).append(str(b[diff[0]]))
    changes = []
    for (i, a, cleared, stays), targets in merged.items():
        where = ", ".join(f"{axes[j]}={a[j]}" for j in range(len(axes)) if j != i)
        text = (f"Changing {axes[i]} from {a[i]} to {_or(targets)}{f' ({where})' if where else ''} clears "
                f"{join_names(cleared)}" + (f"; {join_names(stays)} stays" if stays else "") + ".")
        changes.append((axes[i] == "act", text))  # a change of setting teaches more than a change of activation
    out.extend(text for _, text in sorted(changes, key=lambda c: c[0])[:3])
    if cells is not None and len(cells):
        learned = []
        for key, found in codes.items():
            row = cells[(cells[axes].astype(str) == [str(k) for k in key]).all(axis=1)]
            if found and len(row) and int(row["at_chance"].iloc[0]) == 0 and "NOT_LEARNING" not in found:
                learned.append(f"{cell_label(dict(zip(axes, key)))} ({100 * float(row['mean'].iloc[0]):.1f} %, "
                               f"{join_names(sorted(found))})")
        if learned:
            out.append(f"A finding is evidence about the inside of a run, not a verdict on it: {join_names(learned)} "
                       f"learn{'s' if len(learned) == 1 else ''} all the same. What is flagged there (a first "
                       "layer whose gradient stays far below the output layer's, say) can slow a run down without "
                       "stopping it.")
    return out


def curve_sentences(metrics: pd.DataFrame, metric: str, group: str = "act") -> list[str]:
    """The slice's last common epoch: the metric per group, mean over seeds."""
    if metrics.empty or metric not in metrics:
        return []
    last = int(metrics.groupby(group)["epoch"].max().min())
    at = metrics[metrics["epoch"] == last].groupby(group, sort=False)[metric].mean()
    loss = metric.endswith("loss")
    values = [f"{v:.2f} nats for {g}" if loss else f"{100 * v:.1f} % for {g}" for g, v in at.items()]
    chance = " (chance: ln 10 = 2.30 nats)" if loss else " (chance: 10 %)"
    out = [f"At epoch {last} the {METRIC_NAMES.get(metric, metric).split(' (')[0]} is {join_names(values)}, mean over "
           f"seeds{chance}."]
    if "past_stop" in metrics:
        past = metrics[(metrics["epoch"] == last) & metrics["past_stop"].astype(bool)]
        if len(past):
            who = list(dict.fromkeys(past[group].astype(str)))
            out.append(f"For {join_names(who)} that mean includes seeds that early stopping had already ended: their stacked "
                       "group kept training them, so the curve (faded from the first seed's stop) shows where they were heading, not "
                       "the weights that were tested.")
            own = final_epochs(metrics, group)  # each seed up to its own early stop
            own = own[own[group].astype(str).isin(who)].groupby(group, sort=False)[metric].mean()
            if len(own):
                said = [f"{v:.2f} nats for {g}" if loss else f"{100 * v:.1f} % for {g}" for g, v in own.items()]
                out.append(f"Counting each seed only up to its own early stop, the mean is {join_names(said)}.")
    return out


def _plateau_stops(counts: pd.DataFrame, label: str) -> int:
    """Seeds of the cell named ``label`` that the diagnosis calls PLATEAU_STOP (0 when none or unknown)."""
    if "PLATEAU_STOP" not in counts:
        return 0
    for key, n in counts["PLATEAU_STOP"].items():
        key = key if isinstance(key, tuple) else (key,)
        if cell_label(dict(zip(counts.index.names, key))) == label:
            return int(n)
    return 0


def conclusion(pairs: pd.DataFrame, counts: pd.DataFrame, n_seeds: int, preview: bool,
               capped: dict | None = None) -> list[str]:
    """The page's last word: the change that matters most, what the diagnosis ties to it, and the caveat.

    capped -- capped_cells(): a change to or from such a cell is said to be partly the epoch cap."""
    out = []
    rescued = _rescues(pairs) if len(pairs) else []
    if rescued:
        top = rescued[0]
        # every change that moves as many seeds off chance, in any cell: a tie is said as one, not as a winner
        tied = [r for r in rescued if r["_moved"] == top["_moved"]]
        if len(tied) == 1:
            lead = _rescue_sentence(top)
            # counted in seeds at chance: the test-accuracy measure below can name another change as the largest
            out.append("Counted in seeds, the change that matters most here: " + lead[0].lower() + lead[1:])
        elif len({(r["at chance, from"], r["at chance, to"]) for r in tied}) == 1:
            changes = _or([f"{r['axis']} from {r['from']} to {r['to']}{_where(r)}" for r in tied[:4]])
            more = f" (and {len(tied) - 4} more)" if len(tied) > 4 else ""
            out.append(f"Counted in seeds, {len(tied)} changes matter equally here: changing {changes}{more} each take "
                       f"the seeds that end at chance from {top['at chance, from']} to {top['at chance, to']}.")
        else:
            changes = _or([f"{r['axis']} from {r['from']} to {r['to']}{_where(r)} (at chance: {r['at chance, from']} "
                           f"→ {r['at chance, to']})" for r in tied[:4]])
            more = f" (and {len(tied) - 4} more)" if len(tied) > 4 else ""
            out.append(f"Counted in seeds, {len(tied)} changes matter equally here, each moving {top['_moved']} seed"
                       f"{'s' * (top['_moved'] != 1)} off chance: changing {changes}{more}.")
        if _plateau_stops(counts, rescued[0]["_cells"][0]):  # stopped, not unable: say what the change rescues
            out.append("Those seeds were ended by early stopping on their initial plateau (PLATEAU_STOP): trained on, "
                       "they leave it too (page 3). The change shortens or removes the plateau, so early stopping no longer ends "
                       "them at chance (render this page with `-p curve_slice init=kaiming` to see the curves).")
    clean = pairs[~pairs["split"]] if len(pairs) else pairs
    told = clean[clean["told apart"]] if len(clean) and n_seeds >= 2 else clean.iloc[0:0]
    if len(told):
        big = told.loc[told["change (pp)"].abs().idxmax()]
        out.append(f"{'Measured in test accuracy instead' if rescued else 'Measured in test accuracy'}, between cells "
                   "whose seeds agree (no cell with some seeds at chance and others learning), the largest change the "
                   f"seeds can vouch for is {big['axis']} from {big['from']} to {big['to']} ({big['where']}): "
                   f"{big['change (pp)']:+.1f} points"
                   + (f" ({join_names(hit)} was still improving at the epoch cap: part of this may be the cap)"
                      if (hit := [c for c in big["_cells"] if c in (capped or {})]) else "") + ".")
        quiet = clean[~clean["told apart"]]
        if len(quiet):
            out.append(f"{len(quiet)} of {len(clean)} such one-setting changes stay within the seeds' spread: for "
                       "those, this grid cannot say which setting is better.")
    elif len(clean):
        out.append("No one-setting change between cells whose seeds agree moves accuracy by more than the seeds' "
                   "spread.")
    if counts.shape[1]:
        flagged = int((counts.sum(axis=1) > 0).sum())
        out.append(f"The diagnosis flags {flagged} of {len(counts)} cells; the sentences under the findings "
                   "figure say which change clears which finding.")
    if preview:
        out.append("This is a preview: it shows which settings separate early, not which ends best.")
    return out
