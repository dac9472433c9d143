"""The findings tables the pages show, with their reading key, and the plateau story behind PLATEAU_STOP.

Like :mod:`gradflow.narrate`, every builder takes tables (or stored findings) and returns Markdown or
a DataFrame, so the tests can plant numbers and check the words.
"""
from __future__ import annotations

import re

import pandas as pd

from .narrate import CHANCE_ACC, join_names, layer_text

_TITLED_KEY = re.compile(r"\b(?:[A-Z]\w* )?`(layers\.\d+)`")  # "Linear `layers.0`" as a message names a layer


def _labelled(text: str, labels: dict) -> str:
    """A message with the recorder's layer keys (also as "Linear `layers.0`") replaced by the page's names."""
    text = _TITLED_KEY.sub(lambda m: labels.get(m.group(1), m.group(0)), str(text))
    return layer_text(text, labels)


CAUSES_COLUMN = "possible causes, ranked"
# Under every findings table: the words it uses, for a reader who has not met the diagnosis
FINDINGS_KEY = ("*How to read the table.* **severity**: *error*, the run is hurt by it; *warning*, worth a look; "
                "*info*, a note. **finding**: the diagnosis's name for the symptom. "
                f"**{CAUSES_COLUMN}**: what can produce this symptom, the likeliest first, each marked by what this "
                "run's own numbers say: *supported* (the run shows it), *possible* (nothing recorded speaks for or "
                "against it), *unlikely* (the run shows the opposite, or its recipe rules it out).")


def findings_key(codes) -> str:
    """The key under a findings table, with what each finding in it means (the diagnosis's own one-line
    definitions), so a student can read the table without the README."""
    from .diagnose.codes import CODES
    shown = [c for c in dict.fromkeys(codes) if c in CODES]
    if not shown:
        return FINDINGS_KEY
    return FINDINGS_KEY + " *The findings here:* " + "; ".join(f"**{c}**: {CODES[c]}" for c in shown) + "."


def grouped_findings(findings_by_run: dict, seeds_by_run: dict, labels: dict) -> pd.DataFrame:
    """Findings as a reader's table: one row per (run, cause), the layers it was seen in named,
    how many seeds show it, and the likeliest causes.

    findings_by_run -- {run label: [finding dicts]} (a findings.json written before grouping is grouped here)
    seeds_by_run    -- {run label: [seeds]}
    labels          -- {recorder layer key: display name}
    """
    from .diagnose.alternatives import likely_causes
    from .diagnose.finding import which_seeds
    from .diagnose.grouping import as_grouped, core_message
    rows = []
    for run, findings in findings_by_run.items():
        seeds = list(seeds_by_run.get(run, []))
        for f in as_grouped(findings, seeds):
            n = f.of_seeds or len(seeds) or 1
            layers = f.layers or ([f.layer] if f.layer else [])
            named = [labels.get(k, "whole model" if k in (None, "<model>") else k) for k in layers]
            rows.append({"run": run, "severity": f.severity, "finding": f.code,
                         "layers": "; ".join(dict.fromkeys(named)) or "whole model",
                         "seeds": f"{min(f.seen_in, n)} of {n} seed{'s' if n != 1 else ''}{which_seeds(f, n)}",
                         "what it says (worst seed)": _labelled(core_message(f), labels),
                         "suggestion": _labelled(f.suggestion, labels),
                         CAUSES_COLUMN: _labelled(likely_causes(f, 3, evidence=False), labels)})
    columns = ["run", "severity", "finding", "layers", "seeds", "what it says (worst seed)", "suggestion",
               CAUSES_COLUMN]
    return pd.DataFrame(rows, columns=columns)


def _left_chance(m: pd.DataFrame) -> int | None:
    """The first epoch at which a seed's validation accuracy reached CHANCE_ACC (past its stop included)."""
    up = m[m["val_acc"] >= CHANCE_ACC]
    return int(up["epoch"].iloc[0]) if len(up) else None


def _plateau_facts(metrics: pd.DataFrame, results: pd.DataFrame, learned_acc: float):
    """Per seed stopped at chance: (seed, stop epoch, test acc, epoch it passed ``learned_acc`` or None,
    best validation accuracy past the stop, last epoch, epoch it left chance or None)."""
    facts = []
    for row in results[results["test_acc"] < CHANCE_ACC].itertuples():
        m = metrics[metrics["seed"] == row.seed].sort_values("epoch")
        past = m[m["past_stop"].astype(bool)]
        stop = int(past["epoch"].min()) - 1 if len(past) else int(m["epoch"].max())
        rise = past[past["val_acc"] >= learned_acc]
        facts.append((row.seed, stop, row.test_acc, int(rise["epoch"].iloc[0]) if len(rise) else None,
                      float(past["val_acc"].max()) if len(past) else float("nan"), int(m["epoch"].max()),
                      _left_chance(m)))
    return facts


def _survivors(metrics: pd.DataFrame, results: pd.DataFrame) -> list[tuple]:
    """Seeds that started on the same plateau but were not stopped on it: (seed, epoch and value of
    their last record below chance, epoch they left chance). Early stopping counts its patience from
    the last record, so a noisy record late on the plateau is what kept such a seed training."""
    out = []
    for row in results[results["test_acc"] >= CHANCE_ACC].itertuples():
        m = metrics[metrics["seed"] == row.seed].sort_values("epoch")
        left = _left_chance(m)
        if left is None or left == int(m["epoch"].min()):
            continue  # never on the plateau
        on = m[m["epoch"] < left]
        records = on[on["val_acc"] > on["val_acc"].cummax().shift(fill_value=-1.0)]
        last = records.iloc[-1]
        out.append((row.seed, int(last["epoch"]), float(last["val_acc"]), left))
    return out


def _noise_decides(facts, survivors, patience: int) -> str:
    """Why some seeds stopped and one did not: a record set by noise on the plateau, and all leave it."""
    text = ""
    for seed, record_epoch, record, left in survivors:
        text += (f" Seed {seed} sat on the same plateau, but a noisy {100 * record:.1f} % at epoch {record_epoch} was "
                 f"a new record, which restarted early stopping's count of {patience} epochs; it left chance "
                 f"(passed {100 * CHANCE_ACC:.0f} %) at epoch {left}, before the count ran out.")
    stopped = [(f[0], f[1], f[6]) for f in facts]  # seed, stop epoch, epoch it left chance past its stop
    if survivors and all(left is not None for *_, left in stopped):
        # "; " between seeds: a seed's own clause may hold a comma
        past = "; ".join(f"seed {seed} left chance at epoch {left}"
                         + (", one epoch after it was stopped" if left == stop + 1 else "")
                         for seed, stop, left in sorted(stopped, key=lambda f: f[2]))
        never = join_names([f"seed {seed}, never stopped, at {left}" for seed, _, _, left in survivors])
        text += (f" Trained past their stop, {past} ({never}): which seeds end at 10 % was decided by when noise "
                 "on the plateau last set a record, not by whether a seed could learn.")
    return text


def plateau_story(metrics: pd.DataFrame, results: pd.DataFrame, activation: str = "sigmoid",
                  learned_acc: float = 0.5, patience: int = 7) -> str:
    """Sigmoid's "10 %" under the tutorial recipe: early stopping cutting a slow plateau, when the data shows it.

    metrics -- one run's per-epoch table (seed, epoch, val_acc, past_stop); results -- its per-seed table
    (seed, test_acc, stopped_epoch). Returns "" when no seed stopped at chance.
    """
    facts = _plateau_facts(metrics, results, learned_acc)
    if not facts:
        return ""
    seeds = join_names([str(seed) for seed, *_ in facts])
    stops = {stop for _, stop, *_ in facts}
    accs = {f"{100 * acc:.1f} %" for _, _, acc, *_ in facts}
    if len(facts) == 1:
        ended = f"seed {seeds} after epoch {facts[0][1]} (test accuracy {accs.pop()})"
    elif len(stops) == 1 and len(accs) == 1:  # the usual case: the same noise bump, the same stop
        ended = f"seeds {seeds} after epoch {stops.pop()}, each at a test accuracy of {accs.pop()}"
    else:
        ended = "seeds " + join_names([f"{seed} after epoch {stop} ({100 * acc:.1f} %)" for seed, stop, acc, *_ in facts])
    risen = [(seed, rose, best, end) for seed, _, _, rose, best, end, _ in facts if rose is not None]
    text = (f"**The {activation} story.** Early stopping (patience {patience} on validation accuracy) ended {ended}: "
            f"validation accuracy wandered around 10 % with no new record for {patience} epochs.")
    if risen:
        passed = join_names([f"seed {seed}{f' passed {100 * learned_acc:.0f} % validation accuracy' if i == 0 else ''} "
                             f"at epoch {rose}" for i, (seed, rose, _, _) in enumerate(risen)])
        reached = join_names([f"{100 * best:.1f} %" for _, _, best, _ in risen])
        ends = {end for *_, end in risen}
        by = f"epoch {ends.pop()}" if len(ends) == 1 else "the last epoch"
        text += (" The stopped models kept training with the others (the thin, faded part of its line and band; their test score "
                 f"stays their best epoch's): {passed}, and by {by} {'they' if len(risen) > 1 else 'it'} reached "
                 f"{reached}. So a {activation} network with this recipe does learn, slowly: its \"10 %\" is early "
                 "stopping ending the run while it was still on a slow plateau (the diagnosis calls it PLATEAU_STOP: "
                 "stopped, not unable).")
    else:
        text += " Within the epochs trained, no stopped seed left the plateau."
    return text + _noise_decides(facts, _survivors(metrics, results), patience)


def plateau_lesson(metrics: pd.DataFrame, results: pd.DataFrame, activation: str = "sigmoid",
                   learned_acc: float = 0.5) -> str:
    """The plateau story in one sentence, for a page's conclusion ("" when no seed stopped at chance)."""
    facts = _plateau_facts(metrics, results, learned_acc)
    if not facts:
        return ""
    n, total = len(facts), results["seed"].nunique()
    left = [f[6] for f in facts if f[6] is not None]
    text = f"{n} of {total} {activation} seeds stopped early at chance"
    if len(left) < n:
        return text + f", and {'not all' if n > 1 else 'it did not'} left chance within the epochs trained."
    they = "they" if n > 1 else "it"
    return (text + f", yet trained on {they} left chance by epoch {max(left)}: {activation}'s \"10 %\" in "
            "the tutorial's table is most likely early stopping ending a slow start (PLATEAU_STOP), not a network "
            "that cannot learn.")
