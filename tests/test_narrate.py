"""Generated sentences say the planted numbers: tables in, text out."""
import math

import numpy as np
import pandas as pd
import pytest

from gradflow import (
    histogram_tables,
    narrate,
    narrate_compare,
    narrate_findings,
    narrate_init,
    narrate_layers,
    narrate_pages,
    seed_intervals,
)


def _metrics(act, losses, seeds=(42, 43, 44), past_from=None):
    rows = []
    for s in seeds:
        for e, loss in enumerate(losses, 1):
            rows.append({"activation": act, "seed": s, "epoch": e, "train_loss": loss, "train_acc": 0.1,
                         "val_acc": 0.1, "past_stop": past_from is not None and e >= past_from})
    return pd.DataFrame(rows)


def test_the_slowest_starter_among_learners_is_named_with_where_it_ends():
    def curve(act, accs):
        m = _metrics(act, [1.0] * len(accs))
        m["val_acc"] = [a for _ in (42, 43, 44) for a in accs]
        return m
    m = pd.concat([curve("sigmoid", [0.1, 0.1, 0.1]), curve("relu", [0.74, 0.81, 0.85]),
                   curve("tanh", [0.78, 0.83, 0.85]), curve("swish", [0.35, 0.76, 0.83])])
    said = narrate_compare.slow_start_sentences(m)
    assert said == ["Of the seeds that end above chance, **swish** starts slowest: after epoch 1 its validation "
                    "accuracy is 35.0 % (mean over seeds), against 74.0 %–78.0 % for the other activations (means "
                    "over their seeds). At the last counted epoch it is still behind, at 83.0 % against 85.0 %, but "
                    "the gap to the nearest shrank from 39.0 to 2.0 points."]
    # a split activation: the end is said for its seeds that left chance, not a mean mixing in the stuck ones
    split = curve("swish", [0.35, 0.76, 0.83])
    split.loc[split["seed"] == 42, "val_acc"] = 0.1
    said = narrate_compare.slow_start_sentences(pd.concat([m[m["activation"] != "swish"], split]))[0]
    assert said.startswith("Of the seeds that end above chance, **swish**'s seeds 43 and 44 start slowest: "
                           "after epoch 1 their validation accuracy is 35.0 % (mean over seeds)")
    assert "At the last counted epoch they are still behind, at 83.0 % against 85.0 %" in said
    alike = pd.concat([m[m["activation"] != "swish"], curve("swish", [0.35, 0.76, 0.85])])
    assert "a slow start is not where a network ends" in narrate_compare.slow_start_sentences(alike)[0]
    behind = pd.concat([m[m["activation"] != "swish"], curve("swish", [0.35, 0.45, 0.55])])
    assert "the gap has not closed in these epochs" in narrate_compare.slow_start_sentences(behind)[0]
    close = pd.concat([curve("relu", [0.74, 0.8]), curve("tanh", [0.78, 0.8]), curve("swish", [0.70, 0.8])])
    assert narrate_compare.slow_start_sentences(close) == []  # within 10 points of the next: no story to tell


def test_sigmoid_at_chance_is_called_chance_with_its_loss():
    m = pd.concat([_metrics("sigmoid", [2.31, 2.303, 2.302]), _metrics("relu", [1.2, 0.6, 0.45])])
    text = " ".join(narrate_compare.loss_sentences(m))
    assert "sigmoid" in text and "2.30 nats" in text and "ln 10" in text and "chance" in text
    assert "relu brings the training loss down to 0.45 nats" in text


def test_seeds_that_disagree_are_told_apart_not_averaged():
    m = pd.concat([_metrics("sigmoid", [2.31, 2.302], seeds=(42,)), _metrics("sigmoid", [2.31, 0.52], seeds=(44,))])
    text = " ".join(narrate_compare.loss_sentences(m))
    assert "**sigmoid**'s seeds end apart: 1 of 2 end at chance loss" in text and "seed 44 gets down to 0.52" in text
    assert "bring" not in text


def test_split_seeds_are_explained_and_left_out_of_the_ranking():
    summary = _summary({"sigmoid": [0.1, 0.1, 0.79], "tanh": [0.879, 0.875, 0.883], "relu": [0.883, 0.886, 0.884]})
    apart, _ = seed_intervals.distinguishable(summary)
    text = " ".join(narrate_compare.accuracy_sentences(summary, "tutorial", apart, {"sigmoid": 0.10, "relu": 0.8862}))
    assert "**sigmoid**'s seeds split: the lowest ends at 10.0 % (chance), the highest at 79.0 %" in text
    assert "tanh and relu end within" in text and "sigmoid, " not in text.split("seeds split")[1]
    assert "The tutorial's 10.0 % for sigmoid is one seed's draw of this split" in text
    assert "it lies inside that range for relu." in text and "2× as wide as the interval of the mean" in text
    # one published run is judged against where one run of ours lands (mean ± 0.76 here), not against the
    # interval of the mean (± 0.38): 88.92 % is outside the latter and inside the former
    text = " ".join(narrate_compare.accuracy_sentences(summary, "tutorial", apart, {"relu": 0.8892}))
    assert "inside that range for relu" in text
    # a published value outside even that range is said, not silently left out
    text = " ".join(narrate_compare.accuracy_sentences(summary, "tutorial", apart, {"relu": 0.8962}))
    assert "inside that range" not in text
    assert "For relu the tutorial's result lies above even the range for a single seed of ours (89.62 % against " \
           "87.67–89.19 %)" in text


def test_learning_activation_is_not_called_chance():
    text = " ".join(narrate_compare.loss_sentences(_metrics("relu", [1.0, 0.5])))
    assert "chance" not in text.split("(chance")[0]


def _summary(values: dict) -> pd.DataFrame:
    res = pd.DataFrame([{"activation": a, "seed": i, "test_acc": v} for a, vs in values.items() for i, v in enumerate(vs)])
    return seed_intervals.accuracy_summary(res)


ACC = {"sigmoid": [0.1, 0.1, 0.1], "tanh": [0.87, 0.871, 0.872], "swish": [0.80, 0.801, 0.802]}


def test_preview_never_ranks_nor_cites_the_tutorial():
    s = _summary(ACC)
    apart, _ = seed_intervals.distinguishable(s)
    assert apart  # the intervals do separate: a ranking would be possible
    text = " ".join(narrate_compare.accuracy_sentences(s, "quick", apart, reference={"tanh": 0.8759}))
    assert ">" not in text and "tutorial's single-seed" not in text
    assert "not a ranking" in text and "sigmoid is at about 10 %" in text
    # swish's interval lies below tanh's: said as behind after these epochs, not as a worse end
    assert "(swish below another), the seeds agree that it is behind after these epochs" in text
    assert "question for the full recipe" in text


def test_tutorial_preset_ranks_with_intervals():
    s = _summary(ACC)
    apart, _ = seed_intervals.distinguishable(s)
    text = " ".join(narrate_compare.accuracy_sentences(s, "tutorial", apart))
    assert "tanh > swish" in text and "95 %" in text


def test_one_seed_says_nothing_can_be_told_apart():
    s = _summary({"tanh": [0.87], "relu": [0.88]})
    text = " ".join(narrate_compare.accuracy_sentences(s, "tutorial", []))
    assert "nothing can be told apart" in text
    assert "nothing can be told apart" in narrate.preset_callout("quick", [42])
    assert "nothing can be told apart" not in narrate.preset_callout("quick", [42, 43])


def test_callout_says_preview_epochs_and_seeds():
    html = narrate.preset_callout("quick", [42, 43, 44], epochs_run=4)
    assert "Preview" in html and "4 epochs" in html and "3 seeds (42, 43, 44)" in html and "not rank" in html
    assert "Preview" not in narrate.preset_callout("tutorial", [42, 43, 44], epochs_run=50)


def test_callout_gives_the_steps_per_epoch_the_pages_count_in():
    config = {"run": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 256, "train_subset": None},
              "data": {"sizes": {"train": 50000}}}
    recipe = narrate.recipe_phrase(config)
    assert recipe == ("SGD (learning rate 0.01, momentum 0.9), batches of 256 of the 50,000 training images: 195 steps "
                      "per epoch, so step 1,000 falls in epoch 6")
    assert "195 steps per epoch" in narrate.preset_callout("tutorial", [42], epochs_run=50, recipe=recipe)
    assert narrate.recipe_phrase({"run": {"optimizer": "sgd"}}) == ""  # a config that does not say: nothing
    # a preview of 4 epochs never reaches step 1,000: its own last step instead
    quick = narrate.recipe_phrase({**config, "run": {**config["run"], "max_epochs": 4}})
    assert quick.endswith("195 steps per epoch, so 4 epochs are 780 steps") and "1,000" not in quick


def test_update_ratio_names_the_layer_and_the_gap_to_the_guide():
    rows = [{"activation": "sigmoid", "layer": "layers.0", "step": s, "value": 1e-5} for s in (1, 4, 16)]
    rows += [{"activation": "sigmoid", "layer": "layers.8", "step": s, "value": 2e-3} for s in (1, 4, 16)]
    rows += [{"activation": "relu", "layer": "layers.0", "step": s, "value": 1e-3} for s in (1, 4, 16)]
    text = " ".join(narrate_layers.update_ratio_sentences(pd.DataFrame(rows), {"layers.0": "Linear 1 (784→512)"}))
    assert "sigmoid" in text and "Linear 1 (784→512)" in text and "1.0e-5" in text and "100× below" in text
    assert "For relu the first layer's median ratio is 1.0e-3" in text
    assert "slow start" not in text


def test_update_ratio_tells_a_slow_start_that_the_median_hides():
    steps = [1, 4, 16, 64, 256, 600, 1200, 1800, 2400, 3000, 3600, 4200]
    values = [2e-6, 1e-5, 1e-5, 1e-5, 2e-5] + [1e-3] * 7  # median 1e-3: the first layer looks healthy
    rows = [{"activation": "sigmoid", "layer": "layers.0", "step": s, "epoch": 1 + s // 200, "value": v}
            for s, v in zip(steps, values)]
    text = " ".join(narrate_layers.update_ratio_sentences(pd.DataFrame(rows), {"layers.0": "Linear 1 (784→512)"}))
    assert ("**sigmoid**: Linear 1 (784→512) started far below the guide (2.0e-6 at step 1) and stayed under a tenth "
            "of it (1.0e-4) until step 600 (epoch 4)") in text
    assert "its median over the whole run, 1.0e-3, hides that slow start" in text
    assert "For sigmoid the first layer's median ratio" not in text  # not also called healthy
    # one low first value is noise, not a stretch
    rows[1]["value"] = rows[2]["value"] = rows[3]["value"] = rows[4]["value"] = 1e-3
    assert "slow start" not in " ".join(narrate_layers.update_ratio_sentences(pd.DataFrame(rows), {}))


def test_dead_units_growth_is_said_with_both_numbers():
    dead = pd.DataFrame([
        {"activation": "relu", "layer": "Linear 4 (256→128)", "stage": "at initialisation", "percent": 1.2},
        {"activation": "relu", "layer": "Linear 4 (256→128)", "stage": "after training", "percent": 5.1},
        {"activation": "tanh", "layer": "Linear 4 (256→128)", "stage": "at initialisation", "percent": 0.0},
        {"activation": "tanh", "layer": "Linear 4 (256→128)", "stage": "after training", "percent": 0.0}])
    text = " ".join(narrate_layers.dead_unit_sentences(dead))
    assert "grew from 1.2 % at initialisation to 5.1 %" in text and "Linear 4 (256→128)" in text
    assert "tanh has no dead unit" in text
    fell = pd.concat([dead, pd.DataFrame([
        {"activation": "relu", "layer": "Linear 3 (256→256)", "stage": "at initialisation", "percent": 7.0},
        {"activation": "relu", "layer": "Linear 3 (256→256)", "stage": "after training", "percent": 6.0}])])
    said = narrate_layers.dead_unit_sentences(fell)
    assert said[0] == ("**relu**: dead units in Linear 4 (256→128) grew from 1.2 % at initialisation to 5.1 % after "
                       "training; in Linear 3 (256→256) they fell from 7.0 % to 6.0 % (training revived some).")


def test_one_run_with_rising_dead_units_is_not_called_healthy():
    metrics = _metrics("relu", [1.0, 0.6, 0.45])
    results = pd.DataFrame({"seed": [42, 43, 44], "test_acc": [0.84, 0.83, 0.85]})
    dead = pd.DataFrame([{"layer": "Linear 4 (256→128)", "stage": "at initialisation", "percent": 1.2},
                         {"layer": "Linear 4 (256→128)", "stage": "after training", "percent": 5.1}])
    text = " ".join(narrate_pages.run_sentences(metrics, results, dead, n_findings=0, preset="quick"))
    assert "rose from 1.2 % at initialisation to 5.1 %" in text
    assert "nothing wrong" not in text and "no finding" in text


def test_findings_grouped_across_seeds_with_layer_names():
    f = [{"code": "VANISHING_GRADIENT", "severity": "warning", "layer": "layers.0", "seed": s,
          "message": "layers.0 gradient is small", "suggestion": ""} for s in (42, 43, 44)]
    table = narrate_findings.grouped_findings({"sigmoid": f}, {"sigmoid": [42, 43, 44]}, {"layers.0": "Linear 1 (784→512)"})
    assert len(table) == 1
    row = table.iloc[0]
    assert row["seeds"] == "3 of 3 seeds" and row["layers"] == "Linear 1 (784→512)"
    assert "layers.0" not in row["what it says (worst seed)"]


def test_plateau_story_from_past_stop_epochs():
    rows = []
    for e in range(1, 31):
        past = e > 14
        rows.append({"seed": 42, "epoch": e, "val_acc": 0.1 if e < 20 else 0.8, "past_stop": past})
    story = narrate_findings.plateau_story(pd.DataFrame(rows), pd.DataFrame({"seed": [42], "test_acc": [0.1]}))
    assert "ended seed 42 after epoch 14 (test accuracy 10.0 %)" in story
    assert "seed 42 passed 50 % validation accuracy at epoch 20, and by epoch 30 it reached 80.0 %" in story
    assert "PLATEAU_STOP" in story
    assert narrate_findings.plateau_story(pd.DataFrame(rows), pd.DataFrame({"seed": [42], "test_acc": [0.8]})) == ""
    lesson = narrate_findings.plateau_lesson(pd.DataFrame(rows), pd.DataFrame({"seed": [42], "test_acc": [0.1]}))
    assert lesson.startswith("1 of 1 sigmoid seeds stopped early at chance, yet trained on it left chance "
                             "by epoch 20") and "PLATEAU_STOP" in lesson
    # two seeds stopped by the same noise bump are told once, each one's rise by its own epoch
    two = pd.concat([pd.DataFrame(rows), pd.DataFrame(rows).assign(seed=43, val_acc=lambda d: d["val_acc"].where(
        d["epoch"] != 20, 0.1))])
    story = narrate_findings.plateau_story(two, pd.DataFrame({"seed": [42, 43], "test_acc": [0.1, 0.1]}))
    assert "ended seeds 42 and 43 after epoch 14, each at a test accuracy of 10.0 %" in story
    assert "seed 42 passed 50 % validation accuracy at epoch 20 and seed 43 at epoch 21, and by epoch 30 they " \
           "reached 80.0 % and 80.0 %" in story
    assert "Trained on, every seed" not in story  # no seed survived the plateau: nothing to compare with
    # a third seed on the same plateau, kept training by a noisy record, is the story's point
    survivor = pd.DataFrame([{"seed": 44, "epoch": e, "past_stop": False,
                              "val_acc": {12: 0.108, 17: 0.18}.get(e, 0.1 if e < 17 else 0.8)} for e in range(1, 31)])
    story = narrate_findings.plateau_story(pd.concat([two, survivor]),
                                           pd.DataFrame({"seed": [42, 43, 44], "test_acc": [0.1, 0.1, 0.79]}))
    assert "Seed 44 sat on the same plateau, but a noisy 10.8 % at epoch 12 was a new record" in story
    assert "it left chance (passed 15 %) at epoch 17" in story
    assert "Trained past their stop, seed 42 left chance at epoch 20; seed 43 left chance at epoch 21 (seed 44, " \
           "never stopped, at 17)" in story
    full = narrate_compare.conclusion_compare("tutorial", [], [], [], lesson,
                                      ["tanh and relu end within 0.3 points of each other (88.1–88.4 %) and their "
                                       "intervals overlap: 3 seeds cannot rank them"],
                                      ["**sigmoid**: ... its first layer started learning late."])
    assert "started learning late" in full and "cannot rank them" in full and "by epoch 20" in full


def test_gradient_flow_sentence_quotes_the_fade():
    lines = pd.DataFrame([{"activation": "sigmoid", "layer": "layers.0", "step": 600, "median": -6.0, "zero_share": 0},
                          {"activation": "sigmoid", "layer": "layers.8", "step": 600, "median": -2.0, "zero_share": 0}])
    text = " ".join(narrate_layers.gradient_flow_sentences(lines, {"layers.0": "Linear 1 (784→512)"}))
    assert "about 10,000× smaller" in text and "Linear 1 (784→512)" in text and "1.0e-6" in text


def test_a_fade_that_closes_later_is_told_as_a_late_start():
    medians = {0: (-6, -2), 100: (-5.9, -2.1), 3000: (-3.5, -2.6), 9000: (-3.2, -2.8)}
    lines = pd.DataFrame([{"activation": "sigmoid", "layer": k, "step": step, "median": m, "zero_share": 0}
                          for step, pair in medians.items() for k, m in zip(("layers.0", "layers.8"), pair)])
    text = " ".join(narrate_layers.gradient_flow_sentences(lines, {"layers.0": "Linear 1"}))
    assert "at step 0 the median gradient of Linear 1 is about 10,000× smaller" in text
    assert "closes to within 10× only by step 3000: its first layer started learning late" in text
    with_epochs = narrate_layers.gradient_flow_sentences(lines.assign(epoch=1 + lines["step"] // 195), {})
    assert "only by step 3000 (epoch 16): its first layer" in " ".join(with_epochs)
    # the conclusion joins the fade with the update:data ratio's slow stretch into why it was late
    ratios = pd.DataFrame([{"activation": "sigmoid", "layer": "layers.0", "step": st, "epoch": 1 + st // 200, "value": v}
                           for st, v in ((1, 2e-6), (100, 1e-5), (2600, 5e-4), (9000, 1e-3))])
    story = narrate_layers.slow_start_story("sigmoid", lines, ratios, stopped=2)
    assert story.startswith("**sigmoid** learned late, and the recordings say why: at step 0 its first layer's gradients "
                            "were about 10,000× smaller than its output layer's, and until step 2,600 (epoch 14) each "
                            "step changed that layer's weights by less than a tenth of the healthy 1.0e-3")
    assert "judged those seeds on validation accuracy while the layers near the input had hardly started" in story
    assert narrate_layers.slow_start_story("sigmoid", lines, ratios.assign(value=1e-3)) == ""  # no slow stretch


def test_zero_gradient_layers_of_one_activation_read_as_one_sentence():
    rows = [("layers.0", -4.0, 0.0), ("layers.4", -4.5, 0.15), ("layers.6", -4.5, 0.2), ("layers.8", -3.5, 0.0)]
    lines = pd.DataFrame([{"activation": "relu", "layer": k, "step": 600, "median": m, "zero_share": z}
                          for k, m, z in rows])
    labels = {"layers.4": "Linear 3", "layers.6": "Linear 4"}
    said = [t for t in narrate_layers.gradient_flow_sentences(lines, labels) if "exactly 0" in t]
    assert said == ["relu: at step 600, 15 % of Linear 3's and 20 % of Linear 4's weight gradients are exactly 0 "
                    "(or below 1e-10), below their bands (the middle half of the values), which they do not pull "
                    "down: they belong to weights whose unit and input were never on for the same image of the batch (one "
                    "of the two off for the whole batch, or the two on for different images)."]
    # from a quarter on, the zeros are the band's lower edge: the band reaches the bottom
    lines.loc[lines["layer"] == "layers.4", "zero_share"] = 0.3
    lines.loc[lines["layer"] == "layers.6", "zero_share"] = 0.4
    said = [t for t in narrate_layers.gradient_flow_sentences(lines, labels) if "exactly 0" in t]
    assert "so their bands reach the bottom" in said[0]


def test_ratios_read_with_two_significant_digits():
    assert [narrate.fmt_times(x) for x in (3.0, 8.46, 106.0, 6202.0)] == ["3", "8.5", "110", "6,200"]


def test_gradient_quantiles_from_a_histogram():
    from gradflow.flow_plots import gradient_lines
    edges = np.linspace(-10, 2, 49)
    values = np.full(1000, -4.1)
    counts, _ = np.histogram(values, bins=edges)
    lo = np.concatenate([[edges[0] - 0.25], edges[:-1]])
    hi = np.concatenate([[edges[0]], edges[1:]])
    hist = pd.DataFrame({"activation": "relu", "layer": "layers.0", "step": 0, "epoch": 0, "lo": lo, "hi": hi,
                         "count": np.concatenate([[0], counts])})
    row = gradient_lines(hist).iloc[0]
    assert -4.25 <= row["median"] <= -4.0 and row["zero_share"] == 0
    hist.loc[0, "count"] = 3000  # three quarters exact zeros: the median falls below every edge
    assert gradient_lines(hist).iloc[0]["median"] == -math.inf


@pytest.mark.parametrize("terms", [["update:data ratio", "dead unit", "saturated", "TV distance"]])
def test_glossary_has_the_asked_terms(terms):
    text = narrate_pages.glossary(terms)
    assert all(f"**{t}**" in text for t in terms)


def test_conclusion_keeps_the_lead_sentences_and_the_preset_caveat():
    loss = ["**sigmoid**'s training loss ends at 2.30 nats, next to ln 10 = 2.30"]
    ratio = ["**sigmoid**: the update:data ratio of Linear 1 (784→512) has a median of 1.0e-5, about 100× below the"]
    dead = ["**relu**: dead units in Linear 4 (256→128) grew from 1.2 % at initialisation to 5.1 % after training."]
    quick = narrate_compare.conclusion_compare("quick", loss, ratio, dead)
    assert "2.30 nats" in quick and "1.0e-5" in quick and "5.1 %" in quick and "PRESET=tutorial" in quick
    full = narrate_compare.conclusion_compare("tutorial", loss, ratio, dead, plateau="**The sigmoid story.** PLATEAU_STOP")
    assert "PLATEAU_STOP" in full and "95 % intervals" in full and "PRESET=tutorial" not in full


def test_tutorial_table_only_when_asked():
    s = _summary(ACC)
    assert "tutorial's published result, one seed (%)" not in seed_intervals.accuracy_display(s).columns
    table = seed_intervals.accuracy_display(s, reference={"tanh": 0.8759})
    assert table.loc[table["activation"] == "tanh", "tutorial's published result, one seed (%)"].item() == 87.59
    assert all("(%)" in c or "(percentage points)" in c or c in ("activation", "seeds") for c in table.columns)


def test_a_split_activation_shows_no_interval():
    table = seed_intervals.accuracy_display(_summary({"sigmoid": [0.1, 0.1, 0.79], "tanh": [0.879, 0.875, 0.883]}))
    ci = table.set_index("activation")["± 95 % CI (percentage points)"]
    assert ci["sigmoid"] == "seeds split" and ci["tanh"] == pytest.approx(0.99, abs=0.01)


def test_two_runs_say_which_way_the_gradients_differ():
    from gradflow.narrate_pages import two_run_sentences
    summary = pd.DataFrame({"run": ["run A", "run B"], "mean_pct": [10.0, 84.0], "half_pp": [0.0, 1.2], "seeds": [3, 3]})
    dist = pd.DataFrame({"stage": ["step 600", "step 600"], "quantity": ["grad", "grad"],
                         "layer": ["Linear 1 (784→512)", "Linear 5 (128→10, output)"], "distance": [0.97, 0.41],
                         "median_a": [-5.6, -2.0], "median_b": [-3.6, -2.1]})
    text = " ".join(two_run_sentences(summary, dist, "quick"))
    assert "run A's gradients are typically about 100× smaller than run B's" in text
    assert "2.5e-6 against 2.5e-4" in text and "At the same learning rate a smaller gradient takes a smaller" in text
    other_rates = " ".join(two_run_sentences(summary, dist, "quick", (0.01, 0.1)))
    assert "learning rates differ (0.01 and 0.1), so a smaller gradient need not take a smaller step" in other_rates
    assert "At the same learning rate" not in other_rates
    # two layers within 0.05: both named, each with its own direction (TV distance has none)
    tied = dist.assign(distance=[0.91, 0.88], median_a=[-5.8, -1.8], median_b=[-4.2, -3.4])
    text = " ".join(two_run_sentences(summary, tied, "quick"))
    assert "differ most in Linear 1 (784→512) and Linear 5 (128→10, output) (step 600): TV distances 0.91 and 0.88" in text
    assert "too close to call one the most different" in text and "differ most in Linear 1 (784→512) (step" not in text
    assert "In Linear 1 (784→512), run A's gradients are typically about 39× smaller than run B's (median of the nonzero " \
           "|dL/dW|, 1.6e-6 against 6.3e-5)" in text  # the factor of the numbers as printed
    assert "in Linear 5 (128→10, output), run A's gradients are typically about 40× larger than run B's" in text
    dist["median_b"] = [-5.5, -2.1]  # a tenth of a decade: no direction worth a sentence
    assert "smaller than" not in " ".join(two_run_sentences(summary, dist, "quick"))


def test_histogram_median_interpolates_inside_its_bin():
    h = pd.DataFrame({"lo": [0.0, 1.0, 2.0], "hi": [1.0, 2.0, 3.0], "count": [1, 2, 1]})
    assert histogram_tables.histogram_median(h) == pytest.approx(1.5)
    assert histogram_tables.histogram_median(h.assign(count=[3, 0, 1])) == pytest.approx(2 / 3)
    assert math.isnan(histogram_tables.histogram_median(h.assign(count=0)))


def test_a_run_whose_seeds_split_is_compared_by_its_seeds_not_its_interval():
    from gradflow.narrate_pages import two_run_sentences
    summary = pd.DataFrame({"run": ["run A", "run B"], "mean_pct": [33.1, 88.4], "half_pp": [99.4, 0.4],
                            "seeds": [3, 3], "min_pct": [10.0, 88.3], "max_pct": [79.3, 88.6]})
    text = " ".join(two_run_sentences(summary, pd.DataFrame(), "tutorial"))
    assert "Run A's 3 seeds split: from 10.0 % (chance) to 79.3 %, so its mean of 33.1 % describes none" in text
    assert "Every seed of run B (88.3 % and up) beats the best seed of run A (79.3 %)." in text
    assert "intervals overlap" not in text


def test_two_runs_say_which_layer_moved_most_over_training():
    steps = [0, 1, 4, 600]
    over = pd.DataFrame([{"layer": "layers.0", "step": s, "distance": d} for s, d in zip(steps, [0.91, 0.92, 0.95, 0.97])]
                        + [{"layer": "layers.8", "step": s, "distance": d} for s, d in zip(steps, [0.88, 0.95, 0.40, 0.41])])
    labels = {"layers.0": "Linear 1 (784→512)", "layers.8": "Linear 5 (128→10, output)"}
    said = narrate_layers.distance_trend_sentences(over, labels)
    assert said == ["Over training the runs' gradients in Linear 5 (128→10, output) grew more alike: TV distance 0.88 at "
                    "step 0, 0.41 at step 600, the largest change of any layer.",
                    "Linear 1 (784→512) stays between 0.91 and 0.97 throughout: the runs differ there from the first "
                    "step on."]
    flat = over.assign(distance=0.5)
    assert "stays within 0.15" in narrate_layers.distance_trend_sentences(flat, labels)[0]
    assert narrate_layers.distance_trend_sentences(None, labels) == []


def test_one_run_says_how_much_its_hidden_outputs_spread_out():
    std = pd.DataFrame([{"layer": k, "step": s, "value": v} for k, s, v in [
        ("layers.1", 0, 0.30), ("layers.1", 600, 0.90), ("layers.3", 0, 0.20), ("layers.3", 600, 1.00),
        ("layers.5", 0, 0.50), ("layers.5", 600, 0.55)]])
    labels = {"layers.1": "Linear 1 (784→512)", "layers.3": "Linear 2 (512→256)", "layers.5": "Linear 3 (256→256)"}
    said = narrate_layers.output_spread_sentences(std, labels)
    assert said == ["From step 0 to step 600 the outputs of Linear 2 (512→256) spread out 5× (std 0.2 → 1); "
                    "Linear 1 (784→512) widened by 1.5× or more too. Learning made the layers' outputs larger and "
                    "more varied than the initialisation set them."]
    narrow = std.assign(value=[0.9, 0.3, 0.5, 0.5, 0.5, 0.5])
    assert narrate_layers.output_spread_sentences(narrow, labels) == [
        "From step 0 to step 600 the outputs of Linear 1 (784→512) narrowed 3× (std 0.9 → 0.3)."]
    assert narrate_layers.output_spread_sentences(std[std["step"] == 0], labels) == []


def test_a_vanishing_gradient_at_init_is_set_against_what_the_slopes_alone_allow():
    grads = pd.DataFrame({"activation": "sigmoid", "layer": ["Linear 1", "Linear 5 (output)"],
                          "grad_std": [2.4e-6, 2.3e-2]})
    zeros = pd.DataFrame({"activation": "relu", "layer": ["Linear 5 (128→10, output)"], "zeros": [260],
                          "weights": [1280]})
    text = " ".join(narrate_init.init_gradient_sentences(grads, zeros, [784, 512, 256, 256, 128, 10],
                                                           {"sigmoid": 0.25}))
    assert "below the 3.9e-3 its slope alone allows" in text and "the same order as the 1.0e-4 measured" in text
    assert "(0.16 to 0.58 here)" in text  # sqrt(10 / (3·128)) and sqrt(256 / (3·256))
    assert "or the unit feeding it was, or the two were never on for the same image (the output layer's zeros " \
           "are all of the second kind" in text
    # no slope known, or a fade the slopes explain: no comparison
    assert "slope alone" not in " ".join(narrate_init.init_gradient_sentences(grads))
    assert narrate_init._slope_and_weights(3.9e-3, 0.25, [784, 512, 256, 256, 128, 10]) == ""


def test_sigmoid_outputs_at_the_steepest_point_are_not_called_saturated():
    acts = pd.DataFrame({"activation": "sigmoid", "lo": [0.4, 0.5, 0.9], "hi": [0.5, 0.6, 1.0], "count": [40, 50, 1]})
    text = " ".join(narrate_init.output_centre_sentences(acts))
    assert "sigmoid**'s typical output lies between 0.5 and 0.6" in text and "not because units saturate" in text
    far = acts.assign(lo=[0.9, 0.95, 0.0], hi=[0.95, 1.0, 0.1])
    assert narrate_init.output_centre_sentences(far) == []


def test_relus_zero_side_is_called_off_not_saturated():
    units = pd.DataFrame({"activation": ["relu", "tanh"], "layer": "Linear 3", "dead_pct": 0.0,
                          "saturated_pct": [53.0, 12.0]})
    text = " ".join(narrate_init.saturation_sentences(units))
    assert "relu: 53 % of Linear 3's values fall on its flat negative side" in text
    assert "not saturation in the tanh sense" in text and "tanh: 12 % of Linear 3's values are saturated" in text


def test_the_conclusion_joins_the_sections_into_a_cause_instead_of_repeating_them():
    flow = pd.DataFrame({"activation": "sigmoid", "layer": ["layers.0", "layers.8"], "step": 600,
                         "median": [-6.0, -2.0]})
    ratios = pd.DataFrame({"activation": "sigmoid", "layer": "layers.0", "step": [1, 600], "value": [1e-5, 1e-5]})
    story = narrate_layers.stuck_story(["sigmoid"], flow, ratios)
    assert "about 10,000× smaller than its output layer's" in story and "1.0e-5 of their size, 100× below" in story
    loss = ["**sigmoid**'s training loss ends at 2.30 nats, next to ln 10 = 2.30"]
    text = narrate_compare.conclusion_compare("quick", loss, ["... about 100× below the guide"], [], why_stuck=story)
    assert story in text and "2.30 nats" not in text and "100× below the guide" not in text
    healthy = flow.assign(median=[-2.5, -2.0])
    assert narrate_layers.stuck_story(["sigmoid"], healthy, ratios) == ""
    assert "never left chance" in story and "never learn features" in story
    # a preview watched it for 4 epochs: "never" is not what 4 epochs can say (the full recipe's sigmoid learns late)
    preview = narrate_layers.stuck_story(["sigmoid"], flow, ratios, preview_epochs=4)
    assert "did not leave chance in these 4 epochs" in preview and "hardly started to learn" in preview
    assert "never" not in preview


def test_a_slow_start_says_why_when_its_gradients_are_the_smallest():
    rows = [{"activation": a, "seed": 1, "epoch": e, "val_acc": v}
            for a, accs in {"swish": (0.35, 0.83), "relu": (0.75, 0.85), "tanh": (0.78, 0.85)}.items()
            for e, v in enumerate(accs, 1)]
    flow = pd.DataFrame([{"activation": a, "layer": k, "step": 0, "median": m + shift}
                         for a, shift in {"swish": -1.0, "relu": 0.0, "tanh": 0.2}.items()
                         for k, m in (("layers.0", -4.0), ("layers.8", -3.0))])
    text = " ".join(narrate_compare.slow_start_sentences(pd.DataFrame(rows), flow=flow))
    assert "swish** starts slowest" in text and "Why: at the first recorded step its weight gradients are the smallest" in text
    assert "typical size 3.2e-5" in text and "against 3.2e-4 to 5.0e-4" in text
    alike = flow.assign(median=-3.5)
    assert "Why:" not in " ".join(narrate_compare.slow_start_sentences(pd.DataFrame(rows), flow=alike))


def test_what_these_runs_show_agrees_in_number():
    assert narrate.heading(["x"], "these runs").startswith("**What these runs show.**")
    assert narrate.heading(["x"]).startswith("**What this run shows.**")


def test_relus_zeros_after_training_are_outputs_of_exactly_0_not_a_negative_side_on_the_figure():
    """The figure shows the outputs after the ReLU: what it draws is a spike at 0, and "off" is not "dead"."""
    sat = pd.DataFrame([{"activation": "relu", "layer": "layers.0", "step": s, "value": v} for s, v in ((0, 0.49), (9600, 0.68))])
    text = " ".join(narrate_layers.saturation_change_sentences(sat, {"layers.0": "Linear 1 (784→512)"}))
    assert "relu: at step 9600, 68 % of the outputs after Linear 1 (784→512) are exactly 0 (step 0: 49 %)" in text
    assert "not dead: a dead unit is off for every image" in text and "negative side" not in text


def test_a_late_figure_says_which_models_early_stopping_had_already_ended():
    rows = [{"activation": a, "seed": s, "epoch": e, "past_stop": e > stop}
            for a, s, stop in (("sigmoid", 42, 14), ("sigmoid", 43, 14), ("relu", 42, 50)) for e in range(1, 51)]
    m = pd.DataFrame(rows)
    note = narrate.past_stop_note(m, 9600, 50)
    assert note.startswith("Step 9,600 is in epoch 50, after early stopping had ended 2 of these 3 models (at epoch 14).")
    assert "not the checkpoints that were tested" in note
    assert narrate.past_stop_note(m, 2000, 11) == ""  # every model still counted
    assert "had ended all 2 of these models (at epoch 14)" in narrate.past_stop_note(m[m["activation"] == "sigmoid"], 9600, 50)
    assert "ended 3 of these 3" not in narrate.past_stop_note(m, 9750, 51)
    assert "ended all 3 of these models (between epochs 14 and 50)" in narrate.past_stop_note(m, 9750, 51)
    runs = m.rename(columns={"activation": "run"})
    assert "ended 2 of these 3 models" in narrate.past_stop_note(runs, 9600, 50, group="run")


def test_the_findings_key_defines_the_findings_in_its_table():
    key = narrate_findings.findings_key(["PLATEAU_STOP", "NOT_LEARNING", "PLATEAU_STOP"])
    assert key.count("**PLATEAU_STOP**:") == 1 and "early stopping ended a run on its initial plateau" in key
    assert "**NOT_LEARNING**: validation accuracy never left chance" in key and "README" not in key
    assert narrate_findings.findings_key([]) == narrate_findings.FINDINGS_KEY


def test_a_slow_first_epoch_is_no_slow_start():
    rows = [{"activation": "swish", "layer": "layers.0", "step": s, "epoch": 1, "value": v}
            for s, v in ((1, 3e-5), (4, 5e-5), (16, 2e-4))] + \
           [{"activation": "swish", "layer": "layers.0", "step": s, "epoch": 2 + s // 195, "value": 1e-3}
            for s in (200, 400, 600, 800)]
    assert "slow start" not in " ".join(narrate_layers.update_ratio_sentences(pd.DataFrame(rows), {}))


def test_swishs_saturated_values_include_its_dip():
    sat = pd.DataFrame([{"activation": "swish", "layer": "layers.0", "step": s, "value": v} for s, v in ((0, 0.02), (9600, 0.15))])
    text = " ".join(narrate_layers.saturation_change_sentences(sat, {"layers.0": "Linear 1"}))
    assert "15 % of Linear 1's values are saturated (step 0: 2 %): for swish that means a slope near 0, around its dip" in text


def test_an_activation_with_smaller_gradients_in_every_layer_is_named():
    """Page 2: swish's gradients sit 2-4x below relu's in every layer at initialisation (its slope near 0 is
    0.5): a smaller start, said apart from a vanishing gradient."""
    values = {"relu": [1.5e-4, 2e-4, 2e-4, 2.7e-4, 1e-3], "swish": [4.4e-5, 5.5e-5, 5.3e-5, 8.5e-5, 8e-4],
              "tanh": [4.6e-4, 6e-4, 6e-4, 9e-4, 3.3e-3], "leakyrelu": [1.6e-4, 2e-4, 2e-4, 2.8e-4, 1e-3]}
    grad_std = pd.DataFrame([{"activation": a, "layer": f"Linear {i + 1}", "grad_std": x}
                             for a, v in values.items() for i, x in enumerate(v)])
    text = " ".join(narrate_init.init_gradient_sentences(grad_std))
    assert "swish's gradients are 3.2–3.8× smaller than relu's in every hidden layer" in text
    assert "tanh's gradients" not in text and "leakyrelu's gradients" not in text
    no_relu = grad_std[grad_std["activation"] != "relu"]
    assert "smaller than relu's" not in " ".join(narrate_init.init_gradient_sentences(no_relu))


def test_two_run_conclusion_names_a_near_tie_as_a_tie():
    from gradflow.narrate_pages import two_run_conclusion
    summary = pd.DataFrame({"run": ["run A", "run B"], "mean_pct": [60.0, 84.0], "half_pp": [1.0, 1.2], "seeds": [3, 3]})
    dist = pd.DataFrame({"stage": ["step 0"] * 3, "quantity": ["grad"] * 3, "distance": [0.91, 0.88, 0.37],
                         "layer": ["Linear 1 (784→512)", "Linear 5 (128→10, output)", "Linear 3 (256→256)"]})
    said = " ".join(two_run_conclusion(summary, dist, pd.DataFrame(), "tutorial", ("sigmoid", "relu")))
    assert "largest differences are in Linear 1 (784→512) and Linear 5 (128→10, output) at step 0 (TV distances " \
           "0.91 and 0.88, a near tie)" in said
    alone = " ".join(two_run_conclusion(summary, dist.assign(distance=[0.91, 0.60, 0.37]), pd.DataFrame(), "tutorial",
                                        ("sigmoid", "relu")))
    assert "the largest difference is in Linear 1 (784→512) at step 0 (TV distance 0.91)" in alone


def test_page_1_says_what_one_signed_gradients_and_a_slope_above_1_mean():
    props = pd.DataFrame([{"activation": "swish", "max_slope": 1.0998, "left_slope": -0.03, "right_slope": 1.0,
                           "dead_share": 0, "mean_out": 0.21},
                          {"activation": "sigmoid", "max_slope": 0.25, "left_slope": 0.0066, "right_slope": 0.0066,
                           "dead_share": 0, "mean_out": 0.5}])
    text = " ".join(narrate_pages.activation_sentences(props))
    assert "zig-zag" in text  # why gradients of one sign slow learning, not only that they occur
    assert "swish's largest slope, 1.10, is a little above 1: through four such layers it could grow a gradient by " \
           "at most 1.46×" in text
    assert "largest slope, 0.25" not in text  # only slopes above 1 get that sentence


def test_recipe_phrase_counts_one_epoch_in_the_singular():
    config = {"run": {"optimizer": "sgd", "lr": 0.01, "batch_size": 256, "max_epochs": 1, "train_subset": 768}}
    assert narrate.recipe_phrase(config).endswith("3 steps per epoch, so its one epoch is 3 steps")
    config["run"]["max_epochs"] = 2
    assert narrate.recipe_phrase(config).endswith("so 2 epochs are 6 steps")


def test_two_run_conclusion_names_the_seeds_of_a_finding_without_nested_parentheses():
    from gradflow.narrate_pages import two_run_conclusion
    summary = pd.DataFrame({"run": ["run A", "run B"], "mean_pct": [60.0, 84.0], "half_pp": [1.0, 1.2], "seeds": [3, 3]})
    found = pd.DataFrame({"run": ["run A", "run A"], "finding": ["VANISHING_GRADIENT", "NOT_LEARNING"],
                          "layers": ["Linear 1 (784→512)", "whole model"],
                          "seeds": ["2 of 3 seeds (seeds 42, 43)", "3 of 3 seeds"], "in": ["run A only"] * 2})
    said = " ".join(two_run_conclusion(summary, pd.DataFrame(), found, "tutorial", ("sigmoid", "relu")))
    assert "VANISHING_GRADIENT (Linear 1 (784→512), seeds 42 and 43)" in said
    assert "NOT_LEARNING (whole model, 3 of 3 seeds)" in said
