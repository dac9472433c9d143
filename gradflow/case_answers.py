"""The case-study page's answer key: its "Predict, then look" prompt answered per case from the runs.

The page asks once, at the top, for every figure: which run's headline number misleads, and which
number would have warned you. Each case's figure is followed by :func:`case_answers` for it, two
Markdown answers in that order, folded away by :func:`gradflow.narrate_pages.answers`. Every number
is read from the stored runs, so another preset or seed changes the answer with the figure.
"""
from __future__ import annotations

import math

import pandas as pd

from .case_elu import first_linear, span, step0_ratios
from .case_narrate import (
    CHANCE,
    NEAR_CHANCE,
    _finding,
    epoch_mean,
    layer_where,
    nan_seeds,
    numbers_004,
    pct,
    points_gap,
    samples,
    test_mean,
)
from .diagnose.gradients import EXPLODING_GRAD_DATA
from .narrate import join_names
from .quantities import INPUT_LAYER, ROOT_LAYER
from .style import layer_label

PROMPT = ("Before each figure, guess which run's headline number misleads (a run at chance, one a few points "
          "worse, a NaN loss, a perfect score), and which number would have warned you.")


SMALL_GAP = 0.05  # up to 5 points behind its fix, a run looks "slightly" weaker


def _codes(run) -> set:
    return {f["code"] for f in run.findings}


def _flagged(run, codes) -> str:
    """" The diagnosis reports A and B (at Linear 9 (128→128))." for those of ``codes`` the run's findings hold, in
    that order, each with the layer it names: a reader should not take a finding for the layer the answer discussed."""
    found = [_finding(run, c) for c in codes if c in _codes(run)]
    said = [f["code"] + ("" if f.get("layer") in (None, "", INPUT_LAYER, ROOT_LAYER) else f" (at {layer_where(run, f['layer'])})")
            for f in found]
    return f" The diagnosis reports {join_names(said)}." if said else ""


def answers_000(runs: dict) -> list[str]:
    k, p = runs["keras"], runs["pytorch"]
    acc_k, acc_p = test_mean(k), test_mean(p)
    verdict = ("chance, as if the network could not learn at all" if acc_k - CHANCE < NEAR_CHANCE else
               "a network that learns poorly")
    first = (f"**The Keras-loss run's {pct(acc_k)}.** It reads as {verdict}, yet the very same network, from the same "
             f"initial weights, reaches {pct(acc_p)} with PyTorch's loss: the architecture is fine; the loss trains it "
             "wrongly.")
    out = samples(k)
    seed = k.seeds[0]
    values, sums = out.get(f"output_values_seed{seed}"), out.get(f"row_sums_seed{seed}")
    if values is None or sums is None:
        second = "**Its outputs.** Tanh outputs can be negative, and Keras' loss takes them for probabilities."
    else:
        second = (f"**Its outputs** (middle and right panels, seed {seed}): {pct(float((values < 0).mean()))} of them "
                  f"are negative and {pct(float((sums <= 0).mean()))} of the rows sum to zero or less. They cannot be "
                  "the probabilities Keras' loss takes them for.")
    return [first, second + _flagged(k, ("BOUNDED_OUTPUT",))]


def answers_001(runs: dict) -> list[str]:
    from .case_studies import case
    b, f = runs["drop70"], runs["drop30"]
    acc_b, acc_f, tr_b = test_mean(b), test_mean(f), epoch_mean(b, "train_acc")
    p = next(v.settings["dropout"] for v in case("001").variants if v.key == "drop70")
    gap = acc_f - acc_b
    first = (f"**The p = {p:g} run's {pct(acc_b)}.** A plausible number, {points_gap(acc_f, acc_b)} points below the fix, and "
             f"nothing crashes: it looks like a {'slightly ' if gap <= SMALL_GAP else ''}weaker model, not a bug.")
    tr_f = epoch_mean(f, "train_acc")
    if tr_b < acc_b:
        # any dropout trains below its test score (units are off while it trains): the size of the gap is the sign
        second = (f"**Its training accuracy, {pct(tr_b)}** in the last epoch, with dropout on (right panel), is "
                  f"{points_gap(acc_b, tr_b)} points below its test accuracy, {pct(acc_b)}, with dropout off; "
                  + (f"the fix's is {points_gap(acc_f, tr_f)} points below its own. Every dropout trains a little "
                     "below its test score, since units are off while it trains; a gap this much wider means most of "
                     "the network is held back on every training image. " if tr_f < acc_f else
                     f"the fix trains at {pct(tr_f)}, not below its test score ({pct(acc_f)}): the p = {p:g} network "
                     "is held back on every training image. "))
    else:
        second = (f"**Its training accuracy, {pct(tr_b)}** in the last epoch, with dropout on (right panel), against "
                  f"the fix's {pct(epoch_mean(f, 'train_acc'))}: each training image sees only part of the network. ")
    second += f"And the setting itself: p = {p:g} drops more than half of the units."
    return [first, second + _flagged(b, ("HIGH_DROPOUT",))]


def _first_layer(run) -> str:
    key = first_linear(run)
    return "the first layer" if key is None else layer_label(run.config, key)


def _step0_ratios(run) -> list[float]:
    return step0_ratios(run, first_linear(run))


def answers_002(runs: dict) -> list[str]:
    scaled, clamped = runs["scaled"], runs["clamped"]
    acc = pd.to_numeric(clamped.results["test_acc"], errors="coerce")
    mean = float(acc.mean())
    broken = nan_seeds(clamped)
    if broken and len(broken) < len(acc):
        learned = [pct(v) for s, v in zip(clamped.results["seed"], acc) if int(s) not in broken]
        first = (f"**Fix 2's mean, {pct(mean)}.** {len(broken)} of {len(acc)} seeds end in NaN, at chance, and the "
                 f"other{'s reach' if len(learned) > 1 else ' reaches'} {join_names(learned)}: the mean describes none of "
                 "them. (The broken run's NaN loss does not mislead: it is an alarm.)")
    elif broken:
        first = (f"**Fix 2's {pct(mean)}.** The clamp removed the NaN of exp, yet this run ends in NaN too: a fix "
                 "that looks applied, on inputs that still break training.")
    else:
        first = (f"**Fix 2's {pct(mean)}** suggests the clamp fixed everything; it fixed the NaN of exp, not the raw "
                 f"pixels, and it ends {points_gap(test_mean(scaled), mean)} points below fix 1 (pixels / 255). "
                 "(The broken run's NaN loss does not mislead: it is an alarm.)")
    second = "**The input range, 0 to 255** (the evidence table below; fix 1 sees 0 to 1)"
    ratios = _step0_ratios(clamped)
    if ratios:
        every = "" if len(ratios) == 1 else (", in every seed" + (", the one that learned included" if broken
                                                                   and len(broken) < len(acc) else ""))
        second += (f", and the weight gradient of {_first_layer(clamped)} at step 0: {span(ratios)} times the spread of its "
                   f"weights{every}"
                   + (f" (below the {EXPLODING_GRAD_DATA:g}× at which the diagnosis calls a gradient exploding"
                      + ("; in the seeds that ended in NaN the steps that followed grew past it)" if broken else ")")
                      if max(ratios) < EXPLODING_GRAD_DATA else "")
                   + f", against {span(_step0_ratios(scaled))} with pixels / 255")
    return [first, second + "." + _flagged(clamped, ("UNNORMALIZED_INPUT", "EXPLODING_GRADIENT"))]


def answers_004(runs: dict) -> list[str]:
    n = numbers_004(runs)
    first = (f"**The untrained copy-net's binary accuracy, {pct(n['acc_c0'])}.** A perfect-looking score for outputs "
             "of 0.5 and 0.73 where the targets are 0 and 1.")
    second = (f"**Its mean squared error, {n['mse_c0']:.3f}**: a typical pixel is off by about "
              f"{math.sqrt(n['mse_c0']):.2f} on the 0-to-1 scale (the square root of that error), where a faithful "
              "copy is off by 0. The pictures say the same once drawn on a fixed 0–1 scale (third row): grey, not "
              "black and white.")
    return [first, second]


ANSWERS = {"000": answers_000, "001": answers_001, "002": answers_002, "004": answers_004}


def case_answers(case_id: str, runs: dict) -> list[str]:
    """The two answers for one case: which headline number misleads, which number would have warned you."""
    return ANSWERS[str(case_id)](runs)
