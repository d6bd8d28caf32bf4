"""One way to run every long command: a progress bar, and one Ctrl-C that finishes the current
unit, keeps what is done and exits 130.

The work runs in a worker thread and watches a stop event; the main thread only waits. Ctrl-C
there sets the event, the worker ends after its current unit (a search step, a
characterization cell, a training epoch) and returns what it has; a second Ctrl-C aborts.
Its events (``compd_core.events``) drive one progress printer, whatever the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBars

from compd_core.cli.common import console
from compd_core.events import Ended, Event, EventSink, Progress

T = TypeVar("T")
EXIT_STOPPED = 130  # what shells report for a command ended by Ctrl-C


def run_until_stopped(work: Callable[[threading.Event], T], unit: str) -> tuple[T, bool]:
    """``work(stop)`` in a worker; returns its result and whether Ctrl-C stopped it."""
    stop = threading.Event()
    finished = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work(stop)
        except BaseException as exc:  # re-raised on the main thread below
            outcome["error"] = exc
        finally:
            finished.set()

    # Waiting on an event, not Thread.join: an interrupted join can leave the thread
    # looking finished while it still runs.
    threading.Thread(target=target, name="compd-work", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        stop.set()
        console.print(f"stopping after the current {unit} (Ctrl-C again to abort)")
        finished.wait()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"], stop.is_set()  # type: ignore[return-value]


def exit_stopped(kept: str) -> NoReturn:
    """The one line every stopped command ends with (what it kept), then exit code 130."""
    console.print(f"stopped: {kept}", soft_wrap=True, highlight=False)
    raise typer.Exit(EXIT_STOPPED)


class ProgressPrinter:
    """The one command-line view of a job: a bar per count its ``Progress`` events make (a new
    unit, or a count that starts again, opens a new bar); its end event is kept for the last
    line. Payload events (a search step, a repair epoch) pass by."""

    def __init__(self, bars: ProgressBars) -> None:
        self.bars = bars
        self.task: int | None = None
        self.unit: str | None = None
        self.done = 0
        self.ended: Ended | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            if self.task is None or event.unit != self.unit or event.done < self.done:
                if self.task is not None:
                    self.bars.update(self.task, visible=False)
                self.task = self.bars.add_task(event.line, total=event.total)
            self.unit, self.done = event.unit, event.done
            self.bars.update(self.task, completed=event.done, total=event.total,
                             description=event.line)
        elif isinstance(event, Ended):
            self.ended = event


@dataclass(frozen=True)
class JobRun(Generic[T]):
    """What a command's job returned, whether Ctrl-C stopped it, and its end event."""

    value: T
    stopped: bool
    ended: Ended | None

    @property
    def kept(self) -> str:
        """The job's own line on what it kept."""
        return self.ended.line if self.ended is not None else "everything finished so far"


def run_job(work: Callable[[EventSink, threading.Event], T], unit: str, *,
            transient: bool = True) -> JobRun[T]:
    """``work(emit, stop)`` under the progress printer, stoppable by Ctrl-C after ``unit``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with ProgressBars(*columns, console=console, transient=transient) as bars:
        printer = ProgressPrinter(bars)
        value, stopped = run_until_stopped(lambda stop: work(printer, stop), unit)
    return JobRun(value, stopped, printer.ended)
