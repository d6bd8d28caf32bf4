"""One registry per kind of background job (search, repair, characterization).

Module-level and shared by every browser session of the server process, so a job outlives
page switches and reloads; sessions keep only job ids. Finished jobs are kept for a while so
a returning session can still show their results: their numbers, never their images (a job
releases those when it ends; the store holds them). Each job remembers who started it: anyone
may watch it, only its owner may stop it. Every job hears its work through the one event
protocol (``compd_core.events``): ``observe`` keeps the latest ``Progress`` and the end event,
which the one live panel header draws for every kind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from typing import Generic, Protocol, TypeVar

from compd_core.errors import CompdError
from compd_core.events import Ended, Event, Progress
from compd_core.executors import JobTask, executor_from_environment
from dashboard.viewer import viewer_id

logger = logging.getLogger(__name__)
T = TypeVar("T")


# Every kind of job shares one bounded pool: a crowd of sessions queues instead of starting a
# thread each. Models run one torch thread per job, so a few workers per core keep cores busy.
MAX_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
_POOL = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="compd-job")


class BackgroundJob(Protocol):
    id: str
    started: float
    future: Future | None

    @property
    def running(self) -> bool: ...

    def request_stop(self) -> None: ...


class JobLifecycle:
    """What every job class shares; it keeps ``started``, ``ended``, ``status`` and ``stop_event``,
    and the common events it has heard (``latest``: the last ``Progress``; ``outcome``: the end
    event with the job's summary)."""

    started: float
    ended: float | None
    status: str
    stop_event: threading.Event
    latest: Progress | None = None
    outcome: Ended | None = None

    def observe(self, event: Event) -> None:
        """Keep the protocol's common events (called on the worker thread; each is one
        reference swap, so a reader always sees a whole event)."""
        if isinstance(event, Progress):
            self.latest = event
        elif isinstance(event, Ended):
            self.outcome = event

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    def request_stop(self) -> None:
        """The engines check the event between steps (well under a second)."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job's work to end; True when it has."""
        future: Future | None = getattr(self, "future", None)
        return future is None or not wait_for_futures([future], timeout).not_done


def run_on_executor(job: JobLifecycle, task: JobTask[T], what: str) -> tuple[T | None, str | None]:
    """``task`` through the server's executor (``$COMPD_EXECUTOR``), its events to the job's
    ``observe`` and the job's stop signal to it: its result, or None and the message the page
    shows (a ``CompdError``'s own; a bug is logged and said plainly)."""
    try:
        return executor_from_environment().run_job(task, job.observe, job.stop_event), None
    except CompdError as exc:
        return None, str(exc)
    except Exception as exc:  # a bug: keep the server alive, log it, tell the user plainly
        logger.exception("%s job failed", what)
        return None, (f"the {what} failed unexpectedly ({type(exc).__name__}: {exc}); "
                      "the server's log has the details")


J = TypeVar("J", bound=BackgroundJob)
_ALL_REGISTRIES: list[JobRegistry] = []  # every kind's registry, for checks across kinds


def may_control(job: BackgroundJob) -> bool:
    """Whether the one looking may stop ``job``: only who started it (others only watch)."""
    for registry in list(_ALL_REGISTRIES):
        if registry.holds(job.id):
            owner = registry.owner(job.id)
            return owner is None or owner == viewer_id()
    return True


def stop_everything() -> None:
    """At interpreter exit: ask every job to stop, so the pool's workers end after their unit."""
    for registry in list(_ALL_REGISTRIES):
        registry.stop_all(timeout=0)


# Runs before the pool's own exit hook (they run in reverse order), which waits for its workers.
threading._register_atexit(stop_everything)  # type: ignore[attr-defined]


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
        self._owners: dict[str, str | None] = {}  # job id -> who started it (see viewer.py)
        self._lock = threading.Lock()
        _ALL_REGISTRIES.append(self)

    def add(self, job: J) -> None:
        """Register a new job, forgetting the oldest finished ones beyond ``keep_finished``."""
        with self._lock:
            done = sorted((j for j in self._jobs.values() if not j.running), key=lambda j: j.started)
            for old in done[: max(0, len(done) - self._keep_finished)]:
                del self._jobs[old.id]
                self._owners.pop(old.id, None)
            self._jobs[job.id] = job
            self._owners[job.id] = viewer_id()

    def start(self, job: J, work: Callable[[], None]) -> None:
        """Register ``job`` and queue ``work`` on the shared pool (it runs when a worker is free;
        a job stopped while queued ends as soon as it starts)."""
        self.add(job)
        job.future = _POOL.submit(work)

    def get(self, job_id: str | None) -> J | None:
        if not job_id:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def owner(self, job_id: str) -> str | None:
        with self._lock:
            return self._owners.get(job_id)

    def set_owner(self, job_id: str, owner: str | None) -> None:
        with self._lock:
            self._owners[job_id] = owner

    def holds(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._jobs

    def running_for_run(self, run_id: str) -> J | None:
        """The job working on a stored run in this process, if any."""
        with self._lock:
            return next((j for j in self._jobs.values()
                         if getattr(j, "run_id", None) == run_id and j.running), None)

    def join_all(self, timeout: float) -> None:
        """Wait for every job's thread (tests use it to leave no thread behind)."""
        with self._lock:
            jobs = list(self._jobs.values())
        futures = [job.future for job in jobs if job.future is not None]
        if futures:
            wait_for_futures(futures, timeout)

    def stop_all(self, timeout: float) -> None:
        """Ask every job to stop, then wait for them."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.request_stop()
        self.join_all(timeout)
