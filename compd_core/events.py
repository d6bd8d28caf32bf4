"""The one event protocol of long jobs: search, repair and characterize.

Every job tells its listeners how far it is with ``Progress`` (what it counts, how many of how
many, one line a person can read) and ends with exactly one ``Finished`` or ``Stopped`` that
carries its summary. That is all a generic listener (the CLI's progress bar, the dashboard's
job panel) needs. Domain events (a search ``Step``, a repair ``EpochFinished``...) travel
through the same ``EventSink`` as extra payload for the views that know them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

JobKind = Literal["search", "repair", "characterize", "profile"]


class Event:
    """Anything a job tells its listeners; every event type of every job derives from it."""

    __slots__ = ()


@dataclass(frozen=True)
class Progress(Event):
    """The job moved on: ``done`` of ``total`` ``unit``s (``total`` None: not known yet).

    A job that counts different units in turn (a repair's epochs, then its re-search's seeds)
    starts a new count by changing ``unit`` or by counting from a lower ``done``.
    """

    kind: JobKind
    unit: str  # what is counted: "seed", "epoch", "cell", or a stage's name
    done: int
    total: int | None
    line: str  # one line a person can read, e.g. "4 deviations, 12,345 queries"

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1], None while the total is unknown."""
        if not self.total:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)


@dataclass(frozen=True)
class Ended(Event):
    """The job's last event: its summary (plain, JSON-able numbers and ids) and one line."""

    kind: JobKind
    summary: Mapping[str, Any]
    line: str

    @property
    def stopped(self) -> bool:
        return isinstance(self, Stopped)


@dataclass(frozen=True)
class Finished(Ended):
    """The job ran to its end."""


@dataclass(frozen=True)
class Stopped(Ended):
    """The job was asked to stop and ended after its current unit; ``line`` says what was kept."""


EventSink = Callable[[Event], None]


def no_events(event: Event) -> None:
    """The default sink: ignore everything."""


def ended(kind: JobKind, summary: Mapping[str, Any], *, stopped: bool, line: str) -> Ended:
    """``Stopped`` or ``Finished``, whichever the job's outcome is."""
    return (Stopped if stopped else Finished)(kind, summary, line)


def with_progress(sink: EventSink, describe: Callable[[Event], Progress | None]) -> EventSink:
    """A sink that forwards every event to ``sink`` and then, when ``describe`` turns it into
    one, the ``Progress`` it means: a job derives its common progress from its own events."""

    def forward(event: Event) -> None:
        sink(event)
        progress = describe(event)
        if progress is not None:
            sink(progress)

    return forward
