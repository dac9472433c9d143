"""Figures read at the size the reports show them: activations of different ranges each get an x axis that
fits them, and page 5's histograms fit the page's text column with text no smaller than READABLE_PT."""
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gradflow import flow_plots, notebook_helpers, plots, style

EDGES = np.linspace(-5, 5, 101)  # the recorder's activation bins: 0.1 wide over ±5


def _outputs(activation, values):
    counts, _ = np.histogram(values, EDGES)
    return pd.DataFrame({"activation": activation, "layer": "layers.1", "lo": EDGES[:-1], "hi": EDGES[1:],
                         "count": counts})


@pytest.fixture(autouse=True)
def _headless():
    matplotlib.use("Agg")
    yield
    plt.close("all")


def test_each_activation_panel_spans_its_own_values_on_the_shared_bins():
    rng = np.random.default_rng(0)
    hist = pd.concat([_outputs("sigmoid", rng.uniform(0, 1, 2000)), _outputs("tanh", rng.uniform(-1, 1, 2000)),
                      _outputs("relu", rng.exponential(1.0, 2000).clip(0, 4.95))], ignore_index=True)
    fig = flow_plots.plot_layer_distributions(hist, {}, "t", "activation output value", log_y=True, own_x=True)
    sigmoid, tanh, relu = fig.axes[:3]
    # within a few percent of the span around where the values are, not the ±5 of every bin
    assert sigmoid.get_xlim() == pytest.approx((-0.04, 1.04))
    assert tanh.get_xlim() == pytest.approx((-1.08, 1.08))
    assert relu.get_xlim()[0] == pytest.approx(-0.2) and relu.get_xlim()[1] > 4.9
    # the bins drawn are still the recorder's shared ones
    assert np.allclose(sigmoid.patches[0].get_path().vertices[:, 0].min(), -5)
    assert "each panel's x axis spans its own values" in fig.get_supxlabel()


def test_without_own_x_the_panels_share_one_axis():
    """Page 4 sets 'at initialisation' beside 'after training' for one activation: one axis there."""
    rng = np.random.default_rng(0)
    hist = pd.concat([_outputs("sigmoid", rng.uniform(0, 1, 500)), _outputs("relu", rng.exponential(1.0, 500))])
    fig = flow_plots.plot_layer_distributions(hist, {}, "t", "activation output value")
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()
    assert fig.get_supxlabel() == "activation output value"


def _gradients(mu):
    rng = np.random.default_rng(1)
    edges = np.linspace(-10, 2, 49)
    rows = [pd.DataFrame({"layer": f"layers.{2 * i}", "lo": edges[:-1], "hi": edges[1:],
                          "count": np.histogram(rng.normal(mu, 0.7, 2000), edges)[0]}) for i in range(5)]
    return pd.concat(rows, ignore_index=True)


def test_two_run_histograms_fit_the_page_and_keep_their_text_readable():
    """Page 5: five layers in one row made a 14.5-inch figure that the page shrank, its 7-8 pt text with it."""
    fig = plots.plot_overlay(_gradients(-5), _gradients(-4), ("run A: sigmoid", "run B: relu"), "title", "x label")
    assert fig.get_size_inches()[0] <= plots.PAGE_WIDTH_IN
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= plots.READABLE_PT
    # the legend sits in the empty sixth cell, not over a layer's histograms
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 5 and all(ax.get_legend() is None for ax in panels)
    assert sum(ax.get_legend() is not None for ax in fig.axes) == 1
    # the panel above the empty cell shows its own x tick labels: nothing below it does
    assert any(label.get_visible() and label.get_text() for label in panels[2].get_xticklabels())


ROOT = Path(__file__).resolve().parents[1]
SIZE_LITERAL = re.compile(r"\b(?:fontsize|labelsize)\s*=\s*(\d+(?:\.\d+)?)")


def test_no_figure_text_is_set_below_the_readable_size():
    """Every size written into the pages' plotting code, and the defaults every page starts from, are at least
    READABLE_PT: 7-8 pt legends, tick labels and notes read as specks beside the page's text."""
    sources = [*ROOT.glob("gradflow/*.py"), *ROOT.glob("notebooks/*.py")]
    too_small = [f"{p.name}: {m.group(0)}" for p in sources for m in SIZE_LITERAL.finditer(p.read_text())
                 if float(m.group(1)) < style.READABLE_PT]
    assert not too_small
    with matplotlib.rc_context():
        notebook_helpers.setup_display()
        sizes = {k: matplotlib.rcParams[k] for k in ("axes.titlesize", "axes.labelsize", "legend.fontsize",
                                                     "xtick.labelsize", "ytick.labelsize", "figure.titlesize")}
    assert all(isinstance(v, (int, float)) and v >= style.READABLE_PT for v in sizes.values()), sizes
