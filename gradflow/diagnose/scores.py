"""How strongly a run's evidence speaks for a candidate cause (gradflow.diagnose.alternatives):
a score in [0, 1], read as a verdict."""

FOR, STRONG, UNKNOWN, AGAINST = 0.75, 0.9, 0.5, 0.2
# a candidate whose own finding is absent (no SYMMETRIC_UNITS): listed last, below every other unlikely one
RULED_OUT = 0.1
# measured and not the case (inputs that are not tiny, no weight decay): a seldom cause, listed below the
# other unlikely ones so it does not push aside those that share the symptom, above a ruled-out one
NOT_SEEN = 0.15
# nothing recorded speaks for or against it, and it is seldom the cause: still "possible", listed after
# the other possible ones (a loader that never shuffles, when no labels reached rec.step)
SELDOM = 0.45


def verdict(score: float) -> str:
    return "supported" if score >= 0.7 else ("possible" if score >= 0.4 else "unlikely")
