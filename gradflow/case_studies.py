"""The case studies: real bugs from forum questions, as data, and the training of their runs.

Each :class:`CaseStudy` names its source (site, title, language, a short faithful quote), the
symptom the person saw, the broken setup and the fix(es). :func:`train_case_studies` trains every
run of every case and stores it in the run store like any other run (``config.json`` with
``origin: "case study <id>"``, metrics, results, recordings, findings), so the case-study page
only reads. Asking again loads what is stored. The page's text about a case itself (its source, fix,
and the callout on how long its runs trained) is written here too; what the runs show is case_narrate's.

Case 001 (a dropout probability) is a BaseNetwork setting, so its runs go through
``train.train_runs`` (batched, several seeds). The others need something the project's trainer
does not do on purpose (Keras' loss on tanh outputs, raw 0-255 pixels, an autoencoder), so they
train in a small plain loop wrapped in :class:`gradflow.Recorder`, as a user's own loop would.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd

from . import store
from .case_bugs import (  # noqa: F401 (importing the case studies registers case 002's activations)
    clamped_elu,
    naive_elu,
)
from .case_credits import Source, source_line
from .case_training import _data, train_case_run
from .config import make_config

CASE_PRESETS = {
    # images per training run, images per evaluation (validation and test), epochs, seeds of the plain loops
    # and case 001's MLP (the question's 4 x 256; tiny for smoke) and seeds (batched: seeds are cheap there)
    "tutorial": {"dataset": "fashion_mnist", "train": 50_000, "eval": 10_000, "epochs": 10, "seeds": (42, 43, 44),
                 "dropout_net": (256, 256, 256, 256), "dropout_seeds": (42, 43, 44)},
    "quick": {"dataset": "fashion_mnist", "train": 6_000, "eval": 2_000, "epochs": 4, "seeds": (42,),
              "dropout_net": (256, 256, 256, 256), "dropout_seeds": (42, 43)},
    # smoke: seconds, for tests; real pixels all the same (raw 0-255 inputs and images are the bugs' point)
    # two plain-loop seeds, so the tests take the several-seed paths the tutorial preset takes
    "smoke": {"dataset": "fashion_mnist", "train": 1280, "eval": 500, "epochs": 2, "seeds": (42, 43),
              "dropout_net": (32, 32), "dropout_seeds": (0, 1)},
}


@dataclass(frozen=True)
class Variant:
    key: str  # short name in the run's name
    role: str  # broken | fixed | asked (the question's own working model)
    label: str  # legend label
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CaseStudy:
    id: str
    title: str
    source: Source
    symptom: str
    setup: str  # the broken setup, in a sentence or two
    fixes: tuple  # the fixes, one sentence each
    variants: tuple
    finding_codes: tuple = ()  # what the diagnosis should say about the broken run


CASES = (
    CaseStudy(
        "000", "tanh at the output: one network, two losses",
        Source("a Russian-language Q&A post", "Why does tanh work better in PyTorch than in Keras?",
               "a question and an answer", "Russian",
               (("Когда Keras дает около +/- 10%, Pytorch значительно выше — до 90%.",
                 "Keras gives about 10 %, PyTorch much more — up to 90 %."),
                ("В чем может быть причина? Я сделал что-то не так или это должно работать именно так?",
                 "What could be the reason? Did I do something wrong, or is it supposed to work like this?")),
               credit="The explanation on this page is the course's: the post's answer looks elsewhere "
                      "(framework internals, BatchNorm, learning rates)."),
        "A tanh classifier reaches about 90 % in PyTorch but stays near 10 % (chance) in Keras. (The question's "
        "two models also differ in size; here one network is trained with each loss, so only the loss differs.)",
        "Both models end in tanh. PyTorch's CrossEntropyLoss treats the tanh outputs as logits; Keras' "
        "categorical_crossentropy (from_logits=False) treats them as probabilities: it divides them by their "
        "sum and takes the log, and tanh outputs can be negative.",
        ("Let the last Linear layer give plain logits and use cross-entropy on them (in Keras: no activation on "
         "the last Dense and `from_logits=True`, or a softmax when the loss expects probabilities).",),
        (Variant("keras", "broken", "Keras loss on tanh outputs", {"loss": "keras_categorical_crossentropy",
                                                                   "output_act": "tanh"}),
         Variant("pytorch", "asked", "PyTorch cross-entropy on tanh outputs", {"loss": "cross_entropy",
                                                                              "output_act": "tanh"}),
         Variant("logits", "fixed", "fix: plain logits + cross-entropy", {"loss": "cross_entropy",
                                                                        "output_act": None})),
        ("BOUNDED_OUTPUT", "NOT_LEARNING")),
    CaseStudy(
        "001", "dropout: the probability of dropping, or of keeping?",
        Source("a Russian-language Q&A post", "Keras model performs worse than the same TensorFlow model",
               "a question", "Russian",
               (("модель Keras всегда работает примерно на 2% хуже",
                 "the Keras model always does about 2 % worse"),),
               credit="The course's copy holds only the question: the explanation on this page is the course's."),
        "The same MLP written in TensorFlow and in Keras, identical in every setting, yet Keras is always about "
        "2 % worse.",
        "Both use dropout_prob = 0.7. TensorFlow 1's tf.nn.dropout(x, keep_prob) keeps 70 % of the units; "
        "Keras' Dropout(rate), like PyTorch's nn.Dropout(p), drops 70 %. Same number, opposite meaning.",
        ("Translate the probability when porting: p = 1 − keep_prob = 0.3.",),
        (Variant("drop70", "broken", "p = 0.7: drops 70 % (keep_prob ported as is)", {"dropout": 0.7}),
         Variant("drop30", "fixed", "fix: p = 0.3, keeps 70 %", {"dropout": 0.3})),
        ("HIGH_DROPOUT",)),
    CaseStudy(
        "002", "a hand-written ELU, raw 0–255 pixels, and NaN",
        Source("a Chinese-language Q&A post", "Custom ELU activation in Keras does not train like the built-in one",
               "a question and an answer", "Chinese",
               (("使用自定义的Keras或Tensorflow函数,损耗立即接近零,并且精度完全没有提高。",
                 "with the custom Keras or TensorFlow function the loss immediately approaches zero, and the "
                 "accuracy does not improve at all."),
                # the copy's word order is garbled around the inline code; the English follows the sense
                ("原因是K.exp(x)在inf左右变为x > 88(而MNIST数据集包含从0到255的值)。",
                 "The reason is that K.exp(x) becomes inf around x > 88 (and MNIST contains values from 0 to "
                 "255). [The Chinese copy's word order is garbled here: word for word it reads ‘K.exp(x) becomes "
                 "x > 88 around inf’.]")),
               credit="The explanation (exp overflowing above about 88, 0 · inf = NaN in the backward pass, the "
                      "built-in ELU's own gradient) and both fixes are the answer's."),
        "With the built-in ELU the network learns a little (the question's words); with a hand-written ELU, "
        "where(x > 0, x, exp(x) − 1), the loss at once \"approaches zero\", the question says, and the accuracy "
        "never improves. The answer finds every weight NaN; so do the runs below, and their loss is NaN too.",
        "The inputs are raw pixel values 0–255. Pre-activations above about 88 make exp(x) overflow to inf in "
        "float32. `where` hides the inf in the forward pass, but the backward pass multiplies the unused "
        "branch's zero gradient by it: 0 · inf = NaN, and the NaN spreads to every weight.",
        ("Normalise the inputs (pixels / 255).",
         "Or evaluate exp only where it is used: exp(clamp(x, max=0)) − 1. This removes the backward pass's "
         "0 · inf, not the large steps raw pixels cause: normalise as well (on raw pixels those steps can still "
         "grow until a layer's outputs overflow; this case's runs show whether they did)."),
        (Variant("raw", "broken", "hand-written ELU, raw 0–255 pixels", {"elu": "naive", "inputs": "raw"}),
         Variant("scaled", "fixed", "fix 1: inputs scaled to [0, 1]", {"elu": "naive", "inputs": "scaled"}),
         Variant("clamped", "fixed", "fix 2: exp(clamp(x, max=0)), raw pixels", {"elu": "clamped", "inputs": "raw"}),
         # the question's own working model: its sigmoid output and Keras' loss kept, the built-in ELU, raw pixels
         Variant("asked", "asked", "the question's model: built-in ELU, sigmoid output, raw pixels",
                 {"elu": "builtin", "inputs": "raw", "output_act": "sigmoid",
                  "loss": "keras_categorical_crossentropy"})),
        ("NONFINITE", "UNNORMALIZED_INPUT")),
    CaseStudy(
        "004", "a copy-net that scores 100 % while its outputs are far from its inputs",
        Source("a Russian-language blog post", "Deep-learning basics by debugging an autoencoder, part 1", "",
               "Russian",
               (("Если посмотреть на метрики — все в огне. Accuracy == 0.993.",
                 # "всё в огне" is slang for "superb"; word for word it would read as a disaster in English
                 "Look at the metrics and everything is superb [literally ‘everything is on fire’, slang for "
                 "excellent]. Accuracy == 0.993."),
                ("Вот и выходит accuracy стопроцентная для нашей identity модели, хотя на самом деле числа там "
                 "совсем не такие же.",
                 "So our identity model gets 100 % accuracy, although the numbers are not the same at all.")),
               original_title="Основы deep learning на примере дебага автоэнкодера, часть №1",
               credit="The diagnosis is the author's own: the post finds both traps (binary accuracy, imshow's "
                      "stretching) itself."),
        "An autoencoder for black-and-white images reports accuracy 0.993 although its reconstructions come out "
        "poor, and a copy-net (its output is the sigmoid of its input) scores 100 % and looks right on screen, "
        "yet its outputs are far from its inputs.",
        "Two things mislead. Keras picks what \"accuracy\" means from the output's shape: with a last dimension "
        "of 1, as the blog's (64, 64, 1) images have, it is binary accuracy: a pixel counts as right "
        "when prediction and target fall on the same side of 0.5 (Keras counts an output of exactly 0.5 as 0), "
        "however far apart they are. And imshow "
        "stretches every image over its whole colour scale (black to white in grey), so an output of 0.5 and 0.73 "
        "looks like 0 and 1.",
        ("Judge reconstructions by their error (mean squared error per pixel), and draw images with a fixed "
         "scale: imshow(..., vmin=0, vmax=1). The sigmoid output itself is right for targets in [0, 1].",),
        (Variant("copy", "broken", "copy-net: identity weights, no bias, sigmoid", {"model": "copy"}),
         Variant("autoencoder", "fixed", "autoencoder 784→128→784, sigmoid output", {"model": "autoencoder"})),
        ()),
)
CASE_IDS = tuple(c.id for c in CASES)


def case(case_id: str) -> CaseStudy:
    for c in CASES:
        if c.id == str(case_id):
            return c
    raise ValueError(f"unknown case study {case_id!r}; the case studies are {', '.join(CASE_IDS)}")


# --------------------------------------------------------------------------- the page's text on each case


def case_intro(case_id: str) -> str:
    """The case's source (credited by what it is and its title, quoted in English with the original beside
    it), symptom and broken setup, as Markdown."""
    c = case(case_id)
    s = c.source
    quotes = "\n>\n".join(f"> “{english}”  \n> <small>{s.language} original: {original}</small>"
                           for original, english in s.quotes)
    return (f"**Source.** {source_line(s)} Written in {s.language}; quotes translated to English. {s.credit}"
            f"\n\n{quotes}\n\n**Symptom.** {c.symptom}\n\n**What is going on.** {c.setup}")


def case_fix(case_id: str) -> str:
    fixes = case(case_id).fixes
    if len(fixes) == 1:
        return f"**Fix.** {fixes[0]}"
    return "**Fixes.**\n\n" + "\n".join(f"{i}. {f}" for i, f in enumerate(fixes, 1))


def case_callout(preset: str) -> str:
    """The page-top box of the case studies: how long each case's runs trained, on how many seeds.

    Case runs have their own lengths (CASE_PRESETS), not the activation recipe's, so the comparison
    pages' callout would misstate them; and a case compares a broken run with its fix, never activations.
    """
    from .narrate import callout_html, is_preview, seeds_phrase
    p = CASE_PRESETS[preset]
    data = "a synthetic stand-in data set" if p["dataset"] == "synthetic" else "FashionMNIST"
    seeds = (f"on {seeds_phrase(p['seeds'])}" + ("" if tuple(p["dropout_seeds"]) == tuple(p["seeds"]) else
             f"; case 001, whose runs train together as one stacked model, on {seeds_phrase(p['dropout_seeds'])}"))
    images = "all 50,000" if p["train"] >= 50_000 else f"the first {p['train']:,} of the 50,000"
    held = (" (FashionMNIST's 60,000 training images are split into 50,000 for training and 10,000 held out for "
            "validation)" if "Fashion" in data else "")
    # the plain loops evaluate on a slice; case 001 goes through the project's trainer, which uses whole sets
    tested = ("" if p["eval"] >= 10_000 else f" Cases 000, 002 and 004 measure validation and test accuracy on the "
              f"first {p['eval']:,} images of each set (one image is {100 / p['eval']:.2g} points); case 001 on all "
              "of them.")
    body = (f"Each case's runs trained for {p['epochs']} epochs on {images} training images of {data}{held}, "
            f"{seeds}.{tested}")
    if not is_preview(preset):
        return callout_html(f"Results: the “{preset}” preset", body, preview=False)
    full = CASE_PRESETS["tutorial"]
    body += (f" The gap between a broken run and its fix mostly shows at this length, but not always as it ends: a "
             f"net that learns slowly is furthest behind early, and a run that breaks by chance (a NaN from one "
             f"unlucky step) may not have broken yet; "
             f"<code>make report PRESET=tutorial</code> trains {full['epochs']} epochs on all {full['train']:,} "
             f"images, on {seeds_phrase(full['seeds'])}.")
    if len(p["seeds"]) == 1:
        body += " With one seed a case shows one run per set-up, not a spread."
    return callout_html(f"Preview: the “{preset}” preset", body, preview=True)


# --------------------------------------------------------------------------- run specs


@dataclass(frozen=True)
class CaseRun:
    """One plain-loop case-study run; ``run_name()`` is its name in the run store."""

    case_id: str
    variant: Variant
    preset: str
    settings: dict

    def key(self) -> str:
        blob = json.dumps({"case": self.case_id, "variant": self.variant.key, "preset": self.preset,
                           **self.settings}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        return f"case{self.case_id}-{self.variant.key}-{self.preset}-{self.key()}"


def _preset(preset: str) -> dict:
    if preset not in CASE_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(CASE_PRESETS)}")
    return CASE_PRESETS[preset]


def _loop_settings(c: CaseStudy, v: Variant, preset: str) -> dict:
    p = _preset(preset)
    common = {"dataset": p["dataset"], "train_images": p["train"], "eval_images": p["eval"], "epochs": p["epochs"],
              "seeds": list(p["seeds"])}
    if c.id == "000":  # the question's PyTorch net (784 inputs here), with Keras' optimizer and batch size
        return common | {"hidden_sizes": [128, 64], "activation": "tanh", "optimizer": "adam", "lr": 1e-3,
                         "batch_size": 128, "init": "default"} | v.settings
    if c.id == "002":  # "a simple 8-layer fully connected network, 128 nodes in each layer", SGD(lr=0.01), batch 64
        elu = "elu" if v.settings["elu"] == "builtin" else f"case002_{v.settings['elu']}_elu"  # "elu" is F.elu
        head = {k: v.settings[k] for k in ("output_act", "loss") if k in v.settings}
        return common | {"hidden_sizes": [128] * 8, "activation": elu,
                         "optimizer": "sgd", "lr": 0.01, "batch_size": 64, "init": "xavier",  # Keras' glorot_uniform
                         "inputs": v.settings["inputs"]} | head
    if c.id == "004":  # Adam and MSE as in the blog, on black-and-white images
        return common | {"model": v.settings["model"], "optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                         "loss": "mse", "images": "binarised at 0.5"}
    raise ValueError(f"case {c.id} has no plain-loop runs")


def _dropout_config(v: Variant, preset: str):
    """Case 001 as a BaseNetwork config: the question's 4 x 256 ReLU MLP, Adam 1e-3, batch 100."""
    p = _preset(preset)
    return make_config("relu", preset, hidden_sizes=p["dropout_net"], optimizer="adam", lr=1e-3, batch_size=100,
                       dropout=v.settings["dropout"], max_epochs=p["epochs"], patience=p["epochs"] + 1,
                       train_subset=p["train"], dataset=p["dataset"], seeds=p["dropout_seeds"])


def run_configs(preset: str = "quick") -> list:
    """Every case-study run of ``preset``: objects with ``run_name()`` (what the report checks for)."""
    out = []
    for c in CASES:
        for v in c.variants:
            out.append(_dropout_config(v, preset) if c.id == "001" else CaseRun(c.id, v, preset,
                                                                                 _loop_settings(c, v, preset)))
    return out


# --------------------------------------------------------------------------- training


def _origin(label: str):
    """Mark runs saved inside as coming from ``label`` when the run store supports it."""
    mark = getattr(store, "run_origin", None)
    return mark(label) if mark is not None else contextlib.nullcontext()


def train_case_studies(preset: str = "quick", runs_dir=None, overwrite: bool = False, progress: bool = False,
                       data=None, data_root=None) -> dict:
    """Train (or load) every case-study run: {case id: {variant key: Run}}.

    data_root -- the folder FashionMNIST is read from or put in (default: $GRADFLOW_DATA, else data/)."""
    from .train import train_runs
    _preset(preset)
    cache = {} if data is None else {CASE_PRESETS[preset]["dataset"]: data}
    out: dict = {}
    for c in CASES:
        with _origin(f"case study {c.id}"):
            if c.id == "001":  # a BaseNetwork setting: the project's batched trainer, several seeds
                configs = [_dropout_config(v, preset) for v in c.variants]
                runs = train_runs(configs, runs_dir=runs_dir, overwrite=overwrite, progress=progress,
                                  data_root=data_root)
                out[c.id] = {v.key: r for v, r in zip(c.variants, runs)}
                continue
            out[c.id] = {}
            for v in c.variants:
                spec = CaseRun(c.id, v, preset, _loop_settings(c, v, preset))
                d = _data(spec.settings["dataset"], cache, data_root)
                out[c.id][v.key] = train_case_run(spec, d, runs_dir=runs_dir, overwrite=overwrite)
    return out


def load_case_studies(preset: str = "quick", runs_dir=None) -> dict:
    """The stored case-study runs, {case id: {variant key: Run}}; names the command when one is missing."""
    out: dict = {}
    missing = []
    for c in CASES:
        out[c.id] = {}
        for v in c.variants:
            name = (_dropout_config(v, preset) if c.id == "001"
                    else CaseRun(c.id, v, preset, _loop_settings(c, v, preset))).run_name()
            if store.exists(name, runs_dir):
                out[c.id][v.key] = store.load_run(name, runs_dir)
            else:
                missing.append(name)
    if missing:
        raise store.RunStoreError(f"{len(missing)} case-study run(s) of preset {preset!r} are not in the run store "
                                  f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); train them with "
                                  f"`gradflow train --case-studies --preset {preset}`")
    return out


def run(args) -> int:
    """``gradflow train --case-studies``: train or load every case-study run, one line each."""
    runs = train_case_studies(args.preset, runs_dir=args.out, overwrite=args.overwrite,
                              progress=not args.no_progress, data_root=getattr(args, "data_dir", None))
    for cid, by_variant in runs.items():
        for key, r in by_variant.items():
            acc = r.results.get("test_binary_acc") if cid == "004" else r.results["test_acc"]
            what = "binary accuracy" if cid == "004" else "test accuracy"
            value = "n/a" if acc is None else f"{100 * float(pd.Series(acc).astype(float).mean()):.1f} %"
            print(f"case {cid} {key:<12} {r.name}: {what} {value}")
    return 0

