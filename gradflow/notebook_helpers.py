"""What every report notebook does the same way: parameters, display set-up, stored runs, one batch.

Kept out of the notebooks so a fix lands once and the cells stay about the subject:

- parameters arrive as papermill users pass them (``-p activations relu,tanh``, ``-p seeds 42``,
  ``-y "seeds: [42, 43]"``) and are turned into the types the notebook declares, or refused in one
  line that says what is accepted (:func:`as_list`, :func:`as_int`, :func:`as_bool`);
- reports read the run store and never train: :func:`stored_comparison` loads the runs or says
  which are missing and the one command that trains them;
- :func:`record_one_batch` puts a network through one batch inside a :class:`gradflow.Recorder`,
  so every page uses the recorder's definitions of dead and saturated.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pandas as pd

from . import store, style
from .config import PRESETS, make_config


class ParameterError(ValueError):
    """A notebook parameter that cannot be used; the message is one line."""


# --------------------------------------------------------------------------- parameters


def _parse_text(value: str):
    text = value.strip()
    if text.startswith("[") or text.startswith("("):
        import yaml  # papermill depends on PyYAML; YAML reads "[42, 43]" and "[relu, tanh]" alike

        try:
            return yaml.safe_load(text.replace("(", "[").replace(")", "]"))
        except yaml.YAMLError:
            return None
    return [part for part in text.replace(",", " ").split() if part]


def as_list(value, name: str, item=str, distinct: bool = False) -> list:
    """A list parameter from a list, a comma/space-separated string, a YAML list or a single value.

    ``item`` is ``str`` or ``int``. Refuses booleans and non-integral numbers for ``int`` items;
    ``distinct`` refuses repeats (seeds).
    """
    example = "42,43 or [42, 43]" if item is int else "relu,tanh or [relu, tanh]"
    what = "integers" if item is int else "names"
    if value is None:
        return []
    raw = _parse_text(value) if isinstance(value, str) else value
    if raw is None:
        raise ParameterError(f"{name}: cannot read {value!r}; pass {what} like {example}")
    if not isinstance(raw, (list, tuple)):
        raw = [raw]
    out = []
    for v in raw:
        if item is int:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ParameterError(f"{name} must be {what} like {example}, got {value!r}")
            try:
                out.append(int(v))
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be {what} like {example}, got {value!r}") from None
        else:
            if not isinstance(v, (str, int, float)) or isinstance(v, bool) or str(v).strip() == "":
                raise ParameterError(f"{name} must be {what} like {example}, got {value!r}")
            out.append(str(v).strip())
    if distinct and len(set(out)) != len(out):
        raise ParameterError(f"{name} must be distinct, got {out}")
    return out


def as_int(value, name: str, minimum: int | None = None) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ParameterError(f"{name} must be at least {minimum}, got {number}")
    return number


def as_float(value, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None


def as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ParameterError(f"{name} must be true or false, got {value!r}")


def as_preset(value) -> str:
    if value not in PRESETS:
        raise ParameterError(f"unknown preset {value!r}; accepted: {', '.join(PRESETS)}")
    return value


# --------------------------------------------------------------------------- display


def repo_root_cwd() -> None:
    """Opened by hand from notebooks/, work from the repository root (checkpoints/, data/ live there)."""
    if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
        os.chdir(Path.cwd().parent)


def figure_description(fig) -> str:
    """A figure's alt text for readers who cannot see it, from what the figure says about itself: its
    title, its panels' titles and its axis labels."""
    def text(artist) -> str:
        return artist.get_text().strip() if artist is not None else ""

    title = text(getattr(fig, "_suptitle", None))
    panels = list(dict.fromkeys(t for ax in fig.axes if (t := ax.get_title().strip())))
    def axis(sup, labels) -> tuple[str, bool]:  # the figure-wide label, else every panel's own (several: "axes")
        said = list(dict.fromkeys(t for t in labels if t))
        return (text(sup), False) if text(sup) else ("; ".join(said), len(said) > 1)
    x, xs = axis(getattr(fig, "_supxlabel", None), [ax.get_xlabel() for ax in fig.axes])
    y, ys = axis(getattr(fig, "_supylabel", None), [ax.get_ylabel() for ax in fig.axes])
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    keys = next(([t.get_text() for t in leg.get_texts()] for leg in legends if leg is not None), [])
    if title or len(panels) == 1:
        parts = [f"Figure: {title or panels[0]}."]
        if len(panels) > 1:
            parts.append("Panels: " + ", ".join(panels[:12]) + (", …" if len(panels) > 12 else "") + ".")
    else:
        parts = ["Figure" + (" with panels: " + ", ".join(panels) if panels else "") + "."]
    parts += [f"Horizontal ax{'es' if xs else 'is'}: {x}." if x else "", f"Vertical ax{'es' if ys else 'is'}: {y}." if y else "",
              "Legend: " + ", ".join(keys[:12]) + "." if keys else ""]
    return " ".join(p for p in parts if p)


def describe_figures() -> None:
    """Give every figure the page shows an alt text (:func:`figure_description`); the rendered HTML writes it
    into the image's alt attribute (gradflow.report_export). The inline backend asks one function for a
    figure's display metadata; it is wrapped to add "alt". Without that function (another backend) nothing
    changes and the figures keep nbconvert's generic alt text."""
    try:
        from matplotlib_inline import backend_inline
    except ImportError:
        return
    original = getattr(backend_inline, "_fetch_figure_metadata", None)
    if original is None or getattr(original, "adds_alt", False):
        return

    def with_alt(fig):
        meta = dict(original(fig) or {})
        meta["alt"] = figure_description(fig)
        return meta

    with_alt.adds_alt = True
    backend_inline._fetch_figure_metadata = with_alt


def setup_display() -> None:
    """Figure size and resolution shared by every page, tables without truncated sentences, figures
    described for screen readers."""
    import matplotlib.pyplot as plt

    describe_figures()

    small = style.READABLE_PT  # no figure text below it: legends, ticks and notes read beside the page's text
    plt.rcParams.update({"figure.dpi": 90, "axes.titlesize": small + 2, "axes.labelsize": small + 1,
                         "legend.fontsize": small, "legend.title_fontsize": small, "xtick.labelsize": small,
                         "ytick.labelsize": small, "figure.titlesize": small + 3, "axes.grid": True,
                         "grid.alpha": 0.3})
    pd.set_option("display.max_colwidth", 300)


def _number(value, digits: int) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:.2e}"
    return str(value)


def _fixed(value: float, decimals: int) -> str:
    """'-0.0000' for a tiny negative rounds to '0.0000': a sign on a shown zero reads as a real negative."""
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def _column_decimals(values: pd.Series, digits: int) -> int | None:
    """Decimals that show every value of a float column to ``digits`` significant digits, so the
    column lines up ('10.00' above '84.12', not '10' above '84.12'); None when a value needs
    scientific notation, whose column keeps per-value formatting."""
    finite = [float(v) for v in values if isinstance(v, float) and math.isfinite(v) and v != 0]
    if not finite or any(abs(v) >= 1e6 or abs(v) < 10 ** -(digits - 1) for v in finite):
        return None
    if max(map(abs, finite)) / min(map(abs, finite)) > 100:  # 74.1 beside 0.0433: one decimal count fits neither
        return None
    needed = [max(0, digits - 1 - math.floor(math.log10(abs(v)))) for v in finite]
    # a value's own significant digits, not its trailing zeros: 84.2 needs 1 decimal, not 2
    trimmed = [min(n, len(f"{v:.{n}f}".rstrip("0").partition(".")[2])) for v, n in zip(finite, needed)]
    return max(trimmed)


def show_table(frame: pd.DataFrame, digits: int = 4):
    """A table as a reader sees it: no index column, numbers to ``digits`` significant digits with one
    number of decimals per column, no NaN; text columns (cells and headers) left-aligned."""
    from IPython.display import display

    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype).startswith("str")]
    styled = frame.style.hide(axis="index").format(lambda v: _number(v, digits))
    for column in frame.columns:
        if str(frame[column].dtype).startswith("float"):
            decimals = _column_decimals(frame[column], digits)
            if decimals is not None:
                styled = styled.format(lambda v, d=decimals: "–" if v != v else _fixed(v, d), subset=[column])
    if text:  # sentences and names read left-aligned; numbers stay right-aligned
        styled = styled.set_properties(subset=text, **{"text-align": "left"})
        styled = styled.set_table_styles({c: [{"selector": "th", "props": "text-align: left"}] for c in text},
                                         overwrite=False)
    display(styled)


def span_text(values) -> str:
    """'29–47' for several different integers, '4' when they agree."""
    values = [int(v) for v in values]
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def show_markdown(text: str) -> None:
    from IPython.display import Markdown, display

    if text:  # an empty paragraph would still be an output cell
        display(Markdown(text))


def show_html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def live_kernel(interactive: bool = True) -> bool:
    """True when widgets can work: asked for, in a Jupyter kernel with a front end, not a report render.

    Rendered reports run through ``gradflow report``, whose kernel is started by
    ``gradflow.kernel_launcher`` (and papermill runs set GRADFLOW_STATIC=1 if they want to be sure);
    there the static small multiples are all a reader of the HTML can use.
    """
    if not interactive or os.environ.get("GRADFLOW_STATIC") == "1":
        return False
    if Path(sys.argv[0]).stem == "kernel_launcher" or "papermill" in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# --------------------------------------------------------------------------- the run store


def train_command(activations, preset: str, seeds=None, runs_dir=None, **overrides) -> str:
    parts = ["gradflow train --act " + ",".join(activations), f"--preset {preset}"]
    if seeds:
        parts.append("--seeds " + " ".join(str(s) for s in seeds))
    if overrides.get("max_epochs"):
        parts.append(f"--max-epochs {overrides['max_epochs']}")
    if runs_dir:
        parts.append(f"--out {runs_dir}")
    return " ".join(parts)


def stored_comparison(activations, preset: str, seeds=None, runs_dir=None, **overrides) -> list:
    """The stored run of each activation for this preset (and seeds); trains nothing.

    Raises FileNotFoundError naming the missing runs and the one command that trains them.
    """
    overrides = {k: v for k, v in overrides.items() if v}
    where = Path(runs_dir or store.default_runs_dir())
    if not where.is_dir():  # a notebook opened away from the repository: its runs are there, not missing
        raise FileNotFoundError(
            f"no run store at {where.resolve()} (this kernel runs in {Path.cwd()}); open the notebook from the "
            "repository's notebooks/ folder or its root, or set the runs_dir parameter (or GRADFLOW_RUNS) to the "
            "repository's checkpoints folder")
    runs, missing = [], []
    for a in activations:
        config = make_config(a, preset, seeds=list(seeds or []) or None, **overrides)
        run = _stored(config, runs_dir) or _stored_with_more_seeds(a, preset, seeds, runs_dir, **overrides)
        (runs if run is not None else missing).append(run if run is not None else config)
    if missing:
        names = ", ".join(c.activation["name"] for c in missing)
        raise FileNotFoundError(
            f"the run store {where} has no {preset}-preset run for {names}; reports read stored runs and train "
            f"nothing: train them with `{train_command(activations, preset, seeds, runs_dir, **overrides)}`")
    return runs


def _stored(config, runs_dir):
    return store.load_run(config.run_name(), runs_dir) if store.exists(config.run_name(), runs_dir) else None


def _stored_with_more_seeds(activation, preset: str, seeds, runs_dir, **overrides):
    """The preset's stored run with its own seeds, read for ``seeds`` only when it holds all of them: a page
    asked for seed 42 of a run trained on 42, 43 and 44 need not train anything."""
    if not seeds:
        return None
    run = _stored(make_config(activation, preset, **overrides), runs_dir)
    return run.with_seeds(seeds) if run is not None and set(map(int, seeds)) <= set(run.seeds) else None


def data_for(run):
    """The data splits a stored run trained on (same split seed)."""
    from .data import load

    rc = run.config["run"]
    if rc["dataset"] == "synthetic":
        return load("synthetic", seed=rc["split_seed"])
    return load(rc["dataset"], split_seed=rc["split_seed"])


def record_one_batch(net, x, y, dead_inputs=None):
    """One forward/backward pass of ``net`` on (x, y) inside a Recorder; no optimizer step.

    Returns ``(tables, summary, grads)``: the recorder's tables (dead units over ``dead_inputs``
    when given), its summary (histogram edges), and each Linear's weight gradient as a 1-D tensor
    keyed by the recorder's layer name (for views the recorder does not keep, e.g. exact zeros).
    """
    import torch

    from .record import Recorder

    with Recorder(net, schedule="all") as rec:
        net.train()
        net.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        rec.step(loss=loss)
        if dead_inputs is not None:
            rec.dead_units(dead_inputs)
        tables, summary = rec.tables(), rec.summary()
    grads = {name: m.weight.grad.detach().flatten().clone() for name, m in net.named_modules()
             if isinstance(m, torch.nn.Linear)}
    net.zero_grad()
    return tables, summary, grads
