"""The shared visual language: distinguishable colours (also for colour-blind readers), stable layer names."""
import itertools

import colorspacious
import numpy as np
import pytest

from gradflow import histogram_tables, style
from gradflow.models import BaseNetwork

VISION = [None, "deuteranomaly", "protanomaly"]  # severity 100 = full deuteranopia / protanopia


def _seen(color, cvd):
    space = "sRGB1" if cvd is None else {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
    return colorspacious.cspace_convert(np.asarray(color[:3], float), space, "CAM02-UCS")


def _min_distance(colors):
    worst = np.inf
    for cvd in VISION:
        seen = [_seen(c, cvd) for c in colors]
        for a, b in itertools.combinations(seen, 2):
            worst = min(worst, colorspacious.deltaE(a, b, input_space="CAM02-UCS"))
    return worst


def test_tutorial_activations_distinguishable_under_colour_blindness():
    colors = [style.activation_style(a)["color"] for a in style.TUTORIAL_ACTIVATIONS]
    assert len(set(colors)) == 6
    assert _min_distance(colors) >= style.MIN_DISTANCE_CAM02UCS


def test_the_test_can_fail():
    # red vs green: far apart for most readers, nearly one colour under deuteranopia
    assert _min_distance([(0.8, 0.2, 0.2), (0.2, 0.6, 0.2)]) < style.MIN_DISTANCE_CAM02UCS


@pytest.mark.parametrize("pair", [("broken", "fixed"), ("run A", "run B")])
def test_role_pairs_distinguishable(pair):
    assert _min_distance([style.ROLE_STYLES[r]["color"] for r in pair]) >= style.MIN_DISTANCE_CAM02UCS


def test_close_colour_pairs_differ_in_line_style():
    styles = {a: style.activation_style(a) for a in style.TUTORIAL_ACTIVATIONS}
    for a, b in itertools.combinations(style.TUTORIAL_ACTIVATIONS, 2):
        if _min_distance([styles[a]["color"], styles[b]["color"]]) < 20:
            assert styles[a]["linestyle"] != styles[b]["linestyle"], (a, b)


def test_activation_style_stable_and_deterministic_for_unknown_names():
    assert style.activation_style("relu") == style.activation_style("ReLU") == style.activation_style("relu-quick-ab12")
    assert style.activation_style("my_act") == style.activation_style("my_act")
    assert style.activation_style("my_act")["color"] in style.PALETTE


def test_layer_label_from_config_and_model_agree():
    cfg = {"input_size": 784, "hidden_sizes": [512, 256, 256, 128], "num_classes": 10}
    net = BaseNetwork("relu")
    assert style.layer_label(cfg, "layers.0") == "Linear 1 (784→512)"
    assert style.layer_label(cfg, "layers.1") == "Linear 1 (784→512)"  # the activation after Linear 1
    assert style.layer_label(cfg, "layers.8") == "Linear 5 (128→10, output)"
    assert style.layer_label({"model": cfg}, 4) == "Linear 3 (256→256)"
    for i in range(len(net.layers)):
        assert style.layer_label(net, f"layers.{i}") == style.layer_label(cfg, f"layers.{i}")
    assert style.layer_label(cfg, "<model>") == "whole model"


def test_layer_label_with_norm_and_dropout():
    cfg = {"input_size": 20, "hidden_sizes": [8], "num_classes": 3, "norm": "batch", "dropout": 0.2}
    # layers: Linear, BatchNorm, act, Dropout, Linear
    assert [style.layer_label(cfg, i) for i in range(5)] == [
        "Linear 1 (20→8)", "Linear 1 (20→8), batch norm", "Linear 1 (20→8)", "Linear 1 (20→8), dropout",
        "Linear 2 (8→3, output)"]
    assert style.layer_label(None, "layers.3") == "layers.3"


def test_titles_in_an_activation_colour_stay_readable_on_white():
    from gradflow.style import TUTORIAL_ACTIVATIONS, activation_style, text_colour

    def contrast_on_white(c):
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 1.05 / (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] + 0.05)

    for name in TUTORIAL_ACTIVATIONS:
        colour = activation_style(name)["color"]
        assert contrast_on_white(text_colour(colour)) >= 3.0, name
    pale = activation_style("swish")["color"]
    assert contrast_on_white(pale) < 3.0  # the pale pink is why text needs its own shade


def test_past_early_stop_continuations_cannot_be_read_as_an_activation_line():
    """The curve a stopped model keeps drawing is thin and faded, in its own colour: swish's own line is
    dotted, so a dotted continuation read as 'swish' (or 'swish stopped early')."""
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from gradflow import plots
    rows = [{"activation": act, "seed": s, "epoch": e, "val_acc": 0.5 + 0.05 * e, "past_stop": act == "relu" and e > 2}
            for act in ("relu", "swish") for s in (0, 1) for e in (1, 2, 3, 4)]
    fig = plots.plot_learning_curves(pd.DataFrame(rows), "val_acc")
    lines = fig.axes[0].lines
    tails = [ln for ln in lines if ln.get_alpha() == style.PAST_STOP_LINE["alpha"]]
    assert len(tails) == 1 and list(tails[0].get_xdata()) == [2, 3, 4]  # relu's, from its last own epoch
    assert tails[0].get_linestyle() == "-" and tails[0].get_linewidth() < 2
    swish = next(ln for ln in lines if ln.get_label() == "swish")
    assert swish.get_linestyle() == ":" and swish.get_alpha() is None  # the activation's own line is full strength
    # one of two seeds stopped: from there the mean mixes in epochs that never count, so it fades there
    rows = [{"activation": "sigmoid", "seed": s, "epoch": e, "val_acc": 0.1, "past_stop": s == 0 and e > 2}
            for s in (0, 1) for e in (1, 2, 3, 4)]
    lines = plots.plot_learning_curves(pd.DataFrame(rows), "val_acc").axes[0].lines
    solid = next(ln for ln in lines if ln.get_label() == "sigmoid")
    faded = [ln for ln in lines if ln.get_alpha() == style.PAST_STOP_LINE["alpha"]]
    assert list(solid.get_xdata()) == [1, 2] and list(faded[0].get_xdata()) == [2, 3, 4]


def test_overlay_titles_give_the_distance_of_every_value_not_only_the_drawn_bins():
    """Page 5 draws log10 |dL/dW| and so leaves out the exact zeros; the titles must give the distance its
    table gives (zeros included), else a figure and the table under it disagree."""
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from gradflow import plots
    zero = {"lo": -np.inf, "hi": -12.0}
    a = pd.DataFrame([{"layer": "L", **zero, "count": 50}, {"layer": "L", "lo": -3.0, "hi": -2.0, "count": 50}])
    b = pd.DataFrame([{"layer": "L", **zero, "count": 0}, {"layer": "L", "lo": -3.0, "hi": -2.0, "count": 100}])
    full = histogram_tables.histogram_distance(a, b)
    assert full == pytest.approx(0.5)
    drawn_a, drawn_b = a[a["lo"] > -np.inf], b[b["lo"] > -np.inf]
    assert histogram_tables.histogram_distance(drawn_a, drawn_b) == 0.0  # what the panel would say from its own bins
    fig = plots.plot_overlay(drawn_a, drawn_b, ("A", "B"), "t", "x", distances={"L": full})
    assert fig.axes[0].get_title().endswith("TV distance 0.50")


def _neighbour_steps(colors, cvd):
    """CAM02-UCS distance between each colour and the next, as a reader with ``cvd`` sees them."""
    seen = [_seen(c, cvd) for c in colors]
    return [colorspacious.deltaE(a, b, input_space="CAM02-UCS") for a, b in zip(seen, seen[1:])]


def _layers_apart(colors) -> bool:
    floor = style.MIN_LAYER_STEP_CAM02UCS
    return (min(_neighbour_steps(colors, None)) >= floor["normal"]
            and all(min(_neighbour_steps(colors, cvd)) >= floor["colour-blind"] for cvd in VISION[1:]))


@pytest.mark.parametrize("keys", [
    [f"layers.{i}" for i in (0, 2, 4, 6, 8)],  # the tutorial's five Linears (gradient figures)
    [f"layers.{i}" for i in (1, 3, 5, 7)],  # its four hidden outputs (activation histograms)
    ["layers.0", "layers.2", "layers.4"], ["layers.0", "layers.2"]])
def test_neighbouring_layers_are_told_apart_also_under_colour_blindness(keys):
    from gradflow.flow_plots import layer_colours
    colors = list(layer_colours(reversed(keys)).values())  # sorted input -> output whatever the key order
    assert list(layer_colours(keys)) == keys
    assert _layers_apart(colors)
    # light near the input, dark at the output, as the page texts say (lightness J' also survives CVD)
    for cvd in VISION:
        lightness = [_seen(c, cvd)[0] for c in colors]
        assert lightness == sorted(lightness, reverse=True), cvd


def test_the_layer_test_fails_on_the_palette_reviewers_could_not_read():
    import matplotlib.pyplot as plt
    cmap = plt.get_cmap("viridis_r")  # the former layer scale: Linear 2, 3, 4 green, teal, blue
    old = [cmap(0.15 + 0.8 * i / 4) for i in range(5)]
    assert not _layers_apart(old)
    middle = _neighbour_steps(old[1:4], None)  # Linear 2-3 and 3-4, normal vision
    assert max(middle) < style.MIN_LAYER_STEP_CAM02UCS["normal"]


def test_the_input_layer_line_stays_visible_on_white():
    """Spreading the scale by starting it at white would pass the distance test and lose the first layer."""
    def contrast_on_white(c):
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c[:3]]
        return 1.05 / (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] + 0.05)

    assert contrast_on_white(style.layer_shades(5)[0]) >= 1.5


def test_learning_curve_band_spans_the_seeds_not_a_t_interval():
    """With 3 seeds a 95 % t-interval draws values no seed had (page 3's sigmoid loss band reached 2.8
    while every seed stayed below 2.31); the band is the seeds' lowest to highest value."""
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from gradflow import plots
    losses = {0: [2.30, 2.30, 0.5], 1: [2.30, 2.30, 2.29]}  # epoch 2: one seed has left the plateau
    rows = [{"activation": "sigmoid", "seed": s, "epoch": e, "train_loss": losses[e - 1][s] if e < 3 else 1.0,
             "past_stop": False} for s in range(3) for e in (1, 2, 3)]
    ax = plots.plot_learning_curves(pd.DataFrame(rows), "train_loss").axes[0]
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].max(), 2.30) and np.isclose(band[:, 1].min(), 0.5)


def test_a_one_epoch_learning_curve_is_drawn_as_a_point():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from gradflow import plots
    rows = [{"activation": "relu", "seed": s, "epoch": 1, "val_acc": 0.5 + 0.1 * s, "past_stop": False} for s in (0, 1)]
    line = next(ln for ln in plots.plot_learning_curves(pd.DataFrame(rows), "val_acc").axes[0].lines
                if ln.get_label() == "relu")
    assert line.get_marker() == "o"
