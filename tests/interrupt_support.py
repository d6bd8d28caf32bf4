"""Ctrl-C in a test, at a chosen moment of a job (imported by name: tests/ is on the path)."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable

from compd_core.events import Event, EventSink


def ctrl_c_when(emit: EventSink, stop: threading.Event, when: Callable[[Event], bool]) -> EventSink:
    """A sink that forwards every event to ``emit`` and presses Ctrl-C after the first one
    ``when`` picks, then waits until the command has answered by setting ``stop``."""

    def watching(event: Event) -> None:
        emit(event)
        if when(event):
            _thread.interrupt_main()  # what Ctrl-C does to the waiting main thread
            if not stop.wait(120):  # which answers by setting the stop event (however loaded)
                raise AssertionError("Ctrl-C did not set the job's stop event within 120 s")

    return watching
