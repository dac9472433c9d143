"""Findings people can act on: one finding per cause (grouped across seeds and layers), ranked
alternative causes with the run's evidence, an exact JSON round trip, every consumer of findings
reading the grouped shape, and the README's table of codes in step with codes.CODES and the rules."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow import data, plots, store, train
from gradflow.cli import main
from gradflow.config import make_config
from gradflow.diagnose import Evidence, Finding, diagnose, format_findings
from gradflow.diagnose.alternatives import CAUSES, likely_causes, rank_causes
from gradflow.diagnose.codes import CODES
from gradflow.diagnose.grouping import as_grouped, core_message, group
from gradflow.narrate_findings import grouped_findings
from gradflow.record import Recorder
from gradflow.sweep_results import _finding_codes

ROOT = Path(__file__).resolve().parents[1]


def _evidence(seeds=(42, 43, 44), layers=("layers.0", "layers.2", "layers.4", "layers.6")):
    """An Evidence with only a summary: the layers in forward order and the members' seeds."""
    summary = {"steps": 10, "members": len(seeds), "member_seeds": list(seeds),
               "layers": [{"name": n, "kind": "param", "type": "Linear", "order": i} for i, n in enumerate(layers)]}
    return Evidence(summary=summary)


def _dropout(layer, member, seed, p=0.7):
    return Finding("HIGH_DROPOUT", "warning", layer, None, f"Dropout(p={p:g}) at {layer} drops {100 * p:.0f} %.",
                   {"p": p, "keep_probability": 1 - p}, "Use p=0.3.", member, seed)


# --------------------------------------------------------------------------- grouping


def test_twelve_identical_dropout_findings_become_one():
    ev = _evidence()
    instances = [_dropout(layer, m, s) for m, s in enumerate((42, 43, 44))
                 for layer in ("layers.6", "layers.2", "layers.4", "layers.0")]
    out = group(instances, ev)
    assert len(out) == 1
    f = out[0]
    assert f.code == "HIGH_DROPOUT" and f.severity == "warning"
    assert f.layers == ["layers.0", "layers.2", "layers.4", "layers.6"] and f.layer == "layers.0"  # forward order
    assert f.seeds == [42, 43, 44] and f.members == [0, 1, 2] and f.of_seeds == 3 and f.seen_in == 3
    assert f.seed is None and f.member is None and len(f.instances) == 12
    assert f.message.startswith("Dropout(p=0.7)")
    assert "Seen in 3 of 3 seeds and 4 layers (Linear `layers.0`, Linear `layers.2`" in f.message
    assert core_message(f) == instances[0].message
    assert f.alternatives[0]["cause"].startswith("a keep-probability passed as p")
    assert f.alternatives[0]["verdict"] == "supported"


def test_worst_instance_leads_and_the_most_severe_severity_wins():
    ev = _evidence()

    def dead(layer, member, frac):
        sev = "error" if frac >= 0.9 else "warning"
        return Finding("DEAD_UNITS", sev, layer, 100, f"{100 * frac:.0f} % of {layer} dead (seed {42 + member}).",
                       {"dead_fraction": frac}, "LeakyReLU.", member, 42 + member)

    out = group([dead("layers.4", 0, 0.3), dead("layers.2", 1, 0.95), dead("layers.4", 2, 0.5)], ev)
    f, = out
    assert f.severity == "error" and f.evidence == {"dead_fraction": 0.95}
    assert f.message.startswith("95 % of layers.2 dead (seed 43).")
    assert f.layer == "layers.2" and f.layers == ["layers.2", "layers.4"]
    assert [i["severity"] for i in f.instances] == ["warning", "error", "warning"]
    assert "3 of 3 seeds and 2 layers" in f.message


def test_causes_under_one_code_stay_apart_and_a_partial_scope_names_its_seeds():
    ev = _evidence()
    low = Finding("UPDATE_RATIO", "warning", "layers.0", 1, "barely moves", {"median": 1e-7, "cause": "low"},
                  "Raise the lr.", 0, 42)
    high = Finding("UPDATE_RATIO", "warning", "layers.6", 1, "rewritten", {"median": 1.0, "cause": "high"},
                   "Lower the lr.", 1, 43)
    out = group([low, high], ev)
    assert len(out) == 2 and {f.suggestion for f in out} == {"Raise the lr.", "Lower the lr."}
    one = [f for f in out if f.evidence["cause"] == "low"][0]
    assert one.seed == 42 and one.seeds == [42] and one.message == "barely moves Seen in 1 of 3 seeds (42)."


def test_a_finding_that_names_only_its_member_is_counted_by_its_seed():
    ev = _evidence()
    f, = group([_dropout("layers.2", 1, None), _dropout("layers.2", 2, None)], ev)
    assert f.seeds == [43, 44] and f.members == [1, 2] and "2 of 3 seeds (43, 44)" in f.message


def test_a_single_seed_single_layer_finding_reads_as_before():
    ev = _evidence(seeds=(7,), layers=("layers.0",))
    f, = group([_dropout("layers.0", 0, 7)], ev)
    assert f.message == _dropout("layers.0", 0, 7).message  # nothing to add: one seed of one
    assert f.seed == 7 and f.of_seeds == 1 and f.layers == ["layers.0"]


def test_a_whole_run_finding_covers_every_seed():
    ev = _evidence()
    f, = group([Finding("UNNORMALIZED_INPUT", "warning", "<input>", 0, "raw pixels", {"max": 255.0})], ev)
    assert f.seeds == [42, 43, 44] and f.seen_in == 3 and "3 of 3 seeds" in f.message
    assert f.alternatives[0]["cause"].startswith("raw 0-255 pixels") and f.alternatives[0]["verdict"] == "supported"


def test_findings_written_before_grouping_are_grouped_when_read():
    legacy = [{"code": "VANISHING_GRADIENT", "severity": "warning", "layer": "layers.0", "step": 0, "member": m,
               "seed": s, "message": f"vanish (seed {s})", "evidence": {"ratio_median": 1e-4}, "suggestion": "relu"}
              for m, s in enumerate((1, 2))]
    f, = as_grouped(legacy, seeds=[1, 2, 3])
    assert f.seeds == [1, 2] and f.of_seeds == 3 and "2 of 3 seeds (1, 2)" in f.message
    assert as_grouped([f.to_dict()]) == [f]  # an already grouped list is read as it is


# --------------------------------------------------------------------------- round trip


def test_to_dict_json_from_dict_is_exact():
    ev = _evidence()
    instances = [Finding("EXPLODING_GRADIENT", "error", "layers.2", 3, "big", {"growth": np.float32(2e3),
                                                                              "steps": (1, 3), "inf": math.inf},
                         "clip", 0, 42),
                 Finding("EXPLODING_GRADIENT", "warning", "layers.4", 5, "bigger", {"growth": 1e4}, "clip", 1, 43)]
    for f in group(instances, ev) + instances:
        d = f.to_dict()
        back = Finding.from_dict(json.loads(json.dumps(d)))
        assert back.to_dict() == d
        assert back == f or any(isinstance(v, float) and math.isnan(v) for v in f.evidence.values())
    assert instances[0].evidence["steps"] == [1, 3] and type(instances[0].evidence["growth"]) is float
    assert instances[0].to_dict()["evidence"]["inf"] == "inf" and Finding.from_dict(instances[0].to_dict()) == instances[0]


def test_from_dict_rejects_what_is_not_a_finding():
    with pytest.raises(ValueError, match=r"not a finding: keys \['code', 'colour'\]"):
        Finding.from_dict({"code": "X", "colour": "red"})
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding.from_dict({"code": "X", "severity": "fatal", "message": "m"})


# --------------------------------------------------------------------------- ranked alternatives


def _recorded(act: nn.Module, scale: float = 1.0, steps: int = 6):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 32), act, nn.Linear(32, 32), type(act)(), nn.Linear(32, 4))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(scale)
    x, y = torch.randn(256, 20), torch.randint(0, 4, (256,))
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    with Recorder(net, schedule="every") as rec:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            rec.step(loss=loss)
    return Evidence.of(rec, num_classes=4)


def test_every_code_has_ranked_candidate_causes():
    assert set(CAUSES) == set(CODES)
    assert all(len(c) >= 1 for c in CAUSES.values())


def test_vanishing_gradient_causes_are_weighed_by_the_run():
    vanish = Finding("VANISHING_GRADIENT", "warning", "0", 0, "vanish", {})
    sig = rank_causes(vanish, _recorded(nn.Sigmoid(), scale=0.05), {"VANISHING_GRADIENT"})
    by_cause = {a["cause"]: a for a in sig}
    top = sig[0]
    assert top["verdict"] == "supported" and "sigmoid" in top["evidence"] and "0.25" in top["evidence"]
    small = by_cause["too-small initialisation"]
    assert small["verdict"] == "supported" and "x 1/sqrt(fan_in)" in small["evidence"]
    assert by_cause["saturated units pass no gradient"]["verdict"] == "unlikely"
    assert [a["score"] for a in sig] == sorted((a["score"] for a in sig), reverse=True)

    relu = {a["cause"]: a for a in rank_causes(vanish, _recorded(nn.ReLU()), {"VANISHING_GRADIENT", "SATURATION"})}
    assert relu["a bounded activation with a small derivative"]["verdict"] == "unlikely"
    assert "relu" in relu["a bounded activation with a small derivative"]["evidence"]
    assert relu["too-small initialisation"]["verdict"] == "unlikely"  # PyTorch's default init
    assert relu["saturated units pass no gradient"]["verdict"] == "supported"  # SATURATION found beside it
    assert "too low a learning rate" not in relu  # the rate scales every layer alike: no first-to-last ratio


def test_the_terminal_shows_the_likely_causes_in_order():
    f, = group([_dropout("layers.0", 0, 42)], _evidence())
    text = format_findings([f])
    assert "WARNING HIGH_DROPOUT [1 of 3 seeds; layer layers.0]" in text
    assert re.search(r"likely causes:\n +1\. a keep-probability passed as p .*\[supported\]: p=0\.7", text)
    assert "2. strong regularisation on purpose [unlikely]" in text
    assert likely_causes(f, 1).startswith("1. a keep-probability passed as p (TensorFlow 1 habit) [supported: p=0.7")


# --------------------------------------------------------------------------- a stored run and its consumers


@pytest.fixture(scope="module")
def dropout_run(tmp_path_factory):
    data_ = data.synthetic(n_train=512, n_val=128, n_test=128, noise=3.0)
    config = make_config("sigmoid", "smoke", max_epochs=2, seeds=(5, 6, 7), dropout=0.7, record="every")
    root = tmp_path_factory.mktemp("runs")
    run, = train.train_runs([config], runs_dir=root, data=data_, progress=False, device="cpu")
    return root, run


def test_a_stored_run_holds_one_finding_per_cause(dropout_run):
    _, run = dropout_run
    codes = [f["code"] for f in run.findings]
    assert len(codes) == len(set(codes)) and "HIGH_DROPOUT" in codes  # two dropout layers x three seeds: one
    d = [f for f in run.findings if f["code"] == "HIGH_DROPOUT"][0]
    assert d["seeds"] == [5, 6, 7] and d["of_seeds"] == 3 and len(d["instances"]) == 6
    assert [Finding.from_dict(f).to_dict() for f in run.findings] == run.findings
    assert len(diagnose(store.load_run(run.path), grouped=False)) > len(run.findings)


def test_cli_diagnose_prints_grouped_findings_and_their_json(dropout_run, capsys):
    root, run = dropout_run
    assert main(["diagnose", run.name, "--out", str(root)]) == 0
    text = capsys.readouterr().out
    assert text.count("HIGH_DROPOUT") == 1 and "[3 of 3 seeds; 2 layers]" in text and "likely causes:" in text
    assert main(["diagnose", run.name, "--out", str(root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == run.findings  # the same findings the run stored, in the same shape


def test_consumers_read_the_grouped_findings(dropout_run):
    _, run = dropout_run
    table = grouped_findings({"sigmoid": run.findings}, {"sigmoid": run.seeds}, {"layers.2": "Dropout 1"})
    row = table[table["finding"] == "HIGH_DROPOUT"].iloc[0]
    assert len(table[table["finding"] == "HIGH_DROPOUT"]) == 1
    assert row["seeds"] == "3 of 3 seeds" and row["layers"].startswith("Dropout 1; ")
    assert "Seen in" not in row["what it says (worst seed)"] and row["possible causes, ranked"].startswith("1. a keep-probability")
    t = plots.findings_table(run.findings)
    assert list(t["code"]).count("HIGH_DROPOUT") == 1 and (t["seen in"] == "3 of 3 seeds").all()
    assert "HIGH_DROPOUT" in _finding_codes(run.findings, 6) and _finding_codes(run.findings, 99) == []
    legacy = [{"code": "DEAD_UNITS", "seed": 6, "severity": "warning", "message": "m"}]
    assert _finding_codes(legacy, 6) == ["DEAD_UNITS"] and _finding_codes(legacy, 5) == []


# --------------------------------------------------------------------------- every code, listed


def test_readme_lists_every_code_and_only_those():
    readme = (ROOT / "README.md").read_text()
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.M))
    assert table == set(CODES), (sorted(set(CODES) - table), sorted(table - set(CODES)))


def test_every_code_a_rule_can_emit_is_in_codes():
    emitted = set()
    for path in (ROOT / "gradflow" / "diagnose").glob("*.py"):
        text = path.read_text()
        emitted |= set(re.findall(r"Finding\(\s*(?:code=)?[\"']([A-Z_]+)[\"']", text))
    assert {"NO_DATA", "HIGH_DROPOUT", "NONFINITE"} <= emitted  # the pattern finds the rules' codes
    assert emitted <= set(CODES), sorted(emitted - set(CODES))
