"""The recording's vocabulary: every quantity name, pseudo-layer and non-finite location, once.

The recorder writes these names into the ``quantity``, ``layer`` and ``where`` columns of its
tables; the diagnosis and the notebooks select rows by them. Code refers to the constants, so a
misspelt name is an ``AttributeError`` at import, not an empty DataFrame at run time. A saved
recording stores the strings, so the values below are part of the on-disk format: never rename one.
"""
from __future__ import annotations

import re

# --------------------------------------------------------------------------- pseudo-layers
# Rows that belong to the whole model rather than to one of its modules.
INPUT_LAYER = "<input>"  # the model's input batch
OUTPUT_LAYER = "<output>"  # the model's output (the logits of a classifier)
MODEL_LAYER = "<model>"  # the loss
ROOT_LAYER = "<root>"  # the model itself when it has parameters of its own (named "" by torch)
WHOLE_MODEL_LAYERS = (INPUT_LAYER, OUTPUT_LAYER, MODEL_LAYER)

# --------------------------------------------------------------------------- histogram kinds
ACT = "act"  # activation outputs
GRAD = "grad"  # weight gradients

# --------------------------------------------------------------------------- scalar quantities
# per trainable layer, on recorded steps
GRAD_NORM = "grad_norm"
GRAD_STD = "grad_std"
GRAD_MEAN = "grad_mean"
WEIGHT_STD = "weight_std"
GRAD_DATA_RATIO = "grad_data_ratio"
UPDATE_DATA_RATIO = "update_data_ratio"
GRAD_NONFINITE = "grad_nonfinite"
UNIT_SPREAD = "unit_spread"
# per activation layer, on recorded steps
ACT_MEAN = "act_mean"
ACT_STD = "act_std"
ACT_NONFINITE = "act_nonfinite"
SATURATION = "saturation"
ACT_GRAD_STD = "act_grad_std"
ACT_GRAD_OUT_NONFINITE = "act_grad_out_nonfinite"
ACT_GRAD_IN_NONFINITE = "act_grad_in_nonfinite"
# per activation layer, from a dead-unit pass
DEAD_COUNT = "dead_count"
DEAD_FRACTION = "dead_fraction"
# the model's input and output ranges (layers INPUT_LAYER / OUTPUT_LAYER), on recorded steps
INPUT_MIN, INPUT_MAX, INPUT_MEAN, INPUT_STD = "input_min", "input_max", "input_mean", "input_std"
OUTPUT_MIN, OUTPUT_MAX, OUTPUT_MEAN, OUTPUT_STD = "output_min", "output_max", "output_mean", "output_std"
# the loss (layer MODEL_LAYER), every step it is passed to rec.step()
LOSS = "loss"
# every parameter's gradient together (layer MODEL_LAYER), on recorded steps of a one-member model
GRAD_NORM_TOTAL = "grad_norm_total"

QUANTITIES = {
    GRAD_NORM: "L2 norm of the layer's weight gradient",
    GRAD_STD: "std of the layer's weight gradient",
    GRAD_MEAN: "mean of the layer's weight gradient",
    WEIGHT_STD: "std of the layer's weight before the optimizer step",
    GRAD_DATA_RATIO: "std(gradient) / std(weight): how large a step the raw gradient is",
    UPDATE_DATA_RATIO: "std(weight change) / std(weight): the optimizer step's relative size (~1e-3 healthy)",
    GRAD_NONFINITE: "number of NaN/inf values in the weight gradient",
    UNIT_SPREAD: "how different the layer's units are: std of the weights across units (rows), averaged over "
                 "the inputs, / mean |weight|; 0 when every unit is a copy of the others",
    ACT_MEAN: "mean of the activation's output",
    ACT_STD: "std of the activation's output",
    ACT_NONFINITE: "number of NaN/inf values in the activation's output",
    SATURATION: "fraction of units whose derivative is below 6 % of the activation's maximum",
    ACT_GRAD_STD: "std of the gradient arriving at the activation's output",
    ACT_GRAD_OUT_NONFINITE: "number of NaN/inf values in the gradient at the activation's output",
    ACT_GRAD_IN_NONFINITE: "number of NaN/inf values in the gradient leaving the activation (at its input)",
    DEAD_COUNT: "units that no example of a full pass moves (no gradient passes, no signal carried)",
    DEAD_FRACTION: "dead units / units of the layer",
    INPUT_MIN: "smallest value of the model's input batch",
    INPUT_MAX: "largest value of the model's input batch",
    INPUT_MEAN: "mean of the model's input batch",
    INPUT_STD: "std of the model's input batch",
    OUTPUT_MIN: "smallest value of the model's output",
    OUTPUT_MAX: "largest value of the model's output",
    OUTPUT_MEAN: "mean of the model's output",
    OUTPUT_STD: "std of the model's output",
    LOSS: "the loss passed to rec.step() (member -1: one loss shared by all members)",
    GRAD_NORM_TOTAL: "L2 norm of all the model's gradients together at rec.step(), after any clipping "
                     "(clip_grad_norm_ leaves it at max_norm)",
}
# statistic -> quantity, for the input and output range rows
INPUT_RANGE = {"min": INPUT_MIN, "max": INPUT_MAX, "mean": INPUT_MEAN, "std": INPUT_STD}
OUTPUT_RANGE = {"min": OUTPUT_MIN, "max": OUTPUT_MAX, "mean": OUTPUT_MEAN, "std": OUTPUT_STD}
NONFINITE_COUNT = {ACT: ACT_NONFINITE, GRAD: GRAD_NONFINITE}  # histogram kind -> its non-finite count

# --------------------------------------------------------------------------- non-finite locations
# Where the first NaN/inf of a step was seen (the ``where`` column of the nonfinite table).
GRAD_LOC = "grad"
ACTIVATION_LOC = "activation"
ACTIVATION_GRAD_OUT_LOC = "activation_grad_out"
ACTIVATION_GRAD_IN_LOC = "activation_grad_in"
INPUT_LOC = "input"
OUTPUT_LOC = "output"
LOSS_LOC = "loss"

LOCATIONS = {  # location -> how a message names it
    GRAD_LOC: "weight gradient",
    ACTIVATION_LOC: "activation output",
    ACTIVATION_GRAD_OUT_LOC: "gradient at the activation output",
    ACTIVATION_GRAD_IN_LOC: "gradient at the activation input",
    INPUT_LOC: "input",
    OUTPUT_LOC: "model output",
    LOSS_LOC: "loss",
}
BACKWARD_LOCATIONS = (GRAD_LOC, ACTIVATION_GRAD_OUT_LOC, ACTIVATION_GRAD_IN_LOC)  # the rest are forward
LOCATION_OF_COUNT = {  # non-finite count quantity -> where it was counted
    ACT_NONFINITE: ACTIVATION_LOC, GRAD_NONFINITE: GRAD_LOC,
    ACT_GRAD_OUT_NONFINITE: ACTIVATION_GRAD_OUT_LOC, ACT_GRAD_IN_NONFINITE: ACTIVATION_GRAD_IN_LOC,
}
LOCATION_OF_VALUE = {  # a whole-model quantity that is itself non-finite -> where
    **{q: INPUT_LOC for q in INPUT_RANGE.values()},
    **{q: OUTPUT_LOC for q in OUTPUT_RANGE.values()},
    LOSS: LOSS_LOC,
}


# --------------------------------------------------------------------------- module types
# A module whose type name ends in "Norm" (and a dimension): BatchNorm1d, LayerNorm, RMSNorm,
# StackedBatchNorm, a user's GroupNorm-like class. Not any name containing "norm": a user's
# "NormalizedMLP" of raw weights is no normalisation layer, and reading it as one hides its weights
# from every ratio rule.
_NORM_TYPE_NAME = re.compile(r"Norm(\dd)?$")


def is_norm_type(type_name) -> bool:
    """Whether a module type's name (as the recording stores it) is a normalisation layer's."""
    return bool(type_name) and bool(_NORM_TYPE_NAME.search(str(type_name)))
