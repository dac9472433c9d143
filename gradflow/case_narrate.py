"""What each case-study run shows, in sentences computed from the stored runs' tables.

Every function takes stored runs (``{variant key: Run}`` as :func:`gradflow.case_studies.load_case_studies`
gives them) and returns Markdown text or a small table, so the case-study page only displays what
these return and the tests check the numbers against the runs.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .narrate import CHANCE_ACC, _join
from .style import layer_label

CHANCE = 0.10  # ten classes


def pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f} %"


def test_mean(run, column: str = "test_acc") -> float:
    """The run's test metric, mean over its seeds."""
    return float(pd.to_numeric(run.results[column], errors="coerce").mean())


def last_epoch(run) -> pd.DataFrame:
    m = run.metrics
    return m[m["epoch"] == m["epoch"].max()]


def epoch_mean(run, column: str, epoch: int | None = None) -> float:
    """Mean over seeds of ``column`` at ``epoch`` (default: the last)."""
    m = run.metrics
    e = m["epoch"].max() if epoch is None else epoch
    return float(m.loc[m["epoch"] == e, column].astype(float).mean())


def samples(run) -> dict:
    """The plain arrays a plain-loop run stored beside its metrics (samples.npz, no pickle)."""
    path = run.path / "samples.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _seeds_note(run) -> str:
    n = len(run.seeds)
    return "one seed" if n == 1 else f"mean of {n} seeds"


def _setup(run) -> str:
    s = run.config["run"]
    images = s.get("train_images") or s.get("train_subset")
    return f"{s.get('max_epochs')} epochs on {images:,} training images" if images else f"{s.get('max_epochs')} epochs"


# --------------------------------------------------------------------------- per case


def shows_000(runs: dict) -> str:
    k, p, f = runs["keras"], runs["pytorch"], runs["logits"]
    acc_k, acc_p, acc_f = test_mean(k), test_mean(p), test_mean(f)
    out = samples(k)
    seed = k.seeds[0]
    values, sums = out.get(f"output_values_seed{seed}"), out.get(f"row_sums_seed{seed}")
    text = (f"All three runs train the same tanh-output network ({_setup(k)}, Adam, learning rate 1e-3, "
            f"{_seeds_note(k)}); only the loss differs. With Keras' loss the test accuracy is **{pct(acc_k)}**, "
            f"{'at' if abs(acc_k - CHANCE) < 0.05 else 'compared with'} chance ({pct(CHANCE)}). With PyTorch's "
            f"cross-entropy on the very same tanh outputs it is **{pct(acc_p)}**, and with plain logits "
            f"**{pct(acc_f)}**. ")
    gap = acc_f - acc_p
    text += (f"Bounded logits cost the PyTorch model {100 * gap:.1f} points here, " if gap > 0.01 else
             "Bounded logits cost the PyTorch model almost nothing here, ")
    text += "so tanh at the output is not what breaks the Keras model: reading tanh outputs as probabilities is."
    if values is not None and sums is not None:
        text += (f" After training, {pct(float((values < 0).mean()))} of the Keras model's output values are "
                 f"negative and {pct(float((sums <= 0).mean()))} of its output rows sum to zero or less: "
                 "\"probabilities\" that cannot be.")
    return text


def shows_001(runs: dict) -> str:
    b, f = runs["drop70"], runs["drop30"]
    acc_b, acc_f = test_mean(b), test_mean(f)
    tr_b, tr_f = epoch_mean(b, "train_acc"), epoch_mean(f, "train_acc")
    spread = lambda r: "" if len(r.seeds) < 2 else (  # noqa: E731
        f" (seeds from {pct(r.results['test_acc'].min())} to {pct(r.results['test_acc'].max())})")
    return (f"Same MLP, same data, {_setup(b)}, {_seeds_note(b)}. Dropping 70 % of the units: test accuracy "
            f"**{pct(acc_b)}**{spread(b)}; dropping 30 %: **{pct(acc_f)}**{spread(f)}, "
            f"{100 * (acc_f - acc_b):.1f} points apart. During training (dropout on) the p = 0.7 network gets "
            f"{pct(tr_b)} of its training batches right against {pct(tr_f)}: it learns with 30 % of its units "
            "at a time. Neither number is wrong, which is why the bug survives: nothing crashes, the model is "
            "just a little worse.")


def first_nonfinite(run) -> dict | None:
    """Step, layer key and place of the run's first NaN/inf (forward order), from its recording."""
    rec = run.recordings
    if rec is None:
        return None
    nf = rec.tables()["nonfinite"]
    if nf.empty:
        return None
    first = nf[nf["step"] == nf["step"].min()].iloc[0]
    return {"step": int(first["step"]), "layer": str(first["layer"]), "where": str(first["where"])}


def shows_002(runs: dict) -> str:
    raw, scaled, clamped = runs["raw"], runs["scaled"], runs["clamped"]
    nf = first_nonfinite(raw)
    where = {"grad": "weight gradient", "activation": "output", "activation_grad_in": "input gradient"}
    text = ""
    if nf is not None:
        text += (f"The broken run's first non-finite value appears at step {nf['step']}, in the "
                 f"{where.get(nf['where'], nf['where'])} of {layer_label(raw.config, nf['layer'])}; from then on "
                 "every weight is NaN. ")
    text += (f"Its test accuracy is **{pct(test_mean(raw))}** (chance {pct(CHANCE)}). On the same raw pixels "
             f"and the same {_setup(raw)}, fix 1 (inputs divided by 255) goes from "
             f"{pct(epoch_mean(scaled, 'val_acc', 0))} before training to **{pct(test_mean(scaled))}**, and fix 2 "
             f"(exp of clamp(x, max=0), inputs still 0–255) from {pct(epoch_mean(clamped, 'val_acc', 0))} to "
             f"**{pct(test_mean(clamped))}**. ")
    codes = {f["code"] for f in clamped.findings}
    if "NONFINITE" in codes:
        acc = pd.to_numeric(clamped.results["test_acc"], errors="coerce")
        stuck, n = int((acc < CHANCE_ACC).sum()), len(acc)
        who = "this run overflows in the forward pass instead" if n == 1 or stuck == n else (
            f"{stuck} of {n} seeds overflow in the forward pass instead (the "
            + ("other reaches " if n - stuck == 1 else "others reach ") + f"{_join([pct(v) for v in acc[acc >= CHANCE_ACC]])}, so the "
            f"mean of {pct(acc.mean())} describes none of them)")
        text += ("Fix 2 still ends in NaN here: the clamp removes the 0 · inf of the unused branch, but with "
                 f"0–255 inputs the first layer's pre-activations and gradients are so large that {who}. ")
    elif "UNNORMALIZED_INPUT" in codes:
        text += "The clamp removes the NaN; the inputs are still 0–255, and the diagnosis still (rightly) says so"
        text += (", with exploding gradients in the first layer: this run learns, but other seeds of the same "
                 "setup can overflow. " if "EXPLODING_GRADIENT" in codes else ". ")
    text += "Normalising the inputs is the fix that holds."
    return text.strip()


def shows_004(runs: dict) -> str:
    c, a = runs["copy"], runs["autoencoder"]
    acc_c0, acc_c, acc_a = (epoch_mean(c, "val_binary_acc", 0), epoch_mean(c, "val_binary_acc"),
                            epoch_mean(a, "val_binary_acc"))
    mse_c0, mse_c, mse_a = epoch_mean(c, "val_loss", 0), epoch_mean(c, "val_loss"), epoch_mean(a, "val_loss")
    verdict = "higher than" if acc_c > acc_a + 0.0005 else ("about the same as" if abs(acc_c - acc_a) <= 0.0005
                                                            else "lower than")
    ratio = mse_c / mse_a if mse_a > 0 else float("inf")
    times = (f"{ratio:.0f} times larger" if ratio >= 2 else f"{ratio:.1f} times larger" if ratio >= 1.05
             else "no larger" if ratio >= 0.95 else "smaller")
    return (f"On the validation images, as in the curves: before any training the copy-net's binary accuracy is "
            f"**{pct(acc_c0)}** while its mean squared "
            f"error is {mse_c0:.3f} (pixel units²). After {_setup(c)} with MSE and Adam: the copy-net's "
            f"binary accuracy is **{pct(acc_c)}**, {verdict} the autoencoder's **{pct(acc_a)}**; its mean squared "
            f"error is {mse_c:.3f} against {mse_a:.3f}, {times}. Binary accuracy only asks which "
            "side of 0.5 each pixel lands on; the error asks how far it is from its target.")


SHOWS = {"000": shows_000, "001": shows_001, "002": shows_002, "004": shows_004}


def what_this_shows(case_id: str, runs: dict) -> str:
    return f"**What these runs show.** {SHOWS[str(case_id)](runs)}"


# --------------------------------------------------------------------------- findings, grouped


_LAYER_KEY = re.compile(r"(?:\b[A-Z]\w* )?`?(?<![\w.])(layers\.\d+)`?")  # "layers.0", "`layers.0`", "Linear `layers.0`"


def _readable(message: str, config: dict) -> str:
    from .case_bugs import READABLE_NAMES
    message = re.sub(r" \((?:seed|member) \d+\)", "", message)  # the seeds column says which seeds
    for registered, readable in READABLE_NAMES.items():
        message = message.replace(registered, readable)
    def label(m):
        named = layer_label(config, m.group(1))
        return m.group(0) if named == m.group(1) else named  # a model of its own (004): its names, as written
    # a table cell shows text, not Markdown: a module's name in typographic quotes, not between backticks
    return re.sub(r"`([^`]+)`", r"“\1”", _LAYER_KEY.sub(label, message))


def _where(run, key: str) -> str:
    """A layer of the finding: the project's name for a BaseNetwork layer ("Linear 3 (64→10), output"),
    else its type and the name the case's own model gives it ("Sigmoid “act”"), as the message says it."""
    named = layer_label(run.config, key)
    if named != key:
        return named
    kind = _layer_types(run).get(key)
    return f"{kind} “{key}”" if kind else f"“{key}”"


def _layer_types(run) -> dict:
    """{layer name: module type} from the run's recording summary (a small JSON file; no tables read)."""
    import json

    from .recording import SUMMARY_FILE
    try:
        summary = json.loads((run.path / "recordings" / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {e["name"]: e.get("type") for e in summary.get("layers") or [] if e.get("name") and e.get("type")}


def findings_table(run, codes: tuple | None = None) -> pd.DataFrame:
    """The run's findings, one row per cause (grouped across seeds and layers), the layers named,
    seeds counted, and the likeliest cause with its evidence.

    codes -- keep only these (None: all). Columns: severity, finding, where, seeds, what it says, likely cause.
    """
    from .diagnose.alternatives import likely_causes
    from .diagnose.grouping import as_grouped, core_message
    seeds = run.seeds
    out = []
    for f in as_grouped(run.findings, seeds):
        if codes is not None and f.code not in codes:
            continue
        where = "; ".join(dict.fromkeys(_where(run, k) for k in f.layers)) or "whole run"
        n = f.of_seeds or len(seeds) or 1
        out.append({"severity": f.severity, "finding": f.code, "where": where,
                    "seeds": f"{min(f.seen_in, n)} of {n}", "what it says": _readable(core_message(f), run.config),
                    "likely cause": _readable(likely_causes(f, 1).removeprefix("1. "), run.config)})
    return pd.DataFrame(out, columns=["severity", "finding", "where", "seeds", "what it says", "likely cause"])


def _notes_only(run) -> str:
    """A broken run no rule warns about: what the diagnosis still noted (info), if anything."""
    notes = [f for f in run.findings if f["severity"] == "info"]
    if any((f.get("evidence") or {}).get("cause") == "fits_targets" for f in notes):
        return "no warning (the bug is in the metric); a note on what binary accuracy measures"
    if notes:
        return "no warning; info: " + ", ".join(sorted({f["code"] for f in notes}))
    return "nothing (the bug is in the metric)"


def summary_table(cases: dict) -> pd.DataFrame:
    """One row per case: the broken and the fixed runs' headline numbers, and the finding that named it."""
    from .case_studies import case
    rows = []
    for cid, runs in cases.items():
        c = case(cid)
        broken = [v for v in c.variants if v.role == "broken"][0]
        fixed = [v for v in c.variants if v.role == "fixed"]
        metric = "test_binary_acc" if cid == "004" else "test_acc"
        named = [code for code in c.finding_codes if code in {f["code"] for f in runs[broken.key].findings}]
        rows.append({"case": cid, "bug": c.title,
                     "broken run": f"{pct(test_mean(runs[broken.key], metric))}",
                     "fixed run(s)": ", ".join(pct(test_mean(runs[v.key], metric)) for v in fixed),
                     "measured as": "binary accuracy (test)" if cid == "004" else "test accuracy",
                     "what the diagnosis said": ", ".join(named) or _notes_only(runs[broken.key])})
    return pd.DataFrame(rows)


def case_intro(case_id: str) -> str:
    """The case's source (credited by site and title, quoted in English with the original beside it),
    symptom and broken setup, as Markdown."""
    from .case_studies import case
    c = case(case_id)
    s = c.source
    quotes = "\n>\n".join(f"> “{english}”  \n> <small>{s.language} original: {original}</small>"
                           for original, english in s.quotes)
    return (f"**Source.** A {s.kind} on {s.site}: *{s.title}* (written in {s.language}; quotes translated "
            f"to English).\n\n{quotes}\n\n**Symptom.** {c.symptom}\n\n**What is going on.** {c.setup}")


def case_fix(case_id: str) -> str:
    from .case_studies import case
    fixes = case(case_id).fixes
    if len(fixes) == 1:
        return f"**Fix.** {fixes[0]}"
    return "**Fixes.**\n\n" + "\n".join(f"{i}. {f}" for i, f in enumerate(fixes, 1))


def case_callout(preset: str) -> str:
    """The page-top box of the case studies: how long each case's runs trained, on how many seeds.

    Case runs have their own lengths (CASE_PRESETS), not the activation recipe's, so the comparison
    pages' callout would misstate them; and a case compares a broken run with its fix, never activations.
    """
    from .case_studies import CASE_PRESETS
    from .narrate import callout_html, is_preview, seeds_phrase

    p = CASE_PRESETS[preset]
    data = "a synthetic stand-in data set" if p["dataset"] == "synthetic" else "FashionMNIST"
    seeds = (f"on {seeds_phrase(p['seeds'])}" + ("" if tuple(p["dropout_seeds"]) == tuple(p["seeds"]) else
             f"; case 001, whose runs share one batched trainer, on {seeds_phrase(p['dropout_seeds'])}"))
    images = "all 50,000" if p["train"] >= 50_000 else f"the first {p['train']:,}"
    body = f"Each case's runs trained for {p['epochs']} epochs on {images} training images of {data}, {seeds}."
    if not is_preview(preset):
        return callout_html(f"Results: the “{preset}” preset", body, preview=False)
    full = CASE_PRESETS["tutorial"]
    body += (f" The gap between a broken run and its fix is already plain at this length; "
             f"<code>make report PRESET=tutorial</code> trains {full['epochs']} epochs on all {full['train']:,} "
             f"images, on {seeds_phrase(full['seeds'])}.")
    if len(p["seeds"]) == 1:
        body += " With one seed a case shows one run per set-up, not a spread."
    return callout_html(f"Preview: the “{preset}” preset", body, preview=True)
