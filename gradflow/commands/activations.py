"""``gradflow activations``: every registered activation, its parameters and the config that round-trips."""
from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="only these activations (default: all registered)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def describe(names: list[str] | None = None) -> list[dict]:
    """One dict per activation: name, parameters with defaults, bounded output, config, round-trip check."""
    from ..activations import (
        _REGISTRY,
        activation_from_config,
        available_activations,
        check_activations,
        get_activation,
    )
    from ..config import TUTORIAL_ACTIVATIONS
    rows = []
    for name in check_activations(names) if names else available_activations():
        entry = _REGISTRY[name]
        config = get_activation(name).config
        rows.append({"name": name, "parameters": dict(entry.defaults), "bounded": entry.bounded,
                     "tutorial": name in TUTORIAL_ACTIVATIONS, "config": config,
                     "round_trips": activation_from_config(json.loads(json.dumps(config))).config == config})
    return rows


def run(args) -> int:
    rows = describe(args.names)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<10} {'parameters (default)':<22} {'output':<9} config (JSON, round-trips through "
          "gradflow.activation_from_config)")
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["parameters"].items()) or "-"
        output = "bounded" if r["bounded"] else "unbounded"
        mark = "" if r["round_trips"] else "   (does NOT round-trip)"
        print(f"{r['name']:<10} {params:<22} {output:<9} {json.dumps(r['config'])}{mark}")
    from ..config import TUTORIAL_ACTIVATIONS
    print(f"The tutorial's six (`gradflow train --act all`): {', '.join(TUTORIAL_ACTIVATIONS)}. Parameters go in "
          "the config: gradflow.get_activation(\"elu\", alpha=0.5).")
    return 0
