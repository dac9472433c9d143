"""How a run went, from its loss curve and per-epoch metrics: falling, slowly falling on a plateau,
flat, diverging, or not finite. The rules read the verdict to set severities (an error only when the
run is hurt) and to tell a plateau from a net that does not learn by the trend, not by a step count.

Statistics, not thresholds on raw values: a minibatch loss is noisy, so "falling" means the fitted
slope over the tail is several standard errors below zero, or the tail's mean is several standard
errors below the head's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_POINTS = 8  # fewer loss values than this say nothing about a trend
HEAD_FRACTION = 0.1  # the first 10 % of the curve (at least HEAD_MIN points) is "where it started"
HEAD_MIN = 3
TAIL_FRACTION = 0.3  # the last 30 % is "where it is now"; its slope says whether it still moves
SIGNIFICANT = 3.0  # standard errors: a fall or rise this far beyond the noise is real
# Diverging: the loss now sits this many times above where it started (and above chance for a
# classifier): a learning rate far too high. A loss that hovers 20 % above chance is not this.
DIVERGE_FACTOR = 2.0
# At chance: a cross-entropy loss within 5 % of ln(classes), the loss of a uniform guess.
LOSS_CHANCE_FRACTION = 0.05
# A run is "long enough" to call flat (not just early) with this many loss values.
FLAT_MIN_POINTS = 30
# Accuracy: "at chance" within 5 points of 1/classes.
CHANCE_MARGIN = 0.05
# ... and a run that rose above chance early, then sat at chance for its last 3 epochs or more, fell back
# (a weight decay or a rate that undid what the first epochs learned): as stuck as one that never rose.
BACK_AT_CHANCE_EPOCHS = 3

# Verdicts
FINE, SLOW, HURT, UNKNOWN = "fine", "slow", "hurt", "unknown"


@dataclass
class Trend:
    """The shape of a loss curve (values in step order)."""
    points: int
    head_mean: float
    tail_mean: float
    tail_slope: float  # per step
    tail_slope_t: float  # slope / its standard error: below -SIGNIFICANT is a real fall
    drop_z: float  # (head - tail) / standard error of the difference: above SIGNIFICANT it fell over the run
    recent_drop_z: float  # the same between the window just before the tail and the tail
    tail_steps: tuple[int, int]
    nonfinite: bool

    @property
    def falling(self) -> bool:
        """Still falling now: the tail's slope, or the tail against the window before it. (A fall in the
        first steps only -- the output bias fitting the class frequencies -- does not count.)"""
        return self.tail_slope_t < -SIGNIFICANT or self.recent_drop_z > SIGNIFICANT

    @property
    def fell(self) -> bool:
        """Fell over the run (head to tail), maybe long ago."""
        return self.drop_z > SIGNIFICANT

    @property
    def rising(self) -> bool:
        return self.drop_z < -SIGNIFICANT

    def to_dict(self) -> dict:
        return {"loss_points": self.points, "loss_head_mean": self.head_mean, "loss_tail_mean": self.tail_mean,
                "loss_tail_slope": self.tail_slope, "loss_tail_slope_t": self.tail_slope_t,
                "loss_drop_z": self.drop_z, "loss_recent_drop_z": self.recent_drop_z,
                "loss_tail_steps": list(self.tail_steps)}


def _slope_t(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its t statistic (slope / standard error)."""
    if len(x) < 3 or np.ptp(x) == 0:
        return 0.0, 0.0
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = math.sqrt(float(np.sum(resid ** 2)) / (len(x) - 2) / float(np.sum((x - x.mean()) ** 2)))
    if se == 0:
        return float(slope), 0.0 if slope == 0 else math.copysign(math.inf, slope)
    return float(slope), float(slope / se)


def loss_trend(steps, values) -> Trend | None:
    """The trend of a loss curve; None with fewer than MIN_POINTS finite values."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    x, y = steps[finite], values[finite]
    if len(y) < MIN_POINTS:
        return None
    n_head = max(HEAD_MIN, int(len(y) * HEAD_FRACTION))
    n_tail = max(HEAD_MIN, int(len(y) * TAIL_FRACTION))
    head, tail, tail_x = y[:n_head], y[-n_tail:], x[-n_tail:]
    slope, t = _slope_t(tail_x, tail)
    before = y[-2 * n_tail:-n_tail] if len(y) >= 2 * n_tail + HEAD_MIN else y[:-n_tail]
    return Trend(int(len(y)), float(head.mean()), float(tail.mean()), slope, t, _drop_z(head, tail),
                 _drop_z(before, tail), (int(tail_x[0]), int(tail_x[-1])), bool((~finite).any()))


def _drop_z(earlier: np.ndarray, later: np.ndarray) -> float:
    """(mean earlier - mean later) in standard errors of that difference."""
    if len(earlier) < 2 or len(later) < 2:
        return 0.0
    se = math.sqrt(earlier.var(ddof=1) / len(earlier) + later.var(ddof=1) / len(later))
    diff = float(earlier.mean() - later.mean())
    return diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))


@dataclass
class Outcome:
    """How one member's (seed's) run went: ``verdict`` in FINE, SLOW, HURT, UNKNOWN, ``reason`` a short
    key ('nonfinite', 'diverging', 'not_learning', 'accuracy_at_chance', 'plateau', 'learning', ...)
    and the numbers behind it."""
    verdict: str
    reason: str
    evidence: dict = field(default_factory=dict)

    @property
    def hurt(self) -> bool | None:
        """True: the run is hurt; False: it learns (fine or slowly); None: cannot tell."""
        return {HURT: True, FINE: False, SLOW: False}.get(self.verdict)


def diverging(trend: Trend | None, chance: float | None) -> bool:
    """The loss sits far above where it started (and far above chance for a classifier)."""
    if trend is None or not math.isfinite(trend.tail_mean):
        return False
    above = trend.tail_mean > DIVERGE_FACTOR * trend.head_mean and trend.rising
    return above and (chance is None or trend.tail_mean > DIVERGE_FACTOR * chance)


def loss_outcome(trend: Trend | None, chance: float | None) -> Outcome:
    """The verdict a loss curve gives; ``chance`` is ln(classes) for a cross-entropy loss, else None."""
    if trend is None:
        return Outcome(UNKNOWN, "too_few_points")
    ev = trend.to_dict()
    if trend.nonfinite:
        return Outcome(HURT, "nonfinite", ev)
    if diverging(trend, chance):
        return Outcome(HURT, "diverging", ev)
    if chance is not None and trend.tail_mean > chance * (1 - LOSS_CHANCE_FRACTION):
        if trend.falling:
            return Outcome(SLOW, "plateau", ev)  # still near chance, but the fall is real
        return Outcome(HURT if trend.points >= FLAT_MIN_POINTS else UNKNOWN, "not_learning", ev)
    if trend.falling or trend.fell:
        return Outcome(FINE, "learning", ev)
    if trend.rising:
        return Outcome(HURT, "rising", ev)
    if chance is not None:  # clearly below chance: it learned, and has settled
        return Outcome(FINE, "learned", ev)
    return Outcome(UNKNOWN, "flat", ev)


def accuracy_outcome(val_acc, num_classes: int, train_loss=None) -> Outcome:
    """The verdict per-epoch metrics give: accuracy at chance over the run, or clearly above it."""
    acc = np.asarray(val_acc, dtype=float)
    acc = acc[np.isfinite(acc)]
    if train_loss is not None and not np.isfinite(np.asarray(train_loss, dtype=float)).all():
        return Outcome(HURT, "nonfinite")
    if acc.size == 0:
        return Outcome(UNKNOWN, "no_accuracy")
    frac = acc / 100.0 if acc.max() > 1.0 else acc  # percent or fraction
    best, chance = float(frac.max()), 1.0 / num_classes
    ev = {"best_val_acc": best, "chance": chance, "epochs": int(acc.size)}
    if best <= chance + CHANCE_MARGIN:
        return Outcome(HURT, "accuracy_at_chance", ev)
    above = np.flatnonzero(frac > chance + CHANCE_MARGIN)
    tail = int(acc.size - 1 - above[-1])  # the last epochs at chance, after the last one above it
    if tail >= BACK_AT_CHANCE_EPOCHS:
        return Outcome(HURT, "accuracy_back_at_chance",
                       ev | {"best_epoch": int(frac.argmax()), "epochs_at_chance": tail, "last_val_acc": float(frac[-1])})
    return Outcome(FINE, "accuracy_above_chance", ev)
