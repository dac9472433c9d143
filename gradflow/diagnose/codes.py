"""Every code the diagnosis can emit, with what triggers it: the single list the README's table
and the benchmark's ground truth are checked against (a test fails when a rule emits a code that
is not here, or the README misses one).
"""
from __future__ import annotations

# Raised whenever a rule changes what it emits: a run's findings.json written by older rules is then
# re-diagnosed from its stored recording when read (store.Run.findings), never served stale.
# 4: NOT_LEARNING is a warning when early stopping cut a run that was still moving (PLATEAU_STOP);
#    messages write numbers as the reports do (8.4e-6) and no longer cite case studies as "seeds".
# 5: EVAL_MODE (training steps in eval mode); NOT_UPDATED also when no layer moves at all (optimizer.step()
#    missing, or rec.step() before it); NOT_LOG_PROBABILITIES (NLLLoss without log_softmax; NLLLoss on a
#    softmax was BOUNDED_OUTPUT); UPDATE_RATIO for a step size that collapses mid-run; clearer
#    ACCUMULATING_GRADIENT and BOUNDED_OUTPUT messages.
# 6: an early-stopped member is judged on the epochs up to its stop (the batch's continuation is left
#    out); "too low a learning rate" is unlikely when the same rate moves another layer at a healthy
#    pace, and no longer a candidate cause of VANISHING_GRADIENT.
# 7: the ranked causes read which optimizers the Recorder saw step the model (record/optimizer_watch):
#    NOT_UPDATED's causes told apart (step() never called, another model's optimizer, a layer left out,
#    lr 0), the optimizer and its learning rate named in the evidence, and a schedule that decayed
#    to almost nothing a candidate cause of NOT_LEARNING; with unnormalised inputs, "too high a learning
#    rate" ranks below them.
# 8: "early stopping ended it on its initial plateau" is unlikely for a NOT_LEARNING seed that trained
#    every epoch of its recipe (it was "possible" whenever the run had a patience), and so is "the learning rate
#    is off for this layer" for a slow layer of gradflow's own trainer (one rate for every layer) while
#    another layer moves at a healthy pace. SKIPPED_STEPS: the steps a gradient scaler skipped (NaN/inf
#    gradients, no optimizer step) are no longer NONFINITE errors. SYMMETRIC_UNITS (constant or zero
#    initialisation), and NOT_UPDATED no longer reads such a layer's uniform change as no change.
#    LOSS_BROADCAST (an MSE/L1 loss broadcasting (N, 1) against (N,)).
# 9: DEAD_UNITS under heavy dropout (p > 0.5) names the dropout first (case study 001); NONFINITE says
#    "the activation at Linear 3" where it said "activation Linear 3". LOSS_BROADCAST also for a hand-written
#    mean((out - y) ** 2) whose (N, 1) - (N,) difference became (N, N) (no PyTorch warning there).
#    UNSHUFFLED_DATA (class labels that arrive one class at a time: a loader that never shuffles).
# 10: NO_GRADIENT says where the gradient was lost: a layer never called in forward(), one run inside
#    torch.no_grad(), or a graph cut (.detach(), a NumPy round trip) between two named layers.
#    UNNORMALIZED_INPUT also for tiny inputs (pixels divided by 255 twice); NOT_LEARNING also for an accuracy
#    that left chance and fell back for the last 3+ epochs; weight decay that pulls the weights to zero is a
#    cause (the optimizer watch now keeps weight_decay and momentum), and so is clip_grad_norm_ to a tiny
#    max_norm (the recorder keeps the joint gradient norm of recorded steps; clipped, it never varies).
#    UPDATE_RATIO is a warning, not a note, when every weight layer of a run barely moves.
# 11: a run of gradflow's own training step is never suspected of gradient clipping (it has none);
#    NOT_LEARNING on a seed early stopping ended mid-plateau says "stayed at chance in the N epochs it was
#    judged on"; VANISHING_GRADIENT's slope factor says the weights multiply in a factor of their own.
#    A loss that misreads the outputs (BOUNDED_OUTPUT) is not blamed on the learning rate when the updates
#    are no larger than healthy; weight decay is read from the optimizer watch when a plain loop's stored
#    config does not say; an output activation saturated by targets at the ends of its range (an
#    autoencoder's sigmoid on [0, 1] pixels) is a note, not a warning; SATURATION reads no step after a
#    model's first NaN/inf (every unit reads as flat there: NONFINITE tells that story).
# 12: a finding's suggestion leads with the fix of its top-ranked cause when the run supports it (fixes.py),
#    not the code's generic advice; a missing zero_grad() ranks first for DIVERGING/EXPLODING_GRADIENT;
#    SATURATION of a ReLU-family layer (cause one_sided) has its own causes (units off from the start, a rate
#    that knocked them out), and so has DEAD_UNITS; labels that do not match the inputs are a possible cause of
#    NOT_LEARNING when nothing else is wrong; a layer whose rate decayed to nothing gets one UPDATE_RATIO, not
#    two; a warning no longer calls itself "a note".
# 13: NOT_LEARNING also when every weight layer's weights collapsed towards zero (cause weights_collapsed: an
#    absurd weight decay such as SGD lr=0.1, weight_decay=0.5 got no finding when the accuracy was not at chance
#    for 3 epochs); a parameter is a normalisation scale only when its module's type is a normalisation layer's
#    (not the model's own raw nn.Parameter tensors, nor a class merely named "Normalized..."); UPDATE_RATIO of a
#    layer rewritten too fast lists only causes that make steps large, and raw inputs come before "the rate is off
#    for this layer"; NONFINITE's input cause says what overflowed (exp above 88.7 is inf in float32, then NaN);
#    a bounded output before cross-entropy is explained in a student's words.
DIAGNOSIS_VERSION = 13

CODES = {
    # whole-run and data problems
    "NO_DATA": "the Recorder saw no rec.step() call, so there is nothing to judge",
    "NONFINITE": "a NaN or inf appeared in an activation, a gradient or the loss; names the first place",
    "SKIPPED_STEPS": "the optimizer skipped the steps with NaN/inf gradients and took the others (a gradient "
                     "scaler in mixed precision); info, a warning when over a quarter of the steps are skipped",
    "UNNORMALIZED_INPUT": "the inputs are far outside a normalised range: a mean or std far above it (raw 0-255 "
                          "pixels), or every value tiny (pixels divided by 255 twice)",
    # gradient flow
    "VANISHING_GRADIENT": "the first layer's weight gradient is 100x smaller than the last layer's",
    "EXPLODING_GRADIENT": "gradients 100x larger at the input end, a gradient far larger than its weights, "
                          "or a gradient norm that grew a thousandfold",
    "UPDATE_RATIO": "a layer's update:data ratio far from the healthy ~1e-3 (below 1e-5 or above 1e-1), or "
                    "one that collapsed mid-run while the gradient did not (a scheduler stepped per batch)",
    "ACCUMULATING_GRADIENT": "gradients from earlier steps were still in .grad when backward ran again "
                             "(optimizer.zero_grad() is missing)",
    "NOT_UPDATED": "a layer receives gradients but its weights never change (left out of the optimizer); or no "
                   "layer moves at all (optimizer.step() missing, or rec.step() called before it)",
    "NO_GRADIENT": "a trainable layer received no gradient: never called in forward(), run under torch.no_grad(), "
                   "its output detached before the loss, or rec.step() called before backward()",
    "ONLY_NORM_TRAINABLE": "the only trainable parameters are normalisation layers' scales and shifts",
    # units
    "SATURATION": "many units of a bounded activation (tanh, sigmoid) sit where its derivative is ~0; or nearly "
                  "every unit of a ReLU-family layer is switched off, with its own likely causes (off from the first "
                  "step, as after a far-negative bias, or knocked out by the learning rate)",
    "DEAD_UNITS": "a quarter or more of a layer's units never pass a gradient over a whole input set",
    "SYMMETRIC_UNITS": "every unit of a weight layer is still a copy of the others after training steps "
                       "(constant or zero initialisation: identical units get identical gradients)",
    "HIGH_DROPOUT": "dropout drops more than half the units (a keep-probability passed as p), seen in a "
                    "module's p or in the random zeros of a layer's input (two passes of one batch)",
    "EVAL_MODE": "the model was in eval mode (model.eval()) during training steps: dropout off, batch norm "
                 "on its running statistics",
    # output and loss
    "BOUNDED_OUTPUT": "a bounded function (tanh, sigmoid, softmax) on the logits of a loss that expects "
                      "raw logits or probabilities; info when the output range fits the targets",
    "NOT_LOG_PROBABILITIES": "NLLLoss fed the model's raw outputs or softmax probabilities instead of "
                             "log-probabilities (log_softmax missing)",
    "LOSS_BROADCAST": "an elementwise loss (MSE, L1, Huber or mean((out - y) ** 2) by hand) broadcast an output and targets of different shapes "
                      "((N, 1) against (N,)): every output compared with every target",
    "TARGET_OUT_OF_RANGE": "the targets lie outside the range the model's bounded output can reach",
    "UNSHUFFLED_DATA": "the training batches hold one or two classes each: the data arrives ordered by class, "
                       "not shuffled (DataLoader(shuffle=False) on a class-sorted dataset)",
    # how training went
    "NOT_LEARNING": "validation accuracy never left chance, or left it and fell back for the last epochs, or the loss "
                    "stayed at ln(classes) and was not falling, or every weight layer's weights collapsed towards zero "
                    "(a weight decay far too strong)",
    "DIVERGING": "the loss rose far above where it started (the learning rate is too high)",
    "PLATEAU_STOP": "early stopping ended a run on its initial plateau while it was still moving",
    # the tool itself
    "RECORDER_ERROR": "a statistic could not be computed and was skipped (training was not affected)",
}
