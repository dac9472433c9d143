"""Recording gradient flow around a user's own training loop.

``Recorder`` (recorder.py) is the entry point; the stages it runs sit beside it: ``schedule`` (which
steps), ``layers`` (which modules are hooked, how their tensors are viewed per member), ``buffer``
(device results -> tidy tables), ``sentinel`` (the first NaN/inf), ``dead_units`` (a full pass with
its own hooks) and ``structure`` (the model description in the summary). The on-disk format is
:mod:`gradflow.recording`.
"""
from ..recording import Recording, load_recording
from .recorder import Recorder
from .schedule import Schedule

__all__ = ["Recorder", "Recording", "Schedule", "load_recording"]
