"""One Ctrl-C for every long command: finish the current unit, keep what is done, exit 130.

The work runs in a worker thread and watches a stop event; the main thread only waits. Ctrl-C
there sets the event, the worker ends after its current unit (a search step, a
characterization cell, a training epoch) and returns what it has; a second Ctrl-C aborts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer

from compd_core.cli.common import console

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
