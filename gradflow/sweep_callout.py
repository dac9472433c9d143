"""The sweep page's top box: which recipe the sweep's runs followed, and whether that makes it a preview.

A sweep is a preview unless every run followed the tutorial's full recipe. The preset's name alone does
not decide it (narrate.is_preview does, for one run's page): ``--preset tutorial --max-epochs 1
--train-subset 1000`` is the tutorial's recipe in name only, so the plan's fixed settings count too.
"""
from __future__ import annotations

import html

from .narrate import RECIPE_EPOCHS, callout_html, is_preview, recipe_phrase, seeds_phrase


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def plan_settings(plan: dict) -> dict:
    """What every run of a sweep shares or not, read from its plan: presets, most epochs, train subsets, data."""
    configs = plan.get("configs", [])
    presets = list(dict.fromkeys(str(p) for p in plan["grid"]["axes"].get("preset", []) or
                                 [c.get("preset", "custom") for c in configs]))
    return {"presets": presets,
            "epochs": sorted({int(c["max_epochs"]) for c in configs if c.get("max_epochs")}),
            "subsets": sorted({int(c["train_subset"]) for c in configs if c.get("train_subset")}),
            "datasets": sorted({str(c.get("dataset", "fashion_mnist")) for c in configs})}


def preview_reasons(plan: dict) -> list[str]:
    """Why a sweep's numbers are a first look and not the recipe's results (empty: the full recipe).

    The preset alone does not decide it: ``--preset tutorial --max-epochs 1 --train-subset 1000`` is the
    tutorial's recipe in name only, so the plan's fixed settings count too."""
    s = plan_settings(plan)
    reasons = []
    if any(is_preview(p) for p in s["presets"]):
        reasons.append(f"preset {', '.join(p for p in s['presets'] if is_preview(p))}")
    if s["epochs"] and s["epochs"][0] < RECIPE_EPOCHS and not reasons:
        reasons.append(f"at most {_epochs(s['epochs'][0])} instead of the recipe's up to {RECIPE_EPOCHS}")
    if s["subsets"]:
        reasons.append(f"{' or '.join(f'{n:,}' for n in s['subsets'])} training images, not all "
                       f"(--train-subset)")
    if "synthetic" in s["datasets"]:
        reasons.append("a synthetic stand-in data set, not FashionMNIST")
    return reasons


def is_preview_sweep(plan: dict) -> bool:
    """A sweep whose numbers may not be ranked: a preview preset, fewer epochs than the recipe, or a train subset."""
    return bool(preview_reasons(plan))


def _recipe_text(config: dict) -> str:
    return recipe_phrase({"run": config})


def sweep_callout(plan: dict) -> str:
    """The page-top box for a sweep: its preset(s), epochs, training images and seeds; orange (a preview)
    unless every run followed the tutorial's full recipe."""
    s = plan_settings(plan)
    seeds = plan["grid"]["seeds"]
    run = f"up to {_epochs(s['epochs'][-1])}" if s["epochs"] else "its epochs"
    shortened = ("tutorial" in s["presets"] and s["epochs"] and s["epochs"][0] < RECIPE_EPOCHS)
    preset = f"preset {', '.join(s['presets']) or '?'}" + (
        f", shortened with <code>--max-epochs {s['epochs'][0]}</code>; the recipe runs up to {RECIPE_EPOCHS} epochs "
        "with early stopping" if shortened else "")
    data = ""
    if s["subsets"]:
        data = (f" on only the first {' or '.join(f'{n:,}' for n in s['subsets'])} training images "
                f"(<code>--train-subset {s['subsets'][0]}</code>; the recipe uses all 50,000)")
    if "synthetic" in s["datasets"]:
        data += " of a synthetic stand-in data set, not FashionMNIST"
    body = f"Every cell of this sweep trained for {run} ({preset}){data}, on {seeds_phrase(seeds)}."
    configs = plan.get("configs", [])
    shared = {tuple(c.get(k) for k in ("optimizer", "lr", "momentum", "batch_size")) for c in configs}
    if len(shared) == 1 and (recipe := _recipe_text(configs[0])):  # one recipe: say it
        body += f" Training: {html.escape(recipe)}."
    if is_preview_sweep(plan):
        body += (" Early epochs favour whatever starts fastest, so read 'told apart' below as 'separated after "
                 "these epochs', not as which setting ends best. A setting that mostly changes how fast a network "
                 "starts (an initialisation, a learning rate) is told apart most easily early, and its effect can "
                 "shrink to nothing by the end; a cell at chance now may still learn later. A sweep with "
                 "<code>--preset tutorial</code> and no <code>--max-epochs</code> or <code>--train-subset</code> "
                 "answers that.")
        if len(seeds) == 1:
            body += " With one seed nothing can be told apart: there is no spread to compare a difference with."
        title = "Preview sweep: the tutorial's recipe, shortened" if shortened or (
            "tutorial" in s["presets"] and s["subsets"]) else "Preview sweep"
        return callout_html(title, body, preview=True)
    return callout_html("Results: a full-recipe sweep", body + " Differences are judged with 95 % confidence "
                        "intervals over the seeds.", preview=False)
