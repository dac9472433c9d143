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

from .narrate import CHANCE_ACC, join_names
from .style import layer_label

CHANCE = 0.10  # ten classes
NEAR_CHANCE = 0.05  # within 5 points of chance, a run "stays at chance"



def points_gap(higher: float, lower: float) -> str:
    """The gap in percentage points between two accuracies as printed (one decimal each), so a reader who
    subtracts the page's two numbers gets the page's gap."""
    return f"{round(100 * higher, 1) - round(100 * lower, 1):.1f}"

def pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f} %"


def test_mean(run, column: str = "test_acc") -> float:
    """The run's test metric, mean over its seeds."""
    return float(pd.to_numeric(run.results[column], errors="coerce").mean())


def nan_seeds(run, column: str = "train_loss") -> list[int]:
    """The seeds whose ``column`` went NaN or inf in a trained epoch (epoch 0, before training, has no
    training loss): seeds whose weights broke."""
    m = run.metrics
    if column not in m or "seed" not in m:
        return []
    trained = m[m["epoch"] > 0] if "epoch" in m else m
    return sorted(int(s) for s, d in trained.groupby("seed") if not np.isfinite(d[column].to_numpy(float)).all())


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
    text = (f"Three runs ({_setup(k)}, Adam, learning rate 1e-3, {_seeds_note(k)}): the same tanh-output network "
            "trained with Keras' loss and with PyTorch's cross-entropy, and the fix, which also drops the output tanh "
            f"(plain logits into PyTorch's cross-entropy). With Keras' loss the test accuracy is **{pct(acc_k)}**, "
            f"{_against_chance(acc_k, acc_f)}. With PyTorch's cross-entropy on the very same tanh outputs it is "
            f"**{pct(acc_p)}**, and with plain logits **{pct(acc_f)}**. ")
    gap = acc_f - acc_p
    text += (f"Bounded logits cost the PyTorch model {100 * gap:.1f} points here, " if gap > 0.01 else
             "Bounded logits cost the PyTorch model almost nothing here, ")
    text += "so tanh at the output is not what breaks the Keras model: reading tanh outputs as probabilities is."
    if values is not None and sums is not None:
        text += (f" After training, {pct(float((values < 0).mean()))} of the Keras model's output values are "
                 f"negative and {pct(float((sums <= 0).mean()))} of its output rows sum to zero or less: "
                 "\"probabilities\" that cannot be.")
    return text


def _against_chance(acc: float, fixed: float) -> str:
    """The Keras run's accuracy against chance and the fix: the question saw ~10 %, a shorter
    reproduction may learn a little, and the sentence must say which one the run did."""
    if acc - CHANCE < NEAR_CHANCE:
        return f"at chance ({pct(CHANCE)}), as in the question"
    where = f"above chance ({pct(CHANCE)}) and above the question's ~10 %"
    if acc < fixed - 0.10:
        return f"{where}, yet {100 * (fixed - acc):.0f} points below the fix"
    return f"{where}, close to the fix: this run does not show the question's failure"


QUESTION_GAP = 0.02  # the question: TensorFlow ~98 %, Keras ~96 % on MNIST, after 30 epochs on 55,000 images


def shows_001(runs: dict) -> str:
    b, f = runs["drop70"], runs["drop30"]
    acc_b, acc_f = test_mean(b), test_mean(f)
    tr_b, tr_f = epoch_mean(b, "train_acc"), epoch_mean(f, "train_acc")
    spread = lambda r: "" if len(r.seeds) < 2 else (  # noqa: E731
        f" (seeds from {pct(r.results['test_acc'].min())} to {pct(r.results['test_acc'].max())})")
    return (f"Same MLP, same data, {_setup(b)}, {_seeds_note(b)}. Dropping 70 % of the units: test accuracy "
            f"**{pct(acc_b)}**{spread(b)}; dropping 30 %: **{pct(acc_f)}**{spread(f)}, "
            f"{points_gap(acc_f, acc_b)} points apart. During training (dropout on) the p = 0.7 network "
            f"classifies {pct(tr_b)} of its training images correctly against {pct(tr_f)}: each training image "
            f"passes through only 30 % of its units (a new random 30 % for every image). {_gap_001(b, acc_f - acc_b)}")


def _gap_001(broken, gap: float) -> str:
    """Why the bug survives, said at the size the run measured: a gap like the question's ~2 points
    is "a little worse"; a much larger one comes from this run's shorter training, and says so."""
    if gap <= 2.5 * QUESTION_GAP:
        return ("Neither number is wrong, which is why the bug survives: nothing crashes, the model is just a "
                "little worse, as in the question.")
    m = broken.metrics.groupby("epoch")["val_acc"].mean()
    climbing = (f" (its validation accuracy still rose {100 * (m.iloc[-1] - m.iloc[-2]):.1f} points in the last "
                "epoch)" if len(m) > 1 and m.iloc[-1] - m.iloc[-2] > 0.01 else "")
    return ("That is far more than the question's ~2 points. The question trained for 30 epochs on all 55,000 "
            "MNIST images, where both networks end near the top (about 98 % and 96 %, the question's numbers); this "
            f"reproduction trains for only {_setup(broken)}, so its gap is not the question's{climbing}. Either way "
            "nothing crashes, which is why the bug survives.")


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


_WHERE = {"grad": "weight gradient", "activation": "output", "activation_grad_in": "input gradient"}


def _finding(run, code: str) -> dict | None:
    return next((f for f in run.findings if f["code"] == code), None)


def _layers(run, keys) -> str:
    """Layer names joined, "Linear 3, 4 and 5 (128→128)" when they share one shape."""
    names = [layer_label(run.config, k) for k in keys]
    parts = [re.fullmatch(r"Linear (\d+) \((.+)\)", n) for n in names]
    if parts and all(parts) and len({m.group(2) for m in parts}) == 1:
        return f"Linear {join_names([m.group(1) for m in parts])} ({parts[0].group(2)})"
    return join_names(names)


def shows_002(runs: dict) -> str:
    raw, scaled, clamped = runs["raw"], runs["scaled"], runs["clamped"]
    nf = first_nonfinite(raw)
    text = ""
    if nf is not None:
        text += (f"The broken run's first non-finite value appears at step {nf['step']}, in the "
                 f"{_WHERE.get(nf['where'], nf['where'])} of {layer_label(raw.config, nf['layer'])}; from then on "
                 "every weight is NaN. ")
        made = ((_finding(raw, "NONFINITE") or {}).get("evidence") or {}).get("created_by") or []
        if made and nf["where"] != "activation":  # seen in a gradient: made further down the backward pass
            text += (f"That layer is only where the NaN is first *seen*, reading the layers in forward order: it "
                     f"is *created* in the backward pass of the hand-written ELU after {_layers(raw, made)}, "
                     f"where exp overflowed in the unused branch and 0 · inf = NaN, and flows back from there "
                     f"to {layer_label(raw.config, nf['layer'])}. ")
    text += (f"Its test accuracy is **{pct(test_mean(raw))}** (chance {pct(CHANCE)}). With the same {_setup(raw)}, "
             f"fix 1 (inputs divided by 255) goes from {pct(epoch_mean(scaled, 'val_acc', 0))} before training to "
             f"**{pct(test_mean(scaled))}**, and fix 2 (exp of clamp(x, max=0), on the same raw 0–255 pixels as "
             f"the broken run) from {pct(epoch_mean(clamped, 'val_acc', 0))} to **{pct(test_mean(clamped))}**. ")
    return (text + _fix2_002(clamped, test_mean(scaled)) + "Normalising the inputs is the fix that holds.").strip()


def _fix2_002(clamped, acc_scaled: float) -> str:
    """What the clamped ELU on raw pixels did: exp can no longer overflow, but the layers' own outputs can."""
    codes = {f["code"] for f in clamped.findings}
    if "NONFINITE" in codes:
        acc = pd.to_numeric(clamped.results["test_acc"], errors="coerce")
        stuck, n = int((acc < CHANCE_ACC).sum()), len(acc)
        who = "this run ends in NaN too" if n == 1 or stuck == n else (
            f"{stuck} of {n} seeds end in NaN too (the " + ("other reaches " if n - stuck == 1 else "others reach ")
            + f"{join_names([pct(v) for v in acc[acc >= CHANCE_ACC]])}, so the mean of {pct(acc.mean())} describes "
            "none of them)")
        nf = first_nonfinite(clamped)
        at = "" if nf is None else (f" The first non-finite value is in the {_WHERE.get(nf['where'], nf['where'])} "
                                    f"of {layer_label(clamped.config, nf['layer'])}, at step {nf['step']}"
                                    + (": a layer's own output overflowed, not exp." if nf["where"] == "activation"
                                       else "."))
        return ("Fix 2 still ends in NaN here: the clamp stops exp overflowing, so the unused branch's 0 · inf is "
                f"gone, but with 0–255 inputs the weight updates are so large that {who}.{at} ")
    if "UNNORMALIZED_INPUT" not in codes:
        return ""
    text = ("The clamp removes the NaN: exp can no longer overflow, so no 0 · inf. The inputs are still 0–255, and the "
            "diagnosis still (rightly) says so")
    boom = _finding(clamped, "EXPLODING_GRADIENT")
    if boom is not None:
        layer = layer_where(clamped, (boom.get("layers") or [boom["layer"]])[0])
        ev = boom.get("evidence") or {}
        lr = float((clamped.config.get("run") or {}).get("lr") or 0.01)  # the question's SGD(lr=0.01)
        size = ("" if ev.get("grad_data_ratio") is None else f": at step {boom.get('step') or 0} its weight "
                f"gradient is {ev['grad_data_ratio']:.0f} times the spread (std) of its weights, so one SGD step "
                f"at this case's learning rate of {lr:g} changes them by {100 * ev['grad_data_ratio'] * lr:.0f} % of that "
                f"spread, {ev['grad_data_ratio'] * lr / 1e-3:.0f}× the healthy 1e-3")
        seeds = "This seed learns" if len(clamped.seeds) == 1 else "These seeds learn"
        text += (f", with exploding gradients at {layer}{size}. {seeds} all the same; with another seed, steps "
                 "that large can still blow the weights up until a layer's output overflows, NaN in the forward "
                 "pass this time")
    worse = acc_scaled - test_mean(clamped)
    gap = points_gap(acc_scaled, test_mean(clamped))  # as the answers give it: the page's two numbers subtracted
    return text + (f". Fix 2 ends {gap} points below fix 1. " if worse > 0.01 else ". ")


def numbers_004(runs: dict) -> dict:
    """Case 004 on the validation images: the copy-net before (epoch 0) and after training, the autoencoder."""
    c, a = runs["copy"], runs["autoencoder"]
    return {"acc_c0": epoch_mean(c, "val_binary_acc", 0), "acc_c": epoch_mean(c, "val_binary_acc"),
            "acc_a": epoch_mean(a, "val_binary_acc"), "mse_c0": epoch_mean(c, "val_loss", 0),
            "mse_c": epoch_mean(c, "val_loss"), "mse_a": epoch_mean(a, "val_loss")}


def shows_004(runs: dict) -> str:
    acc_c0, acc_c, acc_a, mse_c0, mse_c, mse_a = numbers_004(runs).values()
    text = (f"On the validation images, as in the curves: before any training the copy-net's binary accuracy is "
            f"**{pct(acc_c0)}** while its mean squared error is {mse_c0:.3f} (pixels on a 0–1 scale, so 0.25 "
            "means a typical pixel off by 0.5). After "
            f"{_setup(runs['copy'])} with MSE and Adam its error is {mse_c:.3f} and its binary accuracy "
            f"**{pct(acc_c)}**. ")
    if mse_c < mse_c0 and acc_c < acc_c0 - 0.0005:  # the blog's puzzle: the loss falls, the accuracy falls too
        text += (f"Training cut the error by {100 * (1 - mse_c / mse_c0):.0f} % — the model got better — yet its "
                 f"binary accuracy *fell* by {100 * (acc_c0 - acc_c):.1f} points, as in the blog, where the "
                 "identity model started at accuracy 1.0 and lost accuracy as its loss fell. The metric, not the "
                 "model, is what is broken: ")
    lesson = ("binary accuracy only asks which side of 0.5 each pixel lands on; the error asks how far it is from "
              "its target. ")
    text += lesson if text.endswith(": ") else lesson[0].upper() + lesson[1:]
    better = [name for name, won in (("binary accuracy", acc_c > acc_a + 0.0005), ("error", mse_c < mse_a)) if won]
    text += f"The autoencoder ends at **{pct(acc_a)}** and an error of {mse_a:.3f}"
    if len(better) == 2:
        return text + (": the trained copy-net beats it on both counts (it starts as a copy and keeps a full "
                       "784→784 layer; the autoencoder squeezes each image through 128 numbers).")
    return text + (f": the trained copy-net is ahead on {better[0]} only." if better else
                   ": ahead of the trained copy-net on both counts.")


SHOWS = {"000": shows_000, "001": shows_001, "002": shows_002, "004": shows_004}


def what_this_shows(case_id: str, runs: dict) -> str:
    return f"**What these runs show.** {SHOWS[str(case_id)](runs)}"


# --------------------------------------------------------------------------- layers named


def layer_where(run, key: str) -> str:
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
