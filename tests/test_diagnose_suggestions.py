"""The printed suggestion follows the run's evidence (gradflow.diagnose.fixes): it leads with the fix of
the top-ranked cause, not the code's generic advice; and what the messages say agrees with the severity.
Each case is a bug from the practitioner review, planted in a small real loop."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow.diagnose import Finding, diagnose, format_findings
from gradflow.diagnose.alternatives import CAUSES, KIND_CAUSES
from gradflow.diagnose.fixes import FIXES, OWN, evidence_led
from gradflow.record import Recorder


def _loop(model, fmnist, steps, opt, zero_grad=True, clip=None, sched=None, labels=None, dead_pass=False,
          **rec_kwargs):
    """The README's loop over the fixture's images (batches of 128, in order), under a Recorder."""
    y = fmnist.y if labels is None else labels
    with Recorder(model, **rec_kwargs) as rec:
        for step in range(steps):
            i = (step * 128) % (len(y) - 128 + 1)
            if zero_grad:
                opt.zero_grad()
            loss = F.cross_entropy(model(fmnist.x[i:i + 128]), y[i:i + 128])
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            if sched is not None:
                sched.step()
            rec.step(loss=loss, targets=y[i:i + 128])
        if dead_pass:
            rec.dead_units(fmnist.x[:512])
    return rec


def _mlp(act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 128), act(), nn.Linear(128, 64), act(), nn.Linear(64, 10))


def _one(findings, code, cause=None):
    found = [f for f in findings if f.code == code and (cause is None or f.evidence.get("cause") == cause)]
    assert len(found) == 1, format_findings(findings)
    return found[0]


# ----------------------------------------------------------------- the table of fixes

def test_every_candidate_cause_has_a_fix_or_keeps_its_rules_suggestion():
    causes = {c for lists in (*CAUSES.values(), *KIND_CAUSES.values()) for c, _ in lists}
    assert causes <= set(FIXES), sorted(causes - set(FIXES))
    assert all(fix is OWN or (fix.endswith(".") and len(fix) < 400) for fix in FIXES.values())


def _alt(cause, verdict, score):
    return {"cause": cause, "verdict": verdict, "score": score, "evidence": "..."}


def test_the_suggestion_leads_with_the_fix_of_a_supported_or_clearly_leading_cause():
    generic = "Look at the gradient findings; try a higher learning rate."
    high = _alt("too high a learning rate", "supported", 0.9)
    assert evidence_led(generic, [high, _alt("dead units", "supported", 0.75)]) == FIXES["too high a learning rate"]
    # possible, every other cause unlikely: its fix first, the rule's advice as the fallback
    labels = _alt("the labels do not match the inputs (a shuffled or misaligned label array)", "possible", 0.5)
    led = evidence_led(generic, [labels, _alt("vanishing gradients", "unlikely", 0.2)])
    assert led.startswith("Check that inputs and labels") and led.endswith("If that is not it: " + generic)
    # two possible causes: none stands out, the rule's advice stays
    assert evidence_led(generic, [labels, _alt("too low a learning rate", "possible", 0.5)]) == generic
    # a cause the rule found itself (OWN) keeps the rule's own, more specific words
    keep = "Use nn.Dropout(p=0.3) if 0.7 was a keep-probability."
    assert evidence_led(keep, [_alt("a keep-probability passed as p (TensorFlow 1 habit)", "supported", 0.9)]) == keep
    assert evidence_led(generic, []) == generic


# ----------------------------------------------------------------- 1. the suggestion follows the top cause

def test_a_learning_rate_far_too_high_is_told_to_go_down_not_up(fmnist):
    """Adam lr=0.3 (review b18a: 0.1 on more data): the net does not learn, and the old advice ended 'or a
    higher learning rate'."""
    net = _mlp()
    rec = _loop(net, fmnist, 120, torch.optim.Adam(net.parameters(), lr=0.3), dead_pass=True)
    findings = diagnose(rec)
    nl = _one(findings, "NOT_LEARNING")
    assert nl.alternatives[0]["cause"] == "too high a learning rate", format_findings(findings)
    assert nl.suggestion.startswith("Lower the learning rate") and "higher learning rate" not in nl.suggestion
    # the ReLU units it switched off: knocked out by the rate, not "use relu"
    sat = _one(findings, "SATURATION")
    assert sat.evidence["cause"] == "one_sided" and "non-saturating activation" not in sat.suggestion
    assert sat.alternatives[0]["cause"] == "too high a learning rate knocked the units out"
    assert not any("bounded activation" in a["cause"] for a in sat.alternatives)
    assert sat.suggestion.startswith("Lower the learning rate")


def test_a_learning_rate_far_too_low_is_told_to_go_up(fmnist):
    net = _mlp()
    rec = _loop(net, fmnist, 120, torch.optim.Adam(net.parameters(), lr=1e-7))
    findings = diagnose(rec)
    nl = _one(findings, "NOT_LEARNING")
    assert nl.alternatives[0]["cause"] == "too low a learning rate"
    assert nl.suggestion.startswith("Raise the learning rate (Adam usually wants")
    labels = next(a for a in nl.alternatives if a["cause"].startswith("the labels do not match"))
    assert labels["verdict"] == "unlikely"  # UPDATE_RATIO explains it


def test_gradients_clipped_to_a_tiny_norm_are_named_in_the_suggestion(fmnist):
    """clip_grad_norm_(max_norm=1e-6) under SGD (review b13): the old advice said 'Raise the learning rate'."""
    net = _mlp()
    rec = _loop(net, fmnist, 60, torch.optim.SGD(net.parameters(), lr=0.05), clip=1e-6)
    findings = diagnose(rec)
    for code in ("UPDATE_RATIO", "NOT_LEARNING"):
        f = _one(findings, code)
        assert f.alternatives[0]["cause"].startswith("gradients clipped to a tiny norm"), format_findings(findings)
        assert f.suggestion.startswith("Raise clip_grad_norm_'s max_norm") and "Raise the learning rate" not in f.suggestion


def test_pixels_divided_by_255_twice_are_named_for_the_vanishing_gradient(fmnist):
    """Review b07d: the old VANISHING_GRADIENT advice was kaiming initialisation and residual connections."""
    net = _mlp()
    tiny = type(fmnist)(x=(fmnist.x - fmnist.x.min()) / (fmnist.x.max() - fmnist.x.min()) / 255, y=fmnist.y)
    rec = _loop(net, tiny, 40, torch.optim.SGD(net.parameters(), lr=0.05))
    findings = diagnose(rec)
    v = _one(findings, "VANISHING_GRADIENT")
    assert v.alternatives[0]["cause"].startswith("inputs scaled down to almost nothing")
    assert "drop the extra / 255" in v.suggestion and "residual" not in v.suggestion


# ----------------------------------------------------------------- 4. a missing zero_grad comes first

@pytest.mark.parametrize("lr,code", [(0.03, "DIVERGING"), (0.01, "NOT_LEARNING")])
def test_a_missing_zero_grad_is_the_first_cause_of_the_failure(fmnist, lr, code):
    """Review b01: a healthy SGD rate without zero_grad() diverges (or, slower, stalls at chance); the old
    ranking put the rate first and told the user to lower it."""
    net = _mlp()
    rec = _loop(net, fmnist, 150, torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9), zero_grad=False)
    findings = diagnose(rec)
    assert _one(findings, "ACCUMULATING_GRADIENT").severity == "error"
    d = _one(findings, code)
    assert d.alternatives[0]["cause"] == "gradients accumulate (no zero_grad)", format_findings(findings)
    high = next(a for a in d.alternatives if a["cause"] == "too high a learning rate")
    assert high["score"] < d.alternatives[0]["score"] and "never cleared" in high["evidence"]
    assert d.suggestion.startswith("Call optimizer.zero_grad()") and "Lower the learning rate" not in d.suggestion


# ----------------------------------------------------------------- 3. ReLU units off from the start

def test_relu_units_switched_off_by_a_far_negative_bias(fmnist):
    """Review b16: every unit of a ReLU layer off from step 0 (bias -5). SATURATION used to advise 'a
    non-saturating activation (relu, ...)' and blame 'no normalisation before the bounded activation'."""
    net = _mlp()
    with torch.no_grad():
        net[0].bias.fill_(-5.0)
    rec = _loop(net, fmnist, 60, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), dead_pass=True)
    findings = diagnose(rec)
    sat = _one(findings, "SATURATION")
    assert sat.layer == "1" and "switched off" in sat.message and sat.evidence["cause"] == "one_sided"
    top = sat.alternatives[0]
    assert top["cause"].startswith("units switched off from the start") and top["verdict"] == "supported"
    assert "at step 0" in top["evidence"]
    assert "bias" in sat.suggestion and "(relu, leakyrelu" not in sat.suggestion
    dead = _one(findings, "DEAD_UNITS")
    assert dead.alternatives[0]["cause"].startswith("units switched off from the start")
    lr = next(a for a in dead.alternatives if a["cause"] == "too high a learning rate knocked units out")
    assert lr["verdict"] == "unlikely" and "already off at step 0" in lr["evidence"]


# ----------------------------------------------------------------- 5. labels that do not belong to the inputs

def test_labels_shuffled_apart_from_the_inputs_are_a_possible_cause(fmnist):
    """Review b14: healthy gradients and updates, the loss at ln(10): every cause was unlikely before."""
    net = _mlp()
    shuffled = fmnist.y[torch.randperm(len(fmnist.y), generator=torch.Generator().manual_seed(1))]
    rec = _loop(net, fmnist, 40, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), labels=shuffled)
    findings = diagnose(rec)
    nl = _one(findings, "NOT_LEARNING")
    top = nl.alternatives[0]
    assert top["cause"].startswith("the labels do not match the inputs") and top["verdict"] == "possible"
    assert all(a["verdict"] == "unlikely" for a in nl.alternatives[1:])
    assert nl.suggestion.startswith("Check that inputs and labels still belong together")
    assert "If that is not it: " in nl.suggestion  # only possible: the generic advice follows


# ----------------------------------------------------------------- 2. severity and text agree, one cause one finding

def test_a_warning_never_calls_itself_a_note(fmnist):
    """Review b10b: tanh with every weight 0.01 learns a little; SATURATION was a warning that said
    'so this is a note'."""
    net = _mlp(nn.Tanh)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.fill_(0.01)
    rec = _loop(net, fmnist, 200, torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9))
    findings = diagnose(rec)
    noted = [f for f in findings if "this is a note" in f.message]
    assert all(f.severity == "info" for f in noted), format_findings(findings)
    sat = _one(findings, "SATURATION")
    assert sat.severity == "warning" and "learns all the same, but" in sat.message, format_findings(findings)


def test_a_schedule_stepped_per_batch_is_one_update_ratio_finding(fmnist):
    """Review b15c with every=10: a second UPDATE_RATIO said 'barely moves ... Raise the learning rate'
    beside the one that names the scheduler."""
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    rec = _loop(net, fmnist, 250, opt, sched=sched, every=10)
    findings = diagnose(rec)
    ratio = _one(findings, "UPDATE_RATIO")
    assert ratio.evidence["cause"] == "stalled" and "once per epoch" in ratio.suggestion
    assert not any("Raise the learning rate" in f.suggestion for f in findings)


def test_evidence_led_suggestions_survive_the_json_round_trip(fmnist):
    net = _mlp()
    findings = diagnose(_loop(net, fmnist, 60, torch.optim.Adam(net.parameters(), lr=0.3)))
    assert findings
    for f in findings:
        assert Finding.from_dict(json.loads(json.dumps(f.to_dict()))) == f
