"""Evidence: everything the rules may read about one run, in one shape, built explicitly.

- ``Evidence.from_recording(rec)``: a live Recorder or a Recording loaded from disk;
- ``Evidence.from_recording_dir(path)``: a directory written by ``Recorder.save``;
- ``Evidence.from_run(run)``: a stored run (``gradflow.store.Run``, or any object with its four
  attributes config, metrics, results, recordings; the config in the nested shape below);
- ``Evidence.from_stored(config, metrics, results, recording)``: the same from its parts, which is
  what training uses to write ``findings.json``, so a run gives the same findings live and reloaded.

The config is always the run store's nested shape: ``{"run": RunConfig.to_dict(), "model":
BaseNetwork.config (with num_classes), ...}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import quantities as Q
from ..loss_graph import CROSS_ENTROPY_KINDS
from . import trend

DEFAULT_NUM_CLASSES = 10
CONSTANT_STD_FRACTION = 1e-2  # as gradflow.record.layers: std below 1 % of the RMS is one constant
# A normalisation layer's type: torch's (BatchNorm1d, LayerNorm, GroupNorm, InstanceNorm2d, RMSNorm,
# LocalResponseNorm, SyncBatchNorm), gradflow's stacked ones and a user's own (MyRMSNorm, L2Norm): the
# name ends in "Norm" (and a dimension). Not a name that merely holds it: NormalizedMLP, Normalizer.
RUN_ATTRIBUTES = ("config", "metrics", "results", "recordings")  # what from_run reads (store.Run has them)
SCALAR_COLUMNS = ["step", "epoch", "member", "seed", "layer", "quantity", "value"]


def judged_metrics(metrics: pd.DataFrame | None) -> pd.DataFrame | None:
    """The per-epoch metrics a stored run is diagnosed with, the same when it is written and when
    it is read again: without the "before training" epoch-0 row a case study keeps, and none at all
    for a run without validation accuracy (an autoencoder's binary accuracy is not one)."""
    if metrics is None or "val_acc" not in metrics:
        return None
    return metrics[metrics["epoch"] > 0] if "epoch" in metrics else metrics


# Measured once on the best checkpoint after training, stamped with the batch's last epoch: they
# belong to every member, early-stopped or not.
AFTER_TRAINING = (Q.DEAD_COUNT, Q.DEAD_FRACTION)


def counted_rows(table: pd.DataFrame, results: pd.DataFrame | None) -> pd.DataFrame:
    """A recording table without the epochs a member trained only because the batch went on after its
    early stop. gradflow's batched trainer keeps a stopped member training with the others, but its
    results come from the epochs up to its stop (``epochs_trained``): the findings judge that run, not
    the continuation (a sigmoid net stopped on its plateau at epoch 14 had vanishing gradients then,
    whatever its continuation did by epoch 50)."""
    if (not isinstance(results, pd.DataFrame) or table.empty or "epochs_trained" not in results
            or "seed" not in results or not {"seed", "epoch"} <= set(table)):
        return table
    trained = results.dropna(subset=["seed", "epochs_trained"])
    limit = pd.to_numeric(table["seed"], errors="coerce").map(
        pd.Series(trained["epochs_trained"].astype(float).to_numpy(), index=trained["seed"].astype(float).to_numpy()))
    keep = limit.isna() | (table["epoch"].astype(float) <= limit)
    if "quantity" in table:
        keep |= table["quantity"].isin(AFTER_TRAINING)
    return table if keep.all() else table[keep].reset_index(drop=True)


@dataclass
class Evidence:
    tables: dict | None = None  # the recording's tidy tables (None: nothing recorded)
    summary: dict | None = None  # the recording's summary
    metrics: pd.DataFrame | None = None  # per seed and epoch: train_loss, val_acc, past_stop, ...
    results: pd.DataFrame | None = None  # per seed: stopped_epoch, epochs_trained, ...
    config: dict = field(default_factory=dict)  # the nested run-store config
    num_classes: int = DEFAULT_NUM_CLASSES
    _outcomes: dict = field(default_factory=dict, repr=False, compare=False)  # (member, seed) -> Outcome
    _once: dict = field(default_factory=dict, repr=False, compare=False)  # a rule's result another rule reads

    def once(self, key: str, compute):
        """``compute()`` the first time ``key`` is asked for on this evidence, its stored result after: a rule
        that reads another rule's findings does not run it a second time."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_stored(cls, config: dict | None, metrics=None, results=None, recording=None,
                    num_classes: int | None = None) -> Evidence:
        config = dict(config or {})
        if isinstance(results, list):
            results = pd.DataFrame(results)
        tables = summary = None
        if recording is not None:
            tables, summary = recording.tables(), recording.summary()
            tables["scalars"] = counted_rows(tables["scalars"].astype({"value": float}), results)
            if "nonfinite" in tables:
                tables["nonfinite"] = counted_rows(tables["nonfinite"], results)
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        nc = num_classes or model.get("num_classes") or (summary or {}).get("num_classes")
        if not nc and summary and (summary.get("loss") or {}).get("kind") in CROSS_ENTROPY_KINDS:
            nc = (summary.get("output") or {}).get("features")  # a classifier's logits: one per class
        return cls(tables, summary, metrics, results, config, int(nc or DEFAULT_NUM_CLASSES))

    @classmethod
    def from_recording(cls, recording, metrics=None, num_classes: int | None = None) -> Evidence:
        return cls.from_stored(None, metrics, None, recording, num_classes)

    @classmethod
    def from_recording_dir(cls, directory, metrics=None, num_classes: int | None = None) -> Evidence:
        from ..recording import load_recording
        return cls.from_recording(load_recording(directory), metrics, num_classes)

    @classmethod
    def from_run(cls, run, metrics=None, num_classes: int | None = None) -> Evidence:
        return cls.from_stored(run.config, run.metrics if metrics is None else metrics, run.results,
                               run.recordings, num_classes)

    @classmethod
    def of(cls, obj, metrics=None, num_classes: int | None = None) -> Evidence:
        """The constructor that fits ``obj`` (what ``diagnose()`` accepts)."""
        from ..record import Recorder, Recording
        from ..store import Run
        if isinstance(obj, Evidence):
            return obj
        if isinstance(obj, (str, Path)):
            from ..recording import SUMMARY_FILE
            from ..store import load_run
            path = Path(obj)
            if (path / "config.json").is_file() and not (path / SUMMARY_FILE).is_file():  # a stored run's folder,
                return cls.from_run(load_run(path), metrics, num_classes)  # as the gradflow diagnose command takes it
            return cls.from_recording_dir(obj, metrics, num_classes)
        if isinstance(obj, (Recorder, Recording)):
            return cls.from_recording(obj, metrics, num_classes)
        if isinstance(obj, Run) or all(hasattr(obj, a) for a in RUN_ATTRIBUTES):  # a run, or shaped like one
            return cls.from_run(obj, metrics, num_classes)
        raise TypeError("diagnose() takes a Recorder, a recording from load_recording(), a recording directory, a "
                        f"stored run (gradflow.store.Run) or an Evidence; got {type(obj).__name__}")

    # ----------------------------------------------------------------- what rules read

    @property
    def run_config(self) -> dict:
        return self.config.get("run") or {}

    @property
    def model_config(self) -> dict:
        return self.config.get("model") or {}

    @property
    def scalars(self) -> pd.DataFrame:
        return pd.DataFrame(columns=SCALAR_COLUMNS) if self.tables is None else self.tables["scalars"]

    def quantity(self, q: str) -> pd.DataFrame:
        s = self.scalars
        return s[s["quantity"] == q]

    def layers(self, kind: str) -> list[dict]:
        """The recorded layers of ``kind`` ('param'/'activation') that ran in a training forward, in order."""
        if not self.summary:
            return []
        return [e for e in self.summary["layers"] if e["kind"] == kind and e.get("order") is not None]

    def seed_of(self, member) -> int | None:
        seeds = (self.summary or {}).get("member_seeds")
        return seeds[member] if member is not None and seeds and member < len(seeds) else None

    @staticmethod
    def members(df: pd.DataFrame) -> list[tuple[int, int | None]]:
        """(member, seed) pairs present in df."""
        if df.empty:
            return []
        pairs = df[["member", "seed"]].drop_duplicates().sort_values("member")
        return [(int(m), None if pd.isna(s) else int(s)) for m, s in pairs.itertuples(index=False)]

    def layer_title(self, name: str | None) -> str:
        """A layer as the user's model names it, with its type: "Linear `fc1`", "BatchNorm1d `1`"
        (a bare index alone reads like a count); special names ("<model>") as they are."""
        if name is None:
            return "the model"
        if name.startswith("<"):
            return {"<model>": "the model", "<input>": "the input", "<output>": "the output",
                    "<root>": "the model's own parameters"}.get(name, name)
        kinds = {e["name"]: e.get("type") for e in (self.summary or {}).get("layers", [])}
        kind = kinds.get(name)
        if kind and kind.startswith("Stacked"):
            kind = kind[len("Stacked"):]  # gradflow's batched trainer: each member is a plain Linear/BatchNorm1d
        return f"{kind} `{name}`" if kind else f"`{name}`"

    # ----------------------------------------------------------------- what a parameter is

    def param_role(self, name: str) -> str:
        """'weight', 'norm' or 'constant-init' (see gradflow.record.layers): the recorder's verdict, else
        (recordings from before roles were recorded) 'norm' for a normalisation type, else 'weight'.
        'norm' only for a normalisation module's type: the recorder also says 'norm' for any class whose
        name holds "norm" (a hand-written `NormalizedMLP` of raw nn.Parameter weights); such a parameter
        is judged from its values instead, as any other: one constant, or a weight."""
        entry = next((e for e in (self.summary or {}).get("layers", []) if e["name"] == name and e["kind"] == "param"),
                     {})
        role = entry.get("role")
        if Q.is_norm_type(entry.get("type")):
            return role or "norm"
        if role and role != "norm":
            return role
        return "constant-init" if role and self._starts_constant(name) else "weight"

    def _starts_constant(self, name: str) -> bool:
        """The parameter's std at its first recorded step is ~0 against its RMS (record.layers' test)."""
        w = self.quantity(Q.WEIGHT_STD)
        w = w[w["layer"] == name].sort_values("step")
        rms = self.init_rms(name, None)
        return not w.empty and (not rms or float(w["value"].iloc[0]) <= CONSTANT_STD_FRACTION * rms)

    def weight_layers(self) -> list[dict]:
        """The trained parameter layers (in forward order) whose std is their scale: the ones grad:data
        and update:data ratios mean something for (normalisation scales and constant-initialised
        parameters left out)."""
        return [e for e in self.layers("param") if self.param_role(e["name"]) == "weight"]

    def init_rms(self, name: str, member) -> float | None:
        """RMS of a parameter layer's main parameter when first recorded (its own scale), if known."""
        entry = next((e for e in (self.summary or {}).get("layers", []) if e["name"] == name), {})
        rms = entry.get("init_rms")
        if not rms:
            return None
        return float(rms[member if member is not None and 0 <= member < len(rms) else 0])

    # ----------------------------------------------------------------- how the run went

    def loss_chance(self) -> float | None:
        """ln(classes) for a cross-entropy loss (the loss of a uniform guess), else None."""
        kind = ((self.summary or {}).get("loss") or {}).get("kind")
        if kind in CROSS_ENTROPY_KINDS or (kind is None and self.model_config.get("num_classes")):
            return math.log(self.num_classes)
        return None

    def loss_curve(self, member) -> pd.DataFrame:
        """The member's recorded loss per step (its own values, else the loss shared by all members)."""
        loss = self.quantity(Q.LOSS)
        own = loss[loss["member"] == member]
        return (own if not own.empty else loss[loss["member"] == -1]).sort_values("step")

    def loss_trend(self, member) -> trend.Trend | None:
        rows = self.loss_curve(member)
        return trend.loss_trend(rows["step"].to_numpy(), rows["value"].to_numpy()) if not rows.empty else None

    def seed_metrics(self, seed) -> pd.DataFrame | None:
        """Per-epoch metrics of one seed before early stopping (all rows when the metrics have no seed)."""
        m = self.metrics
        if m is None or not isinstance(m, pd.DataFrame) or m.empty:
            return None
        if "seed" in m and m["seed"].nunique() > 1:
            if seed is None:
                return None
            m = m[m["seed"] == seed]
        elif "seed" in m and seed is not None and not m["seed"].isna().all() and (m["seed"] != seed).all():
            return None
        rows = m.sort_values("epoch") if "epoch" in m else m
        if "past_stop" in rows:
            rows = rows[~rows["past_stop"].fillna(False).astype(bool)]
        return None if rows.empty else rows

    def outcome(self, member, seed=None) -> trend.Outcome:
        """How this member's (seed's) run went: hurt (non-finite, diverging, loss flat at chance,
        accuracy at chance over the run), slow (at chance but falling), fine, or unknown."""
        if seed is None:
            seed = self.seed_of(member)
        key = (member, seed)
        if key not in self._outcomes:
            by_loss = trend.loss_outcome(self.loss_trend(member if member is not None else 0), self.loss_chance())
            rows = self.seed_metrics(seed)
            by_acc = trend.Outcome(trend.UNKNOWN, "no_metrics")
            if rows is not None and "val_acc" in rows:
                by_acc = trend.accuracy_outcome(rows["val_acc"], self.num_classes,
                                                rows["train_loss"] if "train_loss" in rows else None)
            hard = by_loss.verdict == trend.HURT and by_loss.reason in ("nonfinite", "diverging")
            self._outcomes[key] = by_loss if hard or by_acc.verdict == trend.UNKNOWN else by_acc
        return self._outcomes[key]

    def severity(self, member, seed=None, unambiguous: bool = True) -> str:
        """The severity of a finding about a symptom (gradients, units) for this member: an error
        only when the evidence is unambiguous and the run is hurt; info when the evidence is borderline
        and the run learns fine; a warning otherwise."""
        verdict = self.outcome(member, seed).verdict
        if verdict == trend.HURT:
            return "error" if unambiguous else "warning"
        # a run that learns all the same: a borderline symptom is a note, a gross one still worth a look
        # (tanh at 10x the init scale learns, to 75 % where its healthy twin reaches 82 %)
        return "warning" if unambiguous or verdict != trend.FINE else "info"
