"""The answer keys: each page's "Predict, then look" answers come from the numbers planted in its tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradflow import answer_keys, narrate_pages


def test_folded_answers_hold_their_html_inside_the_details():
    html = narrate_pages.answers(["**sigmoid**: slow", "ln 10"])
    assert html.startswith('<details class="answers"><summary>Check your predictions</summary>')
    assert html.rstrip().endswith("</details>")
    assert "\n\n" not in html  # a blank line would end the HTML block and spill the answers out of it
    body = html[html.index("</summary>"):html.index("</details>")]
    assert "<li><strong>sigmoid</strong>: slow</li>" in body and "<li>ln 10</li>" in body
    single = narrate_pages.answers(["only one"])
    assert "<ol>" not in single and "only one" in single
    assert narrate_pages.questions(["one?"]) == "**Predict, then look.** one?"


def test_slope_answers_name_the_flattest_the_dead_range_and_a_sign_change():
    props = pd.DataFrame({"activation": ["sigmoid", "relu", "tanh", "swish"], "max_slope": [0.25, 1.0, 1.0, 1.1],
                          "dead_share": [0.0, 0.5, 0.0, 0.0]})
    x = np.linspace(-5, 5, 101)
    curves = pd.concat([pd.DataFrame({"activation": "sigmoid", "x": x, "dy": 0.2}),
                        pd.DataFrame({"activation": "relu", "x": x, "dy": (x > 0).astype(float)}),
                        pd.DataFrame({"activation": "tanh", "x": x, "dy": 0.5}),
                        pd.DataFrame({"activation": "swish", "x": x, "dy": np.where(x < -1.3, -0.02, 0.5)})])
    first, second = answer_keys.slope_answers(props, curves)
    assert "**sigmoid**" in first and "0.25" in first and "3.9e-3" in first
    assert "**relu** is 0 on a whole range (50 %" in second and "tanh" not in second
    assert "**swish**'s slope is exactly 0 at one point, x ≈ -1.4" in second and "The others never reach 0" in second
    _, none = answer_keys.slope_answers(props.assign(dead_share=0.0), curves[curves["activation"] != "swish"])
    assert none.startswith("None")
    # a student's relu and tanh alone: both peak at slope 1, and 1 to the fourth is 1, not "1.0e0"
    tie, _ = answer_keys.slope_answers(props[props["activation"].isin(["relu", "tanh"])], curves)
    assert tie.startswith("**relu** and **tanh**, whose slope is at most 1.00") and "by 1 or less" in tie


def test_activation_sentences_say_where_a_slope_is_zero_and_agree_in_number():
    props = pd.DataFrame({"activation": ["relu", "clip2", "tanh", "elu"], "max_slope": [1.0, 1.0, 1.0, 1.0],
                          "left_slope": [0.0, 0.0, 1.8e-4, 6.7e-3], "right_slope": [1.0, 0.0, 1.8e-4, 1.0],
                          "dead_share": [0.5, 0.6, 0.0, 0.0], "mean_out": [0.4, 0.0, 0.0, 0.16]})
    text = " ".join(narrate_pages.activation_sentences(props))
    assert "relu's slope is exactly 0 on 50 % of the range (all negative inputs)" in text
    assert "clip2's slope is exactly 0 on 60 % of the range (large inputs of either sign): a unit whose input " \
           "stays there" in text
    assert "clip2 and tanh flatten out on both sides: at x = ±5 their slope" in text
    alone = " ".join(narrate_pages.activation_sentences(props[props["activation"] == "tanh"]))
    assert "tanh flattens out on both sides: at x = ±5 its slope" in alone  # one activation: singular
    assert "elu flattens out on the negative side only" in text
    assert "far from 0 for relu (0.40), and smaller but still positive for elu (0.16)" in text


def _grad_std(act, first, last):
    return pd.DataFrame({"activation": act, "layer": ["L1", "L2", "L3"], "grad_std": [first, 1e-3, last]})


def test_init_answers_compare_the_measured_ratio_with_the_slopes_bound():
    table = pd.concat([_grad_std("sigmoid", 2e-6, 2e-2), _grad_std("relu", 1e-3, 1e-2)])
    sig, relu = answer_keys.init_answers(table, hidden_layers=4)
    assert "at least 256-fold" in sig and "1.0e-4" in sig and "10,000× smaller" in sig and "weights" in sig
    assert relu.startswith("Yes, but far less") and "0.1 of the output layer's" in relu and "10× smaller" in relu
    close = answer_keys.init_answers(_grad_std("sigmoid", 4e-5, 1e-2), hidden_layers=4)[0]
    assert "close to what the slopes predict" in close
    assert answer_keys.init_questions(["tanh"], 4) == []
    asked = answer_keys.init_questions(["relu", "sigmoid"], 3)
    assert len(asked) == 2 and "3 sigmoid layers" in asked[0]


def _curves(act, seed, losses, stop=None):
    epochs = range(1, len(losses) + 1)
    return pd.DataFrame({"activation": act, "seed": seed, "epoch": list(epochs), "train_loss": losses,
                         "val_acc": [0.1 if act == "sigmoid" else 0.8] * len(losses),
                         "past_stop": [stop is not None and e > stop for e in epochs]})


def test_curve_answers_count_the_seeds_at_chance_and_on_the_chance_line():
    chance = math.log(10)
    results = pd.DataFrame({"activation": ["sigmoid"] * 3 + ["relu"] * 3, "seed": [1, 2, 3] * 2,
                            "test_acc": [0.10, 0.10, 0.79, 0.88, 0.88, 0.89]})
    metrics = pd.concat([_curves("sigmoid", 1, [chance, chance, 0.5], stop=2), _curves("sigmoid", 2, [chance] * 3),
                         _curves("sigmoid", 3, [chance, 1.0, 0.6]), _curves("relu", 1, [1.0, 0.4, 0.3]),
                         _curves("relu", 2, [1.0, 0.4, 0.3]), _curves("relu", 3, [1.0, 0.4, 0.3])])
    stuck, loss = answer_keys.curve_answers(results, metrics, plateau_told=True)
    assert "Here **sigmoid** starts slowest: after epoch 1 its validation accuracy is 10.0 %" in stuck
    assert "the story below the figure" in stuck
    assert "A preview's few epochs" in answer_keys.curve_answers(results, metrics, preview=True)[0]
    assert "story" not in answer_keys.curve_answers(results, metrics)[0]
    assert "2 of 3 sigmoid seeds ended at chance" in stuck and "79.0 %" in stuck and "relu seeds" not in stuck
    # seed 1 reached 0.5 only after its own stop: it ended its own training on the line
    assert "2.30 nats" in loss and "2 of 3 sigmoid seeds" in loss
    learned, below = answer_keys.curve_answers(results.assign(test_acc=0.85), metrics[metrics["activation"] == "relu"])
    assert "ended at chance" not in learned and "every seed's training loss ended below it" in below


def _flow(step, epoch, medians):
    return pd.DataFrame({"layer": ["layers.0", "layers.2", "layers.4"], "step": step, "epoch": epoch,
                         "median": medians})


def test_layer_answers_read_up_to_the_first_early_stop():
    labels = {"layers.0": "Linear 1", "layers.2": "Linear 2", "layers.4": "Linear 3 (output)"}
    # the first layer starts 100× below the output layer and catches up by epoch 3; epoch 5 is past a stop
    flow = pd.concat([_flow(0, 1, [-6, -5, -4]), _flow(400, 3, [-4.1, -4.5, -4]), _flow(800, 5, [-7, -5, -4])])
    ratios = pd.DataFrame({"layer": "layers.0", "step": [0, 400, 800], "value": [1e-6, 1e-5, 1e-3]})
    gaps, ratio = answer_keys.layer_answers(flow, ratios, labels, last_epoch=3)
    assert "At step 0 the layer with the smallest median gradient (exact zeros included) is Linear 1" in gaps
    assert "100× smaller" in gaps and "At step 400 (epoch 3" in gaps and "in Linear 2" in gaps
    assert "about the size of the output layer's" in gaps and "The gap shrank." in gaps
    assert "up to 400 is 1.0e-5" in ratio and "below the healthy 1e-3: the layer barely learns" in ratio
    assert "(step 1) is at 1.0e-5" in ratio  # step 0 is not drawn on the log axis
    grew, _ = answer_keys.layer_answers(flow, ratios, labels, last_epoch=5)
    assert "At step 800 (epoch 5, the last recorded step)" in grew and "The gap grew." in grew


def test_two_run_answers_name_the_most_different_layer_per_stage():
    dist = pd.DataFrame({"stage": ["step 0"] * 3 + ["step 90"] * 3, "layer": ["A", "B", "C"] * 2,
                         "distance": [0.9, 0.4, 0.7, 0.2, 0.3, 0.1]})
    (text,) = answer_keys.two_run_answers(dist)
    assert "At step 0: **A** (TV distance 0.90); the closest is B (0.40)" in text
    assert "At step 90: **B**" in text and "from 0.67 to 0.20" in text and "more alike" in text
    tie = dist.assign(distance=[0.9, 0.4, 0.7, 0.36, 0.39, 0.21])
    (close,) = answer_keys.two_run_answers(tie)
    assert "At step 90 the layers lie between 0.21 and 0.39" in close and "too close to name one" in close
    # 0.67 -> 0.72: a change of a few hundredths in an average over layers is not called a trend outright
    (small,) = answer_keys.two_run_answers(dist.assign(distance=[0.9, 0.4, 0.7, 0.8, 0.65, 0.71]))
    assert "from 0.67 to 0.72: the runs grew a little more different (a change this small" in small


def test_sweep_answers_pick_each_settings_largest_change():
    pairs = pd.DataFrame({"axis": ["act", "init", "init"], "from": ["relu", "default", "default"],
                          "to": ["sigmoid", "kaiming", "kaiming"], "where": ["init=default", "act=sigmoid", "act=relu"],
                          "change (pp)": [-55.0, 40.0, 0.3], "told apart": [False, False, False],
                          "split": [True, True, False], "_chance": [(0, 2), (2, 0), (0, 0)],
                          "at chance, from": ["0 of 3", "2 of 3", "0 of 3"], "at chance, to": ["2 of 3", "0 of 3", "0 of 3"]})
    (text,) = answer_keys.sweep_answers(pairs)
    # the largest change overall comes first, whatever its setting; then each other setting's largest
    assert text.startswith("The largest: act from relu to sigmoid, where init=default: -55.0 percentage points")
    assert "The largest init change: init from default to kaiming, where act=sigmoid: +40.0 percentage points" in text
    assert "seeds split" in text and "act=relu" not in text and "tell 0 apart" in text
    assert "counted as seeds at chance, it goes from 2 of 3 to 0 of 3" in text
    (only_act,) = answer_keys.sweep_answers(pairs[pairs["axis"] == "act"].assign(split=False, **{"told apart": True}))
    assert "act from relu to sigmoid" in only_act and "and the seeds tell it apart" in only_act
    assert "The largest init change" not in only_act
    assert answer_keys.sweep_answers(pairs.iloc[0:0])[0].startswith("This grid has no two cells")
