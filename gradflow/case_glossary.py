"""The case-study page's glossary: the terms that page uses, for a student who has not met them yet.

Terms the other pages define too (logits, nats, seed, ...) keep their wording from
:data:`gradflow.narrate_pages.GLOSSARY`, so one word means one thing across the set. Each entry also
names how the page writes the term (``seen_as``), so a test can check that every term defined is one
the page really uses.
"""
from __future__ import annotations

from .narrate_pages import GLOSSARY as SHARED

# (term, definition, how the page writes it: lower-case text to find in the page)
TERMS = (
    ("autoencoder", "a network trained to give back its own input, here through a narrower middle layer "
                    "(784 → 128 → 784), so it has to learn a compact code of each image. It is judged by how far its "
                    "outputs are from its inputs, not by an accuracy.", "autoencoder"),
    ("backward pass, forward pass", "the forward pass computes the outputs and the loss from the inputs; the "
                                    "backward pass (backpropagation) goes from the loss back towards the inputs and "
                                    "computes every weight's gradient, multiplying at each layer by that layer's "
                                    "slope.", "backward pass"),
    ("batch, step, epoch", "a batch is the handful of training images one step learns from (64 to 128 here); a "
                           "step computes the loss on one batch and updates the weights once (the page counts steps "
                           "from 0); an epoch is one pass over all the training images.", "epoch"),
    ("binary accuracy", "the share of outputs on the same side of 0.5 as their target: what Keras reports as "
                        "\"accuracy\" for outputs it reads as yes/no. An output of 0.49 for a target of 0 counts as "
                        "right, just like an output of 0.", "binary accuracy"),
    ("chance", "the accuracy of guessing: with 10 classes, 10 %. A run at chance has learned nothing that shows in "
               "its answers.", "chance"),
    ("cross-entropy", "the usual classification loss: minus the log of the probability the model gives the right "
                      "class, averaged over the images. 0 when the model is sure and right, large when it is sure and "
                      "wrong.", "cross-entropy"),
    ("dead unit", SHARED["dead unit"], "dead"),
    ("dropout, p, keep_prob", "during training, dropout sets each unit's output to 0 at random (a new draw for every "
                              "image) and scales the others up, so the network cannot lean on any one unit; at test "
                              "time it is off. PyTorch's p and Keras' rate are the probability of **dropping** a unit; "
                              "TensorFlow 1's keep_prob is the probability of keeping it: keep_prob = 1 − p.",
     "keep_prob"),
    ("ELU", "the exponential linear unit: ELU(x) = x for x > 0 and exp(x) − 1 for x ≤ 0. Like ReLU for positive x "
            "(it passes them through unchanged), smooth and never below −1 for negative x.", "elu"),
    ("exp overflow, inf", "a 32-bit float (float32, what these networks compute in) holds numbers up to about "
                          "3.4e38. exp(x) is larger than that for x above 88.7, so it is stored as inf (infinity).",
     "overflow"),
    ("finding, severity", "what gradflow's diagnosis reports about a run: a code (e.g. NONFINITE), the layers it "
                          "concerns, on how many seeds it was seen, and a severity: *error* (the run is broken), "
                          "*warning* (something is off: look), *info* (a note on how to read the run).", "finding"),
    ("Glorot initialisation", "Keras' default for Dense layers (PyTorch calls it Xavier): weights drawn uniformly "
                              "within ±sqrt(6 / (inputs + outputs)) of the layer.", "glorot"),
    ("gradient", "how much the loss changes when one number (a weight, a layer's output) changes a little. Training "
                 "moves each weight a small step against its gradient.", "gradient"),
    ("imshow, vmin, vmax", "Matplotlib's imshow stretches each picture over its whole colour scale (in grey: the "
                           "darkest value black, the brightest white) unless vmin and vmax fix the scale; with "
                           "vmin=0, vmax=1 an output of 0.5 is mid-grey.",
     "vmin"),
    ("logits", SHARED["logits"], "logits"),
    ("mean squared error (MSE)", "the average of (output − target)² over the pixels: 0 for a perfect copy. Its "
                                 "square root is the size of a typical pixel's error, on the pixels' own 0–1 scale.",
     "mean squared error"),
    ("NaN", "\"not a number\": the result of 0 · inf, inf − inf or 0 / 0. Anything computed with a NaN is NaN, so a "
            "single NaN in a gradient makes every weight it updates NaN, and the loss NaN from then on.", "nan"),
    ("nats", SHARED["nats"], "nats"),
    ("normalising the inputs", "rescaling the inputs to a small range before training: pixels / 255 gives [0, 1]. "
                               "Raw 0–255 pixels make the first layer's weighted sums 255 times larger (before "
                               "its bias) and its weight gradients tens of times larger (case 002 measures how "
                               "much).", "normalis"),
    ("pre-activation", "a Linear layer's output, the number the activation function is applied to (the x in "
                       "ELU(x)).", "pre-activation"),
    ("saturated, flat region", SHARED["saturated"], "flat region"),
    ("seed", SHARED["seed"], "seed"),
    ("SGD, Adam, learning rate", "SGD (stochastic gradient descent) moves each weight by the learning rate times its "
                                 "gradient on one batch; Adam scales each weight's step by running averages of its "
                                 "past gradients, so its steps stay near the learning rate in size.", "sgd"),
    ("sigmoid, tanh, ReLU", "sigmoid(x) = 1 / (1 + exp(−x)) lies between 0 and 1; tanh(x) between −1 and 1; both "
                            "flatten out for large |x|. ReLU(x) = max(x, 0).", "sigmoid"),
    ("slope (of an activation)", "its derivative at x: what the backward pass multiplies each incoming gradient "
                                 "by on its way back through the activation.", "slope"),
    ("softmax", "turns a vector of logits z into probabilities, exp(z_k) / Σ_j exp(z_j): all positive, summing to 1. "
                "PyTorch's cross-entropy applies it itself.", "softmax"),
    ("spread (std) of the weights", "their standard deviation. \"A weight gradient 5 times the spread of its "
                                    "weights\" means one plain SGD step at learning rate 0.01 moves them by 5 % of "
                                    "their spread.", "spread"),
    ("update:data ratio", SHARED["update:data ratio"], "std of its weights"),
    ("validation and test images", "images kept out of training: the validation images are checked after every "
                                   "epoch (the curves), the test images once, at the end (every \"test "
                                   "accuracy\" on the page).", "test accuracy"),
    ("where (torch.where, tf.where, K.switch)", "where(condition, a, b) picks a where the condition holds and b "
                                                "elsewhere, number by number. Both a and b are computed in full, and "
                                                "both take part in the backward pass.", "where"),
)


# terms only the runs' findings use (the page's own text never does): defined only when a finding says them
FROM_FINDINGS = ("dead unit",)


def case_glossary(findings_text: str | None = None) -> str:
    """The page's glossary as a Markdown list, in alphabetical order, shared definitions as on every page.

    findings_text -- the findings tables the page shows, as text: a term in FROM_FINDINGS is defined only
    when they use it (None: every term)."""
    said = None if findings_text is None else findings_text.lower()
    kept = [e for e in TERMS if said is None or e[0] not in FROM_FINDINGS or e[2] in said]
    return "\n".join(f"- **{t}**: {text}" for t, text, _ in sorted(kept, key=lambda e: e[0].lower()))
