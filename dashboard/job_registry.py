"""One registry per kind of background job (search, repair, characterization).

Module-level and shared by every browser session of the server process, so a job outlives
page switches and reloads; sessions keep only job ids. Finished jobs are kept for a while so
a returning session can still show their results.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, Protocol, TypeVar


class BackgroundJob(Protocol):
    id: str
    started: float
    thread: threading.Thread | None

    @property
    def running(self) -> bool: ...

    def request_stop(self) -> None: ...


class JobLifecycle:
    """What every job class shares; it keeps ``started``, ``ended``, ``status`` and ``stop_event``."""

    started: float
    ended: float | None
    status: str
    stop_event: threading.Event

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    def request_stop(self) -> None:
        """The engines check the event between steps (well under a second)."""
        self.stop_event.set()


J = TypeVar("J", bound=BackgroundJob)
_ALL_REGISTRIES: list[JobRegistry] = []  # every kind's registry, for checks across kinds


def job_using_run(run_id: str) -> BackgroundJob | None:
    """A running job of any kind (search, repair...) that reads or writes this stored run: while
    there is one, the run must not be deleted."""
    for registry in list(_ALL_REGISTRIES):
        job = registry.running_for_run(run_id)
        if job is not None:
            return job
    return None


class JobRegistry(Generic[J]):
    def __init__(self, keep_finished: int) -> None:
        self._keep_finished = keep_finished
        self._jobs: dict[str, J] = {}
        self._lock = threading.Lock()
        _ALL_REGISTRIES.append(self)

    def add(self, job: J) -> None:
        """Register a new job, forgetting the oldest finished ones beyond ``keep_finished``."""
        with self._lock:
            done = sorted((j for j in self._jobs.values() if not j.running), key=lambda j: j.started)
            for old in done[: max(0, len(done) - self._keep_finished)]:
                del self._jobs[old.id]
            self._jobs[job.id] = job

    def get(self, job_id: str | None) -> J | None:
        if not job_id:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def running_for_run(self, run_id: str) -> J | None:
        """The job working on a stored run in this process, if any."""
        with self._lock:
            return next((j for j in self._jobs.values()
                         if getattr(j, "run_id", None) == run_id and j.running), None)

    def join_all(self, timeout: float) -> None:
        """Wait for every job's thread (tests use it to leave no thread behind)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)

    def stop_all(self, timeout: float) -> None:
        """Ask every job to stop, then wait for them."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.request_stop()
        self.join_all(timeout)
