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
                         "seeds": f"{min(f.seen_in, n)} of {n} seed{'s' if n != 1 else ''}",
                         "what it says (worst seed)": _labelled(core_message(f), labels),
                         "suggestion": _labelled(f.suggestion, labels),
                         CAUSES_COLUMN: _labelled(likely_causes(f, 3, evidence=False), labels)})
    columns = ["run", "severity", "finding", "layers", "seeds", "what it says (worst seed)", "suggestion",
               CAUSES_COLUMN]
    return pd.DataFrame(rows, columns=columns)


def _plateau_facts(metrics: pd.DataFrame, results: pd.DataFrame, learned_acc: float):
    """Per seed stopped at chance: (seed, stop epoch, test acc, epoch it left the plateau or None, best
    validation accuracy past the stop)."""
    facts = []
    for row in results[results["test_acc"] < CHANCE_ACC].itertuples():
        m = metrics[metrics["seed"] == row.seed].sort_values("epoch")
        past = m[m["past_stop"].astype(bool)]
        stop = int(past["epoch"].min()) - 1 if len(past) else int(m["epoch"].max())
        rise = past[past["val_acc"] >= learned_acc]
        facts.append((row.seed, stop, row.test_acc, int(rise["epoch"].iloc[0]) if len(rise) else None,
                      float(past["val_acc"].max()) if len(past) else float("nan"), int(m["epoch"].max())))
    return facts


def plateau_story(metrics: pd.DataFrame, results: pd.DataFrame, activation: str = "sigmoid",
                  learned_acc: float = 0.5) -> str:
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
    risen = [(seed, rose, best, end) for seed, _, _, rose, best, end in facts if rose is not None]
    text = (f"**The {activation} story.** Early stopping (patience 7 on validation accuracy) ended {ended}: "
            "validation accuracy wandered around 10 % with no new record for 7 epochs.")
    if risen:
        left = join_names([f"seed {seed}{' left the plateau' if i == 0 else ''} at epoch {rose}"
                      for i, (seed, rose, _, _) in enumerate(risen)])
        reached = join_names([f"{100 * best:.1f} %" for _, _, best, _ in risen])
        ends = {end for *_, end in risen}
        by = f"epoch {ends.pop()}" if len(ends) == 1 else "the last epoch"
        text += (" Every model trains in one stacked group, so the stopped models kept training with the others (the thin faded curves): " + left + ", "
                 f"and by {by} {'they' if len(risen) > 1 else 'it'} reached {reached} validation accuracy. So a "
                 f"{activation} network with this recipe does learn, slowly: its \"10 %\" is early stopping cutting "
                 "a slow plateau short (the diagnosis calls it PLATEAU_STOP: stopped, not unable).")
    else:
        text += " Within the epochs trained, no stopped seed left the plateau."
    return text


def plateau_lesson(metrics: pd.DataFrame, results: pd.DataFrame, activation: str = "sigmoid",
                   learned_acc: float = 0.5) -> str:
    """The plateau story in one sentence, for a page's conclusion ("" when no seed stopped at chance)."""
    facts = _plateau_facts(metrics, results, learned_acc)
    if not facts:
        return ""
    n, total = len(facts), results["seed"].nunique()
    rose = [r for *_, r, _, _ in facts if r is not None]
    text = f"{n} of {total} {activation} seeds stopped early at chance"
    if not rose:
        return text + f", and {'none' if n > 1 else 'it did not'} left {'its' if n > 1 else 'the'} plateau within the epochs trained."
    they = "they" if len(rose) > 1 else "it"
    return (text + f", yet trained on {they} left the plateau by epoch {max(rose)}: {activation}'s \"10 %\" in "
            "the tutorial's table is early stopping cutting a slow start short (PLATEAU_STOP), not a network "
            "that cannot learn.")
