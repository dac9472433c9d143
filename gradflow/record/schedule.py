"""Which training steps the Recorder records: one vocabulary for the Recorder and the run config.

``"default"`` records steps 0, 1, 4, 16, 64 (the start, where most pathologies show, on a log
scale) and then every 200th step (about once per tutorial epoch of 195 steps). A recorded step
costs about two plain steps on a CPU (histograms dominate), so this keeps recording at a few
percent of training. ``"every"`` records every step. A run config adds ``"off"`` (no recorder).
"""
from __future__ import annotations

from collections.abc import Callable

DEFAULT_EVERY = 200
DEFAULT_LOG_BASE = 4


class Schedule:
    """Which steps are recorded: step 0 always, the powers of ``log_base`` below ``every`` (a log
    schedule for the start of training; ``log_base=None`` turns it off), then every ``every``-th
    step. ``Schedule(every=1)`` records every step."""

    def __init__(self, every: int = DEFAULT_EVERY, log_base: int | None = DEFAULT_LOG_BASE):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"schedule every must be a positive integer number of steps, got {every!r}")
        if log_base is not None and (isinstance(log_base, bool) or not isinstance(log_base, int) or log_base < 2):
            raise ValueError(f"schedule log_base must be an integer >= 2 or None, got {log_base!r}")
        self.every, self.log_base = every, log_base
        self._early = set()
        if log_base is not None:
            p = 1
            while p < every:
                self._early.add(p)
                p *= log_base

    def __call__(self, step: int) -> bool:
        return step % self.every == 0 or step in self._early

    def to_dict(self) -> dict:
        return {"every": self.every, "log_base": self.log_base}

    def __repr__(self):
        return f"Schedule(every={self.every}, log_base={self.log_base})"


NAMED = {"default": Schedule, "every": lambda: Schedule(every=1, log_base=None)}  # name -> constructor
ALIASES = {"all": "every", "every_step": "every"}  # earlier spellings, still accepted
OFF = "off"  # a run config's "no recorder"
RUN_CHOICES = (*NAMED, OFF)  # what RunConfig.record accepts


def as_schedule(schedule=None, every: int | None = None) -> Callable[[int], bool]:
    """``schedule`` (a name of NAMED or ALIASES, None for the default, an int N for every N-th
    step, a Schedule or any callable step -> bool), or ``every=N``, as a callable."""
    if schedule is not None and every is not None:
        raise ValueError("pass either schedule= or every=, not both")
    if every is not None:
        return Schedule(every=every, log_base=None)
    if schedule is None:
        return Schedule()
    if isinstance(schedule, str) and ALIASES.get(schedule, schedule) in NAMED:
        return NAMED[ALIASES.get(schedule, schedule)]()
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        return Schedule(every=schedule, log_base=None)
    if callable(schedule):
        return schedule
    raise ValueError(f"schedule must be {', '.join(map(repr, NAMED))} (or None for the default), a positive int "
                     f"(every N steps), a Schedule or a callable step -> bool; got {schedule!r}")
