"""One visual language for every page: a colour and line style per activation, role colours, layer names.

Colours come from seaborn's ``colorblind`` palette. The six tutorial activations get six of its
colours chosen so that every pair stays apart under simulated deuteranopia and protanopia
(``tests/test_style.py`` checks it with colorspacious); the line style is a second channel, so the
two closest pairs (sigmoid/tanh, relu/elu) also differ in dash pattern. Any other activation gets a
deterministic colour and style from its name, the same in every figure and every session.

Layers are named the same way on every page, table and finding: ``Linear 1 (784→512)``. An
activation layer is named after the Linear it follows (its units are that Linear's outputs), so
"dead units in Linear 3 (256→256)" and "Linear 3's gradient" talk about the same layer.
"""
from __future__ import annotations

import re
import zlib

import seaborn as sns

# seaborn "colorblind": 0 blue, 1 orange, 2 green, 3 vermillion, 4 purple, 5 brown, 6 pink, 7 grey,
# 8 yellow, 9 sky blue.
PALETTE = [tuple(float(v) for v in c) for c in sns.color_palette("colorblind", 10)]

# The smallest CAM02-UCS distance (ΔE') any two tutorial colours keep under normal vision and full
# deuteranopia/protanopia. One ΔE' is about one just-noticeable difference for large patches; thin
# lines and small markers need several times more (Stone & Szafir 2018 measured 4-10x for small
# marks), so 10 is the floor below which two curves can no longer be told apart by colour alone.
MIN_DISTANCE_CAM02UCS = 10.0

# The smallest text size (points) in any figure: at the pages' figure.dpi of 90 it is 11 px, next to
# the page's 16 px text; the 7-8 pt labels and legends used before were too small for course reviewers.
READABLE_PT = 9
# The width a page gives an output (1100 px less padding: 1090 px, measured in Chromium). A wider image is scaled
# down to fit, and its text with it. At the pages' figure.dpi of 90, PAGE_WIDTH_IN leaves room for the few
# pixels of padding the inline backend's tight bounding box adds.
OUTPUT_WIDTH_PX = 1090
PAGE_WIDTH_IN = 11.5

_ACTIVATION_STYLES = {
    # name: (palette index, linestyle, marker)
    "sigmoid": (3, "-", "o"),
    "tanh": (1, "--", "s"),
    "relu": (0, "-", "^"),
    "leakyrelu": (2, "-.", "v"),
    "elu": (4, "--", "D"),
    "swish": (6, ":", "P"),
    "gelu": (5, "-.", "X"),
    "mish": (9, "--", "*"),
    "softplus": (7, ":", "h"),
    "selu": (8, "-", "p"),
    "identity": (7, "-", "."),
}
TUTORIAL_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish")
# epochs a model trained only because its batch kept going (past its early stop): thin and faded, in
# its own colour; not dotted, which is swish's own line style
PAST_STOP_LINE = {"ls": "-", "lw": 1.0, "alpha": 0.4}
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "p")

# Roles keep their colour on every page: a broken run is vermillion, a fixed one blue; in a
# two-run comparison run A is sky blue and run B brown, whatever their activations.
ROLE_STYLES = {
    "broken": {"color": PALETTE[3], "linestyle": "--", "marker": "x"},
    "fixed": {"color": PALETTE[0], "linestyle": "-", "marker": "o"},
    "run A": {"color": PALETTE[9], "linestyle": "-", "marker": "o"},
    "run B": {"color": PALETTE[5], "linestyle": "--", "marker": "s"},
}

# Neutral colours for things that are not an activation or a role (guides, references, chance).
GUIDE_COLOR = "0.35"
STAGE_STYLES = {  # before / after training, for bars that compare stages of one run
    "at initialisation": {"color": "0.65", "hatch": ""},
    "after training": {"color": "0.25", "hatch": ""},
}

# Layers get one sequential scale, light (input side) to dark (output side), as the page texts say.
# Neighbouring layers are drawn as thin lines that cross and overlap, so they need to sit much further
# apart than MIN_DISTANCE_CAM02UCS: the earlier viridis_r range (0.15-0.95) kept only ΔE' 24 between
# neighbours of the tutorial's five Linear layers (15 under deuteranopia), and course reviewers could not
# tell Linear 2, 3 and 4 apart (green, teal, blue). seaborn's "inferno" runs yellow, orange, red, purple,
# black: lightness and hue both change at every step, and lightness survives colour-vision deficiency.
# The range starts at 0.15, not 0, so the input layer stays a visible orange-yellow on white, not pale.
LAYER_PALETTE, LAYER_RANGE = "inferno_r", (0.15, 1.0)
# The smallest CAM02-UCS distance between neighbouring layers for networks of up to five layers (the
# tutorial's five Linears and four hidden outputs): normal vision, then simulated deuteranopia/protanopia.
# inferno_r over LAYER_RANGE keeps 28.8 and 20.0 there; the old viridis_r range failed both for five layers.
# Deeper networks get smaller steps; one scale can hold only so many clearly different shades.
MIN_LAYER_STEP_CAM02UCS = {"normal": 27.0, "colour-blind": 18.0}


def layer_shades(n: int) -> list[tuple]:
    """``n`` colours (RGBA), light (first layer, input side) to dark (last layer, output side)."""
    cmap = sns.color_palette(LAYER_PALETTE, as_cmap=True)
    lo, hi = LAYER_RANGE
    return [tuple(float(v) for v in cmap(lo + (hi - lo) * i / max(1, n - 1))) for i in range(n)]


def _base_name(name) -> str:
    """'relu-quick-1a2b' or 'ReLU' -> 'relu' (the activation a run or label is named after)."""
    return str(name).split("-")[0].strip().lower()


def activation_style(name) -> dict:
    """Colour, line style and marker of an activation, the same in every figure.

    Unknown names (your own activations) get a deterministic style from a hash of the name.
    """
    key = _base_name(name)
    if key in _ACTIVATION_STYLES:
        index, linestyle, marker = _ACTIVATION_STYLES[key]
    else:
        h = zlib.crc32(key.encode())
        index, linestyle, marker = h % len(PALETTE), _LINESTYLES[(h // 10) % 4], _MARKERS[(h // 40) % len(_MARKERS)]
    return {"color": PALETTE[index], "linestyle": linestyle, "marker": marker}


def activation_color(name):
    return activation_style(name)["color"]


def text_colour(colour, max_luminance: float = 0.30) -> tuple:
    """``colour`` darkened, hue kept, until text in it reads on white (WCAG contrast 3:1 and more, i.e.
    relative luminance at most 0.30): seaborn's pale pink (swish) is a fine line but an unreadable title."""
    def luminance(c):
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    c = tuple(float(v) for v in colour[:3])
    while luminance(c) > max_luminance:
        c = tuple(0.92 * v for v in c)
    return c


def role_style(role: str) -> dict:
    if role not in ROLE_STYLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLE_STYLES)}")
    return dict(ROLE_STYLES[role])


# --------------------------------------------------------------------------- layer names

_SPECIAL = {"<model>": "whole model", "<input>": "input", "<output>": "output", "<root>": "whole model"}


def _layout_from_config(config: dict) -> list[tuple[str, tuple]]:
    """The kinds of BaseNetwork's ``layers`` modules in order, rebuilt from its config (no model needed)."""
    sizes = [int(config.get("input_size", 784))] + [int(h) for h in config.get("hidden_sizes", [])]
    norm, dropout = config.get("norm", "none") or "none", float(config.get("dropout", 0) or 0)
    out: list[tuple[str, tuple]] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out.append(("linear", (fan_in, fan_out)))
        if norm != "none":
            out.append(("norm", (norm, fan_out)))
        out.append(("act", (fan_out,)))
        if dropout > 0:
            out.append(("dropout", (fan_out,)))
    out.append(("linear", (sizes[-1], int(config.get("num_classes", 10)))))
    if config.get("output_act"):
        out.append(("outact", (int(config.get("num_classes", 10)),)))
    return out


def _layout_from_module(model) -> list[tuple[str, tuple]] | None:
    import torch.nn as nn  # only when a model is given: a table-only page need not import torch here

    seq = getattr(model, "layers", None)
    if not isinstance(seq, nn.Sequential):
        return None
    out: list[tuple[str, tuple]] = []
    seen_linear = 0
    for m in seq:
        if isinstance(m, nn.Linear):
            out.append(("linear", (m.in_features, m.out_features)))
            seen_linear += 1
        elif isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
            out.append(("norm", ("batch" if isinstance(m, nn.BatchNorm1d) else "layer", 0)))
        elif isinstance(m, nn.Dropout):
            out.append(("dropout", (0,)))
        else:
            out.append(("act", (0,)))
    return out


def _layout(model_or_config):
    if model_or_config is None:
        return None
    if isinstance(model_or_config, dict):
        cfg = model_or_config.get("model", model_or_config)  # a run's config.json holds the model's under "model"
        return _layout_from_config(cfg) if "hidden_sizes" in cfg else None
    return _layout_from_module(model_or_config)


def layer_label(model_or_config, layer_key) -> str:
    """One name per layer on every page: ``Linear 1 (784→512)``.

    model_or_config -- a BaseNetwork, its config dict (or a run config holding it under "model"),
                       or None (then only the index is known: ``Linear 1``-style names need it)
    layer_key       -- the recorder's key (``layers.0``), its integer index, or a special key
                       (``<model>`` -> "whole model")
    """
    key = str(layer_key)
    if key in _SPECIAL:
        return _SPECIAL[key]
    m = re.fullmatch(r"(?:layers\.)?(\d+)(?:\.weight|\.bias)?", key)
    layout = _layout(model_or_config)
    if m is None or layout is None:
        return key
    index = int(m.group(1))
    if index >= len(layout):
        return key
    linears = [i for i, (kind, _) in enumerate(layout) if kind == "linear"]
    n_linear = len(linears)
    # the Linear this module belongs to: itself, or the last Linear before it
    owner = max(i for i in linears if i <= index) if any(i <= index for i in linears) else linears[0]
    number = linears.index(owner) + 1
    fan_in, fan_out = layout[owner][1]
    name = f"Linear {number} ({fan_in}→{fan_out}{', output' if number == n_linear else ''})"
    kind = layout[index][0]
    if kind == "norm":
        return f"{name}, {layout[index][1][0]} norm"
    if kind == "dropout":
        return f"{name}, dropout"
    if kind == "outact":
        return f"{name}, output activation"
    return name


def two_lines(label: str) -> str:
    """"Linear 5 (128→10, output)" as "Linear 5\n(128→10, output)": a figure's tick label that does not run
    into its neighbour's."""
    return str(label).replace(" (", "\n(", 1)


def layer_labels(model_or_config, keys) -> dict:
    """{key: label} for many keys at once (to map a table's ``layer`` column)."""
    return {k: layer_label(model_or_config, k) for k in dict.fromkeys(keys)}


def layer_order(key) -> int:
    """Sort key: forward order of ``layers.N`` keys; special keys last."""
    m = re.fullmatch(r"(?:layers\.)?(\d+).*", str(key))
    return int(m.group(1)) if m else 10_000
