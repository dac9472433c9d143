"""What the diagnosis said about each case: a run's findings as the case-study page tables them
(grouped across seeds, layers named, the run's own accuracy where a rule speaks in general), and the
cases at a glance."""
from __future__ import annotations

import math
import re

import pandas as pd

from .case_narrate import CHANCE, NEAR_CHANCE, layer_where, nan_seeds, numbers_004, pct, test_mean
from .style import layer_label

_LAYER_KEY = re.compile(r"(?:\b[A-Z]\w* )?`?(?<![\w.])(layers\.\d+)`?")  # "layers.0", "`layers.0`", "Linear `layers.0`"


def readable(message: str, config: dict) -> str:
    """A finding's message as a table cell shows it: the case's own names for its functions, layers by
    the project's names, no seed numbers (the seeds column counts them)."""
    from .case_bugs import READABLE_NAMES
    message = re.sub(r" \((?:seed|member) \d+\)", "", message)
    for registered, name in READABLE_NAMES.items():
        message = message.replace(registered, name)
    def label(m):
        named = layer_label(config, m.group(1))
        return m.group(0) if named == m.group(1) else named  # a model of its own (004): its names, as written
    # a table cell shows text, not Markdown: a module's name in typographic quotes, not between backticks
    return re.sub(r"`([^`]+)`", r"“\1”", _LAYER_KEY.sub(label, message))


# a rule's general expectation, written for any run; the page states what this run measured instead
_CHANCE_CLAIM = re.compile(r"\(such a model learns slowly, if at all\)")


def _as_measured(message: str, run) -> str:
    """The finding's message with its general "stays near chance" replaced by the run's own accuracy."""
    acc = test_mean(run) if "test_acc" in run.results else float("nan")
    if not _CHANCE_CLAIM.search(message) or not math.isfinite(acc):
        return message
    said = (f"this run stays at chance: {pct(acc)} on the test set" if acc - CHANCE < NEAR_CHANCE else
            f"this run learns a little all the same: {pct(acc)} on the test set, chance being {pct(CHANCE)}")
    return _CHANCE_CLAIM.sub(f"({said})", message)


def findings_table(run, codes: tuple | None = None) -> pd.DataFrame:
    """The run's findings, one row per cause (grouped across seeds and layers), the layers named,
    seeds counted, and the likeliest cause with its evidence.

    codes -- keep only these (None: all). Columns: severity, finding, where, seeds, what it says, likely cause.
    """
    from .diagnose.alternatives import likely_causes
    from .diagnose.finding import which_seeds
    from .diagnose.grouping import as_grouped, core_message
    seeds = run.seeds
    out = []
    for f in as_grouped(run.findings, seeds):
        if codes is not None and f.code not in codes:
            continue
        where = "; ".join(dict.fromkeys(layer_where(run, k) for k in f.layers)) or "whole run"
        n = f.of_seeds or len(seeds) or 1
        out.append({"severity": f.severity, "finding": f.code, "where": where,
                    "seeds": f"{min(f.seen_in, n)} of {n}{which_seeds(f, n)}", "what it says": _as_measured(readable(core_message(f), run.config), run),
                    "likely cause": readable(likely_causes(f, 1).removeprefix("1. "), run.config)})
    return pd.DataFrame(out, columns=["severity", "finding", "where", "seeds", "what it says", "likely cause"])


def _notes_only(run) -> str:
    """A broken run no rule warns about: what the diagnosis still noted (info), if anything."""
    notes = [f for f in run.findings if f["severity"] == "info"]
    if any((f.get("evidence") or {}).get("cause") == "fits_targets" for f in notes):
        return "no warning (the bug is in the metric); a note on what binary accuracy measures"
    if notes:
        return "no warning; info: " + ", ".join(sorted({f["code"] for f in notes}))
    return "nothing (the bug is in the metric)"


def _seeds_said(run) -> str:
    """A run's test accuracy for the summary: its mean, or, where some seeds stayed at chance (or ended in
    NaN) and others learned, how many learned and where -- a mean of both describes no seed."""
    acc = pd.to_numeric(run.results["test_acc"], errors="coerce")
    stuck = acc.isna() | (acc - CHANCE < NEAR_CHANCE)
    if not stuck.any() or stuck.all():
        return pct(test_mean(run))
    learned = acc[~stuck]
    stuck_seeds = {int(s) for s in run.results.loc[stuck.to_numpy(), "seed"]} if "seed" in run.results else set()
    how = "in NaN (at chance)" if stuck_seeds and stuck_seeds <= set(nan_seeds(run)) else "at chance"
    others = "the other" if stuck.sum() == 1 else f"the other {int(stuck.sum())}" if stuck.sum() < 10 else "the others"
    return f"{len(learned)} of {len(acc)} seeds learned ({pct(learned.mean())}{' mean' if len(learned) > 1 else ''}); {others} ended {how}"


def summary_table(cases: dict) -> pd.DataFrame:
    """One row per case: the numbers with the bug and with its fix, and the finding that named it.

    Case 004's bug is a metric, not a model: "with the bug" is the untrained copy-net as binary accuracy
    judges it (100 %, yet far from its targets); "with the fix" is the error, by which both trained models
    are judged. A trained copy-net that scores better on both counts is not called broken.
    """
    from .case_studies import case
    rows = []
    for cid, runs in cases.items():
        c = case(cid)
        broken = [v for v in c.variants if v.role == "broken"][0]
        fixed = [v for v in c.variants if v.role == "fixed"]
        named = [code for code in c.finding_codes if code in {f["code"] for f in runs[broken.key].findings}]
        row = {"case": cid, "bug": c.title, "with the bug": _seeds_said(runs[broken.key]),
               "with the fix": "; ".join((f"{v.label.split(':')[0]}: " if len(fixed) > 1 else "") + _seeds_said(runs[v.key])
                                         for v in fixed),
               "measured as": "test accuracy"}
        if cid == "004":
            n = numbers_004(runs)
            row |= {"with the bug": f"binary accuracy {pct(n['acc_c0'])}, yet error {n['mse_c0']:.3f} "
                                    "(copy-net, untrained)",
                    "with the fix": f"error {n['mse_c']:.3f} (copy-net, trained), {n['mse_a']:.3f} (autoencoder)",
                    "measured as": "binary accuracy, then mean squared error (validation)"}
        rows.append(row | {"what the diagnosis said": ", ".join(named) or _notes_only(runs[broken.key])})
    return pd.DataFrame(rows)
