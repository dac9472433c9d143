"""The case-study page's added text, with numbers planted: case 002's three ELUs (same values, different
slopes; fix 2 is the built-in ELU), the answers to the page's prompt, the glossary, the credits and the
learning goals. The executed page itself is checked in test_case_studies.py."""
import math
import re
from pathlib import Path
from types import SimpleNamespace

import jupytext
import numpy as np
import pandas as pd
import pytest

from gradflow import case_answers as ca
from gradflow import case_elu as ce
from gradflow import case_studies as cs
from gradflow.case_credits import CASE_003, source_line, sources_markdown
from gradflow.case_glossary import TERMS, case_glossary
from gradflow.models import BaseNetwork
from gradflow.narrate_pages import GLOSSARY as SHARED

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_case_studies.py"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"  # the posts the cases come from, beside the checkout
CONFIG = {"model": BaseNetwork("elu", input_size=784, num_classes=10, hidden_sizes=[128, 128]).config,
          "run": {"lr": 0.01, "max_epochs": 2}}


# --------------------------------------------------------------------------- planted runs


def recording(ratios: dict, nan_at: dict | None = None, act=(59.0, 91.0)):
    """A recording stub: Linear 1's gradient:weight ratio per seed and step, the ELU's output at step 0,
    and each seed's first NaN (``nan_at``: {seed: step})."""
    rows = [{"step": step, "seed": seed, "layer": "layers.0", "quantity": "grad_data_ratio", "value": v}
            for seed, by_step in ratios.items() for step, v in by_step.items()]
    rows += [{"step": 0, "seed": seed, "layer": "layers.1", "quantity": q, "value": v}
             for seed in ratios for q, v in zip(("act_mean", "act_std"), act)]
    nf = pd.DataFrame([{"step": s, "seed": seed, "layer": "layers.1", "where": "activation"}
                       for seed, s in (nan_at or {}).items()], columns=["step", "seed", "layer", "where"])
    tables = {"scalars": pd.DataFrame(rows), "nonfinite": nf}
    return SimpleNamespace(tables=lambda: tables)


def run(acc: dict, rec=None, metrics=None, findings=(), path=None):
    results = pd.DataFrame({"seed": list(acc), "test_acc": list(acc.values())})
    return SimpleNamespace(results=results, seeds=list(acc), config=CONFIG, recordings=rec, findings=list(findings),
                           metrics=metrics if metrics is not None else pd.DataFrame(), path=path)


def losses(by_seed: dict) -> pd.DataFrame:
    """Per-epoch metrics: epoch 0 (no training loss), then each seed's training losses."""
    return pd.DataFrame([{"seed": s, "epoch": e, "train_loss": v, "val_acc": 0.1, "train_acc": 0.1}
                         for s, ls in by_seed.items() for e, v in enumerate([math.nan, *ls])])


def case002(nan_seeds=(42, 43)):
    """Fix 2 with seeds 42 and 43 blowing up (NaN at steps 7 and 6), seed 44 learning; fix 1 calm."""
    nan_at = {s: st for s, st in ((42, 7), (43, 6)) if s in nan_seeds}
    blown = {42: {0: 5.8, 1: 7.9, 4: 32.0}, 43: {0: 4.6, 1: 10.5, 4: 3590.0}}
    calm = {42: {0: 5.3, 1: 8.6, 4: 12.1, 16: 0.49}, 43: {0: 4.0, 1: 3.0, 4: 2.0, 16: 0.5}}
    ratios = {s: (blown if s in nan_seeds else calm)[s] for s in (42, 43)} | {44: {0: 7.8, 1: 4.1, 4: 2.2, 16: 0.38}}
    acc = {42: 0.10 if 42 in nan_seeds else 0.80, 43: 0.10 if 43 in nan_seeds else 0.81, 44: 0.845}
    clamped = run(acc, recording(ratios, nan_at), losses({s: [math.nan if s in nan_seeds else 0.9, 0.5] for s in acc}),
                  findings=[{"code": "UNNORMALIZED_INPUT"}, {"code": "EXPLODING_GRADIENT"}])
    scaled = run({42: 0.85, 43: 0.86, 44: 0.86}, recording({s: {0: 0.063 + 0.01 * i, 1: 0.07, 4: 0.08}
                                                            for i, s in enumerate((42, 43, 44))}))
    return {"raw": run({42: 0.1, 43: 0.1, 44: 0.1}, recording({42: {0: math.nan}}, {42: 0})),
            "scaled": scaled, "clamped": clamped}


# --------------------------------------------------------------------------- 1. three ELUs


def test_the_three_elus_compute_the_same_values_and_only_the_hand_written_one_makes_nan():
    v = ce.elu_values()
    for name in ("hand-written", "fix 2"):
        assert np.allclose(v[name], v["built-in F.elu"], rtol=0, atol=1e-6), name
    slope = v.set_index("x")
    assert np.isnan(slope.loc[[89.0, 300.0], "hand-written slope"]).all()
    assert np.isfinite(slope.loc[[-3.0, 0.5, 88.0], "hand-written slope"]).all()  # exp(88) still fits a float32
    assert (slope["fix 2 slope"] == slope["built-in F.elu slope"]).all()
    table = ce.elu_table(v)
    assert list(table.columns[:4]) == ["x", "value: hand-written", "value: fix 2", "value: built-in F.elu"]
    assert (table.set_index("x").loc["300", "slope: hand-written"]) == "NaN"


def test_the_elu_reading_says_same_values_different_slopes_as_measured():
    v = ce.elu_values()
    text = ce.elu_reading(v)
    assert "**Same values, different slopes.**" in text and "0 · inf = NaN" in text
    assert "From x = 88.7 on" in text and "(x = 89 and 300 above)" in text
    assert "fix 2 *is* the built-in ELU" in text and "expm1" in text
    # planted facts: a fix 2 whose slope differed would not be called the built-in ELU
    other = ce.elu_reading(v, {"value_gap": 6e-8, "nan_from": 88.7, "slope_gap": 0.5})
    assert "*is* the built-in" not in other and "differs from the built-in's by up to 0.5" in other
    finite = v.assign(**{"hand-written slope": 1.0})  # no NaN in the table: no NaN sentence
    assert "0 · inf" not in ce.elu_reading(finite, {"value_gap": 6e-8, "nan_from": 88.7, "slope_gap": 0.0})


def test_fix_2_is_said_to_be_the_built_in_elu_and_its_nan_the_raw_pixels():
    runs = case002()
    story = ce.builtin_story(runs)
    assert "**Fix 2 and the built-in ELU.**" in story and "is what the built-in ELU does there too" in story
    assert "Linear 1 (784→128) is already 4.6 to 7.8 times the spread" in story
    assert "pixels / 255: 0.063 to 0.083 times" in story
    assert "4.6 to 7.8 % of their spread, 46 to 78 times the healthy 1e-3" in story  # lr 0.01 × the ratio
    assert "in seeds 42 and 43 the steps fed on themselves" in story
    assert "In seed 44 the first steps happened to shrink the gradient instead, and the run learned (84.5 %)" in story
    calm = ce.builtin_story(case002(nan_seeds=()))
    assert "fed on themselves" not in calm and "grew for a few steps, then shrank before anything overflowed" in calm


def test_the_question_s_own_model_says_whether_its_sigmoid_kept_the_steps_small():
    runs = case002()
    # the question's model: built-in ELU + sigmoid output on raw pixels; small first steps, every seed learns
    asked = run({42: 0.861, 43: 0.861, 44: 0.865}, recording({s: {0: 1.3 + 0.2 * i, 1: 1.0, 4: 0.5}
                                                               for i, s in enumerate((42, 43, 44))}),
                losses({s: [0.9, 0.5] for s in (42, 43, 44)}))
    note = ce.question_note(runs | {"asked": asked})
    assert "keeps that layer, with the built-in ELU on the same raw 0–255 pixels" in note
    assert "no seed ends in NaN, and after 2 epochs it reaches a test accuracy of 86.1 %, 86.1 % and 86.5 %" in note
    assert "1.3 to 1.7 times the spread of its weights, against 4.6 to 7.8 for fix 2" in note
    assert "passes back less gradient" in note and "needs both causes" in note
    # the same model with steps as large as fix 2's, one seed lost: the sigmoid is not called the reason
    lost = run({42: 0.10, 43: 0.80, 44: 0.81}, recording({42: {0: 9.0, 1: 40.0}, 43: {0: 6.0}, 44: {0: 5.0}}, {42: 1}))
    other = ce.question_note(runs | {"asked": lost})
    assert "1 of 3 seeds end in NaN as well (the others reach 80.0 % and 81.0 %)" in other
    assert "not smaller, so the sigmoid is not what kept these steps small" in other
    # fix 2 learned in every seed (a short run): nothing to explain; the note says what the sigmoid changed
    slow = run({42: 0.164, 43: 0.17, 44: 0.15}, recording({s: {0: 1.8, 1: 0.4} for s in (42, 43, 44)}),
               losses({s: [2.3, 2.2] for s in (42, 43, 44)}))
    calm = ce.question_note(case002(nan_seeds=()) | {"asked": slow})
    assert calm.startswith("**The question's own model.** Here fix 2, the built-in ELU in all but name, learned too")
    assert "below fix 1 with pixels / 255 (85.7 %) and below fix 2 (81.8 %): the sigmoid output slows it" in calm
    assert "Why did the question's built-in ELU learn" not in calm
    assert "as well as fix 1 with pixels / 255" in note  # 86.2 % against fix 1's 85.7 %
    # a store trained before the question's model was a run: the reading is called a reading
    assert "That is a reading, not a measurement" in ce.question_note(runs)
    assert "the question's model" not in ce.growth_table(runs)["run"].tolist()
    assert "the question's model, raw pixels" in ce.growth_table(runs | {"asked": asked})["run"].tolist()


def test_the_growth_table_marks_nan_from_each_seed_s_first_nan_on():
    t = ce.growth_table(case002()).set_index(["run", "seed"])
    assert list(t.columns) == ["step 0", "step 1", "step 4", "step 16"]
    assert t.loc[("fix 2, raw pixels", 43), "step 4"] == "3,600×" and t.loc[("fix 2, raw pixels", 43), "step 16"] == "NaN"
    assert t.loc[("fix 2, raw pixels", 44), "step 16"] == "0.38×"
    assert t.loc[("fix 1, pixels / 255", 42), "step 0"] == "0.063×"


def test_raw_sizes_reads_the_broken_run_s_first_elu():
    said = ce.raw_sizes(case002()["raw"])
    assert "averaging 59, with a spread (std) of 91 (mean over its seeds)" in said
    assert "(mean over" not in ce.raw_sizes(run({42: 0.1}, recording({42: {0: 1.0}})))  # one seed: no mean
    assert ce.raw_sizes(run({42: 0.1}, recording({42: {0: 1.0}}, act=(0.2, 0.5)))) == ""  # small inputs: no claim


# --------------------------------------------------------------------------- 3. answers


def test_002_answers_say_what_the_mean_hides_and_what_warned():
    first, second = ca.answers_002(case002())
    assert first.startswith("**Fix 2's mean, 34.8 %.**") and "2 of 3 seeds end in NaN" in first
    assert "the other reaches 84.5 %: the mean describes none of them" in first
    assert "4.6 to 7.8 times the spread of its weights, in every seed, the one that learned included" in second
    assert "The diagnosis reports UNNORMALIZED_INPUT and EXPLODING_GRADIENT." in second
    # 4.6-7.8 is under the finding's own 10×: the answer says so, and where the finding came from
    assert "(below the 10× at which the diagnosis calls a gradient exploding; in the seeds that ended in NaN" in second
    calm, _ = ca.answers_002(case002(nan_seeds=()))
    assert "suggests the clamp fixed everything" in calm and "describes none" not in calm


def test_001_answers_compare_training_and_test_accuracy():
    def drop(test, train):
        m = pd.DataFrame({"seed": [0, 0], "epoch": [1, 2], "train_acc": [train - 0.05, train], "val_acc": [0.5, 0.6]})
        return run({0: test}, metrics=m, findings=[{"code": "HIGH_DROPOUT"}])
    first, second = ca.answers_001({"drop70": drop(0.777, 0.725), "drop30": drop(0.874, 0.876)})
    assert "**The p = 0.7 run's 77.7 %.**" in first and "9.7 points below the fix" in first
    # the gap is the difference of the two numbers printed (87.4 − 77.7), not of the unrounded means
    odd, _ = ca.answers_001({"drop70": drop(0.77651, 0.725), "drop30": drop(0.87449, 0.876)})
    assert "9.7 points below the fix" in odd
    assert "a weaker model" in first and "slightly" not in first  # 9.7 points is not "slightly"
    assert "72.5 %** in the last epoch" in second and "is 5.2 points below its test accuracy, 77.7 %" in second
    assert "the fix trains at 87.6 %, not below its test score (87.4 %)" in second
    # both below their test score (the quick preset): the size of the gap is the sign, not its direction
    _, both = ca.answers_001({"drop70": drop(0.582, 0.472), "drop30": drop(0.803, 0.783)})
    assert "11.0 points below its test accuracy" in both and "the fix's is 2.0 points below its own" in both
    assert second.endswith("The diagnosis reports HIGH_DROPOUT.")
    close, other = ca.answers_001({"drop70": drop(0.96, 0.97), "drop30": drop(0.98, 0.99)})
    assert "slightly weaker" in close and "below its test accuracy" not in other


def test_000_and_004_answers_read_the_runs(tmp_path):
    np.savez(tmp_path / "samples.npz", output_values_seed42=np.array([-0.5, 0.2, -0.1, 0.4]),
             row_sums_seed42=np.array([-1.0, 2.0]))
    keras = run({42: 0.101}, path=tmp_path, findings=[{"code": "BOUNDED_OUTPUT"}])
    first, second = ca.answers_000({"keras": keras, "pytorch": run({42: 0.865})})
    assert "**The Keras-loss run's 10.1 %.**" in first and "chance" in first and "reaches 86.5 %" in first
    assert "50.0 % of them are negative and 50.0 % of the rows sum to zero or less" in second
    m = lambda acc, mse: pd.DataFrame({"seed": [0, 0], "epoch": [0, 1], "val_binary_acc": acc, "val_loss": mse})  # noqa: E731
    first, second = ca.answers_004({"copy": run({0: 1.0}, metrics=m([1.0, 0.98], [0.194, 0.018])),
                                    "autoencoder": run({0: 0.97}, metrics=m([0.5, 0.97], [0.25, 0.021]))})
    assert "binary accuracy, 100.0 %" in first and "**Its mean squared error, 0.194**" in second
    assert "off by about 0.44" in second  # sqrt(0.194)


def test_the_page_answers_its_prompt_after_each_case_s_figure():
    nb = NOTEBOOK.read_text()
    flat = re.sub(r"\s+", " ", nb.replace("\n# ", " "))
    assert ca.PROMPT in flat  # the prompt the answers answer is the page's
    sections = re.split(r"\n# ## ", nb)
    for cid in cs.CASE_IDS:
        body = next(s for s in sections if s.startswith(cid))
        call = f'check_predictions("{cid}")'
        assert call in body, cid
        assert body.index("plt.show()") < body.index(call), cid  # after the figure it answers
    assert "answers(case_answers(case_id, cases[case_id]))" in nb


# --------------------------------------------------------------------------- 2. glossary and credits


def test_the_glossary_defines_the_page_s_terms_with_the_shared_wording():
    text = case_glossary()
    for term in ("logits", "softmax", "dropout", "autoencoder", "NaN", "exp overflow", "binary accuracy",
                 "cross-entropy", "ELU", "where (torch.where"):
        assert f"- **{term}" in text, term
    for label, definition, _ in TERMS:
        if label in SHARED:
            assert definition == SHARED[label], label  # one word, one meaning across the pages
    labels = [line.split("**")[1].lower() for line in text.splitlines()]
    assert labels == sorted(labels)
    assert "display(Markdown(case_glossary(findings_text)))" in NOTEBOOK.read_text()
    # a term only findings use is defined when a finding says it
    assert "**dead unit**" in case_glossary("... 3 dead units in Linear 2 ...")
    assert "**dead unit**" not in case_glossary("SATURATION ... flat region") and "**logits**" in case_glossary("")


def test_each_post_is_credited_by_what_it_is_and_the_page_lists_them():
    for c in cs.CASES:
        intro = cs.case_intro(c.id)
        assert intro.startswith(f"**Source.** {source_line(c.source)}") and c.source.credit in intro
        assert ("in our words" in intro) != bool(c.source.original_title)
    listed = sources_markdown()
    for cid in (*cs.CASE_IDS, "003"):
        assert f"**Case {cid}**" in listed, cid
    assert "Juejin" in listed and "no links or author names" in listed
    assert "https://" not in listed.replace(listed[listed.index("uvadlc") - 8:], "")  # no URL but the tutorial's
    assert "display(Markdown(sources_markdown()))" in NOTEBOOK.read_text()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed posts are not in this checkout")
def test_credits_and_quotes_are_in_the_posts_themselves():
    posts = "".join(p.read_text() for p in SEEDS.glob("*.txt")).replace("\n", "")  # code spans sit on own lines
    for s in [c.source for c in cs.CASES] + [CASE_003]:
        for original, _ in s.quotes:
            assert original in posts, original
        if s.original_title:
            assert s.original_title in posts, s.original_title
    assert "掘金" in posts  # Juejin, as case 003's post shows
    for word in ("Habr", "Stack Overflow"):  # named by the page only where a post itself says so
        named = any(word in f"{c.source.site} {c.source.kind}" for c in cs.CASES)
        assert not named or word in posts, word


# --------------------------------------------------------------------------- 4. learning goals


def test_the_page_opens_with_a_learning_goals_box():
    cells = jupytext.read(NOTEBOOK).cells
    intro = cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# Case studies")
    m = re.search(r"> \*\*After this page you can\*\*\n>\n((?:> (?:- |  ).+\n)+)", intro.source + "\n")
    assert m, intro.source
    assert 2 <= len(re.findall(r"^> - ", m.group(1), re.M)) <= 4
    raw = NOTEBOOK.read_text()
    assert "#\n# > **After this page you can**\n# >\n# > - " in raw  # jupytext percent form, as on every page
