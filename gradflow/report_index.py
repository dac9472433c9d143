"""The index page of a report set: reading order, what the runs are, how to reproduce, credit.

What the preset means is read from the stored runs themselves (their ``config.json`` and
``results.json``), not from the preset table, so the page describes what was actually trained.
"""
from __future__ import annotations

import html
import json
import math
import re
import time
from pathlib import Path

from .report_pages import FRAME_CSS, ORIGINAL_TUTORIAL, RECIPE_EPOCHS

SET_TITLE = "Activation functions and gradient flow"


def run_facts(run_dirs: list[Path]) -> dict:
    """Epochs, seeds, dataset, device, training time and versions of the given stored runs.

    Unreadable or missing runs are skipped (the reports that need them say so). Training time
    counts each batched training once: runs trained together share their epochs' wall time.
    """
    facts = {"runs": 0, "models": 0, "max_epochs": set(), "epochs_trained": [], "seeds": set(), "datasets": set(),
             "devices": set(), "versions": {}, "train_seconds": 0.0, "created": []}
    batches = set()
    for path in run_dirs:
        try:
            config = json.loads((path / "config.json").read_text())
            results = json.loads((path / "results.json").read_text())["seeds"]
        except (OSError, ValueError, KeyError):
            continue
        facts["runs"] += 1
        facts["models"] += len(results)  # one model per seed
        run = config.get("run", {})
        facts["max_epochs"].add(run.get("max_epochs"))
        facts["seeds"].update(run.get("seeds", []))
        facts["epochs_trained"] += [r.get("epochs_trained") for r in results if r.get("epochs_trained") is not None]
        data = config.get("data", {})
        sizes = data.get("sizes", {})
        facts["datasets"].add(f"{data.get('name', '?')} ({sizes.get('train', '?'):,} train / "
                              f"{sizes.get('val', '?'):,} validation / {sizes.get('test', '?'):,} test images)"
                              if sizes else str(data.get("name", "?")))
        facts["devices"].add(str(config.get("device", "?")))
        facts["versions"].update(config.get("versions", {}))
        batch = tuple(config.get("batch", {}).get("runs", [path.name]))
        if batch not in batches:
            batches.add(batch)
            facts["train_seconds"] += sum(config.get("epoch_seconds", []))
        if config.get("created"):
            facts["created"].append(config["created"])
    return facts


def earlier_results(out: Path, preset: str, rendered: set, result_type) -> list:
    """The pages a previous render left in ``out`` (its ``index.json``, same preset, page still there)
    that this render did not redo: rendering one page must not drop the others from the index."""
    try:
        earlier = json.loads((out / "index.json").read_text())
    except (OSError, ValueError):
        return []
    if earlier.get("preset") != preset:
        return []
    kept = []
    for r in earlier.get("reports", []):
        try:
            res = result_type(**r)
        except TypeError:  # an index written by another version: skip its rows, not the render
            continue
        if res.name not in rendered and res.html and (out / res.html).is_file():
            kept.append(res)
    return kept


def _esc(value) -> str:
    return html.escape(str(value))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _versions_shown(stored: dict) -> dict:
    """The stored runs' versions, except the diagnosis: the pages show the current rules' findings
    (``RunDir.findings`` diagnoses older runs again when read), so that is the version to name."""
    from .diagnose.codes import DIAGNOSIS_VERSION
    shown = dict(stored)
    trained_under = stored.get("diagnosis")
    shown["diagnosis"] = (f"{DIAGNOSIS_VERSION}" if trained_under in (None, DIAGNOSIS_VERSION) else
                          f"{DIAGNOSIS_VERSION} (the diagnosis's rules; the runs were trained under version "
                          f"{trained_under}, and their findings are worked out again from the stored recordings "
                          "with today's rules)")
    return shown


def facts_table(facts: dict, preset: str) -> str:
    if not facts["runs"]:
        return "<p>No stored runs of this preset were found, so nothing is known about them yet.</p>"
    max_epochs = sorted(e for e in facts["max_epochs"] if e is not None)
    trained = facts["epochs_trained"]
    epochs = (f"at most {'/'.join(map(str, max_epochs))} of the tutorial recipe's {RECIPE_EPOCHS}"
              + ("" if not trained else f" (every model trained {trained[0]})" if min(trained) == max(trained)
                 else f" (early stopping: {min(trained)} to {max(trained)} trained per model)"))
    seeds = sorted(facts["seeds"])
    seeds_text = (f"{len(seeds)} per activation ({', '.join(map(str, seeds))})" if len(seeds) > 1 else
                  f"1 ({seeds[0]}): nothing can be told apart from seed-to-seed noise" if seeds else "?")
    versions = ", ".join(f"{k} {v}" for k, v in _versions_shown(facts["versions"]).items())
    created = sorted(facts["created"])
    when = f"{created[0][:16].replace('T', ' ')} UTC" if created else "?"
    rows = [("preset", f"<code>{_esc(preset)}</code>"), ("epochs", _esc(epochs)), ("seeds", _esc(seeds_text)),
            ("dataset", "<br>".join(_esc(d) for d in sorted(facts["datasets"]))),
            ("device", _esc(", ".join(sorted(facts["devices"])))),
            ("training time", f"{_esc(_duration(facts['train_seconds']))} for {facts['runs']} stored runs "
                              f"({facts['models']} models: every seed of a run is a model of its own; trained from "
                              f"{_esc(when)})"),
            ("library versions", _esc(versions) or "?")]
    cases = facts.get("case_studies") or {}
    if cases.get("runs"):
        rows.insert(-1, ("case studies", f"{cases['runs']} more stored runs with their own small recipes, "
                                         f"{_esc(_duration(cases['train_seconds']))} of training"))
    return "<table class='facts'>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def preview_callout(preset: str, facts: dict) -> str:
    """The warning a preview preset carries: what was cut, and what the pages therefore do not claim."""
    if preset == "tutorial":
        return ""
    epochs = "/".join(str(e) for e in sorted(e for e in facts["max_epochs"] if e is not None)) or "a few"
    return (f"<div class='gf-callout gf-preview'><b>Preview, not results.</b> These pages use the "
            f"<code>{_esc(preset)}</code> preset: {_esc(epochs)} epochs instead of the recipe's {RECIPE_EPOCHS}, "
            f"{_seeds_word(len(facts['seeds']))}. They show how each analysis reads, but they do not rank the "
            f"activations or compare with the tutorial's accuracies: early epochs favour fast starters. What "
            f"a short run can hide: an activation at chance after a few epochs may still leave it (sigmoid does "
            f"in the full recipe: its seeds leave chance after about 15–20 epochs, if early stopping lets them), a "
            f"trend inside the network (dead units growing, "
            f"say) can reverse, and a setting that speeds up the start, such as an initialisation, can look "
            f"decisive early and make no difference by the end. "
            f"For the real comparison run <code>make report PRESET=tutorial</code>.</div>")


def _number_word(n: int) -> str:
    words = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]
    return words[n] if n < len(words) else str(n)


def _seeds_word(n: int) -> str:
    return "a few seeds" if not n else "1 seed (nothing can be told apart)" if n == 1 else f"{n} seeds"


# a careful reader of technical text with numbers: ~150 words a minute, and a minute to study each figure
WORDS_PER_MINUTE = 150
MINUTES_PER_FIGURE = 1.0


def reading_minutes(page: Path) -> int | None:
    """About how long a student needs for a rendered page, rounded up to 5 minutes: its visible words
    (folded answers included, code and styles not) and its figures. None if the page is missing."""
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return None
    figures = len(re.findall(r"<img\b", text))
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    words = len(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    minutes = words / WORDS_PER_MINUTE + figures * MINUTES_PER_FIGURE
    return max(5, 5 * math.ceil(minutes / 5))


def _reading_times(results, out: Path | None) -> dict:
    if out is None:
        return {}
    return {r.name: m for r in results if r.status == "ok" and (m := reading_minutes(out / r.html)) is not None}


def class_path(specs, minutes: dict) -> str:
    """The hero's plan for a class: the core pages and their reading time, then the pages that go further."""
    core = [(i, s) for i, s in enumerate(specs, 1) if s.core]
    more = [(i, s) for i, s in enumerate(specs, 1) if not s.core]
    def pages(items):
        nums = [str(i) for i, _ in items]
        return nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]
    known = [minutes[s.name] for _, s in core if s.name in minutes]
    time_core = f", about {sum(known)} minutes of reading" if known and len(known) == len(core) else ""
    text = f"<p>Core path for a class: pages {pages(core)}{time_core}."
    for i, s in core:
        if s.skippable:
            text += f" A shorter session can leave part of page {i} out: {_esc(s.skippable)}."
    if more:
        text += (f" Pages {pages(more)} go further ({'; '.join(s.title.lower() for _, s in more)}) and can be set "
                 "as homework.")
    return text + (" The pages assume students know what a neural network, a loss and a gradient are; no code needs to "
                   "be read.</p>")


def reading_list(results, specs, minutes: dict | None = None) -> str:
    by_name = {r.name: r for r in results}
    minutes = minutes or {}
    items = []
    for i, spec in enumerate(specs, 1):
        r = by_name.get(spec.name)
        status = r.status if r else "not rendered"
        badge = f"<span class='badge {'ok' if status == 'ok' else 'bad'}'>{_esc('rendered' if status == 'ok' else status.upper())}</span>"
        link = f"<a href='{_esc(r.html)}'>{_esc(spec.title)}</a>" if r else _esc(spec.title)
        params = ", ".join(f"{k}={v!r}" for k, v in r.parameters.items() if k != "preset") if r else ""
        read = f"about {minutes[spec.name]} min to read · " if spec.name in minutes else ""
        path = "core" if spec.core else "further"
        detail = (f"{path} · {read}rendered in {r.seconds:.1f} s" + (f" · parameters: {params}" if params else "")
                  if r else path)
        error = f"<div class='error'>{_esc(r.error)}</div>" if r and r.error else ""
        items.append(f"<li><div class='head'><span class='num'>{i}</span>{link}{badge}</div>"
                     f"<p>{_esc(spec.teaches)}</p><div class='meta'>{_esc(detail)}</div>{error}</li>")
    return "<ol class='reading'>" + "".join(items) + "</ol>"


def _own_parameters(results) -> str:
    """The `gradflow report --page` lines that redo the pages rendered with parameters of their own."""
    lines = []
    for r in results or ():
        own = {k: v for k, v in r.parameters.items() if k != "preset"}
        if own and r.status == "ok":
            shown = " ".join(f"-p {k} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                             for k, v in own.items())
            page = str(int(r.name[:2])) if r.name[:2].isdigit() else r.name  # --page takes both
            lines.append(f"# page {page} with its own parameters\ngradflow report --page {page} {shown}")
    return "".join(f"\n{_esc(line)}" for line in lines)


def reproduce(preset: str, runs_display: str, results=()) -> str:
    out = "" if runs_display == "checkpoints" else f" --out {runs_display}"
    return (f"<pre>make report PRESET={_esc(preset)}</pre><p>does all of it on a fresh clone (virtual environment, "
            f"data, training, rendering). Step by step, with the environment set up:</p>"
            # each comment above its command: a comment beside the sweep's long line ran off the page
            f"<pre># the six-activation comparison\ngradflow train --act all --preset {_esc(preset)}{_esc(out)}\n"
            f"# the case-study runs\ngradflow train --case-studies --preset {_esc(preset)}{_esc(out)}\n"
            f"# the sweep page's grid\ngradflow sweep --act relu,tanh,sigmoid --init default,kaiming "
            f"--preset {_esc(preset)}{_esc(out)} --name activation-x-init-{_esc(preset)}\n"
            f"# renders from the stored runs only\ngradflow report --preset {_esc(preset)}{_esc(out)}"
            f"{_own_parameters(results)}</pre>")


INDEX_CSS = """
body { margin: 0; color: #222; background: #fff; font: 16px/1.55 system-ui, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 0 1.5em 2em; }
header.hero { background: #1f3b57; color: #fff; padding: 2.2em 1.5em 1.6em; }
header.hero div { max-width: 960px; margin: 0 auto; }
header.hero h1 { margin: 0 0 .2em; font-size: 2em; } header.hero p { margin: 0; opacity: .9; }
header.hero p.after { margin-top: .5em; font-size: .9em; opacity: .8; } header.hero a { color: #fff; }
h2 { color: #1f3b57; border-bottom: 2px solid #e3e8ef; padding-bottom: .2em; margin-top: 1.8em; }
ol.reading { list-style: none; padding: 0; }
ol.reading li { border: 1px solid #dde3ea; border-radius: 8px; padding: .8em 1.1em; margin: .8em 0; }
ol.reading .head { display: flex; align-items: center; gap: .7em; font-size: 1.15em; font-weight: 600; }
ol.reading .head a { color: #1f3b57; }
ol.reading .num { background: #1f3b57; color: #fff; border-radius: 50%; width: 1.7em; height: 1.7em;
  display: inline-flex; align-items: center; justify-content: center; font-size: .85em; }
ol.reading p { margin: .35em 0 .2em 2.45rem; } ol.reading .meta { margin-left: 2.45rem; color: #667; font-size: .85em; }
ol.reading .error { margin-left: 2.45rem; color: #b71c1c; font-size: .9em; }
.badge { font-size: .7em; font-weight: 600; padding: .15em .6em; border-radius: 1em; margin-left: auto; }
.badge.ok { background: #e8f5e9; color: #1b5e20; } .badge.bad { background: #ffebee; color: #b71c1c; }
table.facts { border-collapse: collapse; width: 100%; }
table.facts th { text-align: left; width: 11em; color: #445; font-weight: 600; vertical-align: top; }
table.facts th, table.facts td { border-bottom: 1px solid #e3e8ef; padding: .4em .5em; }
pre { background: #f4f7fa; padding: .8em 1em; border-radius: 6px; font-size: .9em;
      white-space: pre-wrap; overflow-wrap: anywhere; }  /* long commands wrap: printed, nothing is cut */
footer { color: #667; font-size: .85em; border-top: 1px solid #e3e8ef; margin-top: 2.5em; padding-top: .8em; }
"""


def render_index(results, specs, preset: str, total_seconds: float, facts: dict, runs_display: str,
                 out: Path | None = None) -> str:
    """The index page; ``out`` (the reports folder) lets it measure each rendered page's reading time."""
    minutes = _reading_times(results, out)
    n_bad = sum(r.status != "ok" for r in results)
    verdict = (f"all {len(results)} reports rendered" if not n_bad
               else f"{n_bad} of {len(results)} reports FAILED or could not render")
    failed = "" if not n_bad else (
        f"<div class='gf-callout gf-failed'><b>{_esc(verdict)}.</b> Each one's line below says why; "
        f"reports whose runs are missing name the command that trains them.</div>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(SET_TITLE)} — gradflow reports ({_esc(preset)} preset)</title>
<style>{FRAME_CSS}{INDEX_CSS}</style></head><body>
<header class="hero"><div><h1>{_esc(SET_TITLE)}</h1>
<p>Why some networks stop learning: activation functions, the gradients they let through, and how to
diagnose a network that does not train. {_number_word(len(specs))} reports, meant to be read in order.</p>
<p>For a class: each page opens with what a reader can do after it, asks <i>Predict, then look</i> before
its key figures, and keeps the answers, worked out from these very runs, folded under
<i>Check your predictions</i>.</p>
{class_path(specs, minutes)}
<p class="after">After Phillip Lippe's UvA Deep Learning Tutorial 3, <a href="{ORIGINAL_TUTORIAL}">Activation Functions</a>.</p>
</div></header>
<main>
{preview_callout(preset, facts)}{failed}
<h2>Reading order</h2>
{reading_list(results, specs, minutes)}
<h2>What these runs are</h2>
{facts_table(facts, preset)}
<h2>Reproduce this set</h2>
{reproduce(preset, runs_display, results)}
<h2>Credit</h2>
<p>The experiments follow Phillip Lippe's UvA Deep Learning Tutorial 3,
<a href="{ORIGINAL_TUTORIAL}">“Activation Functions”</a> (University of Amsterdam, Deep Learning course):
the same <code>BaseNetwork</code>, FashionMNIST, optimizer and recipe, here with several seeds per
activation, recorded gradient statistics and generated interpretation. Read the original for the
derivations; these pages add what the recordings show.</p>
<footer>{_esc(verdict)} · preset <code>{_esc(preset)}</code> · rendered {time.strftime('%Y-%m-%d %H:%M')} in
{total_seconds:.0f} s · every page is one self-contained HTML file that opens offline.</footer>
</main></body></html>
"""
