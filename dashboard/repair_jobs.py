"""Repairs that run off the script thread, in a registry that outlives pages and reloads.

A repair fine-tunes a model and re-runs a search: minutes, not a script run. It runs in a
worker thread registered here by job id, like searches in ``jobs``; the session keeps only the
id. The thread hands the work, as a ``RepairTask``, to the server's executor
(``$COMPD_EXECUTOR``): in this process, or in a Ray worker beside the searches (on a cluster
of other machines, which cannot read the store file, in this process). The worker never calls
Streamlit: the engine's events are copied into the ``RepairJob``
under a lock, and the page's live fragment reads a consistent snapshot of them. A finished
repair keeps its report and curves; of its work only the repaired model stays, and only until
the user registers it or the repair turns out stopped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from compd_core.errors import CompdError, ConfigError
from compd_core.events import Event
from compd_core.executors import executor_from_environment
from compd_core.repair import (
    EpochFinished,
    Repair,
    RepairReport,
    RepairSettings,
    ResearchProgress,
    fine_tunable,
)
from compd_core.repair.task import RepairTask
from compd_core.store import Store
from dashboard.job_registry import JobLifecycle, JobRegistry

logger = logging.getLogger(__name__)

KEEP_FINISHED = 8


@dataclass(frozen=True)
class RepairProgress:
    """A plain copy of a repair's curves for one redraw (its stage line is the common
    ``Progress`` the job keeps, see ``JobLifecycle.latest``)."""

    epochs: list[EpochFinished]
    research: dict[str, ResearchProgress]  # "before" / "after" -> latest progress


@dataclass
class RepairJob(JobLifecycle):
    """One repair of one run's chosen triggers: thread, stop signal, events and outcome."""

    id: str
    run_id: str
    pair: str
    settings: RepairSettings
    stop_event: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.time)
    status: str = "running"  # running, finished, stopped, failed
    report: RepairReport | None = None
    repair: Repair | None = None  # kept until the user decides whether to register the result
    error: str | None = None
    ended: float | None = None
    future: Future | None = None
    _epochs: list[EpochFinished] = field(default_factory=list)
    _research: dict[str, ResearchProgress] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, event: Event) -> None:
        """The engine's event sink (called on the worker thread)."""
        self.observe(event)
        with self._lock:
            if isinstance(event, EpochFinished):
                self._epochs.append(event)
            elif isinstance(event, ResearchProgress):
                self._research[event.phase] = event

    def register(self) -> RepairReport:
        """Add the finished repair's model to the user zoo: only ever on the user's request."""
        with self._lock:
            repair = self.repair
        if repair is None:
            raise ConfigError("this repair has not finished, so there is nothing to register yet")
        report = repair.register()
        with self._lock:
            self.report, self.repair = report, None  # registered: the model is in the zoo now
        return report

    def progress(self) -> RepairProgress:
        with self._lock:
            return RepairProgress(list(self._epochs), dict(self._research))

    def _end(self, status: str, report: RepairReport | None = None,
             error: str | None = None) -> None:
        with self._lock:
            self.report, self.error, self.ended = report, error, time.time()
            self.status = status  # last: a reader that sees the status sees the rest


_REGISTRY: JobRegistry[RepairJob] = JobRegistry(KEEP_FINISHED)


def start_repair(store: Store, run_id: str, settings: RepairSettings) -> RepairJob:
    """Start repairing a run's pair on its hand-picked triggers (all, when none are picked).

    A pair that cannot be fine-tuned (black box, not in the zoo) raises here, before any thread.
    """
    run = store.get_run(run_id)
    fine_tunable(run)
    job = RepairJob(id=secrets.token_hex(6), run_id=run_id, pair=run.pair, settings=settings)
    _REGISTRY.start(job, lambda: _work(job, store))
    return job


def _work(job: RepairJob, store: Store) -> None:
    task = RepairTask(str(store.path.resolve()), job.run_id, job.settings)  # registers nothing
    try:
        repair: Repair = executor_from_environment().run_job(task, job.record, job.stop_event)
        report = repair.report
        if report is None:  # a repair always ends with a report; without one it is a bug
            raise RuntimeError("the repair ended without a report")
        if not report.stopped:
            repair.attach(store, job.record)  # registering (on the user's word) writes here
            with job._lock:
                job.repair = repair
    except CompdError as exc:
        job._end("failed", error=str(exc))
    except Exception as exc:  # a bug: keep the server alive, log it, tell the user plainly
        logger.exception("repair job %s failed", job.id)
        job._end("failed", error=f"the repair failed unexpectedly ({type(exc).__name__}: {exc}); "
                                 "the server's log has the details")
    else:
        job._end("stopped" if report.stopped else "finished", report=report)


def get_job(job_id: str | None) -> RepairJob | None:
    return _REGISTRY.get(job_id)


def job_for_run(run_id: str) -> RepairJob | None:
    """The repair running on a run in this process, if any."""
    return _REGISTRY.running_for_run(run_id)


def join_all(timeout: float = 180.0) -> None:
    _REGISTRY.join_all(timeout)


def stop_all(timeout: float = 30.0) -> None:
    """Stop every running job and wait for it (tests leave no thread behind)."""
    _REGISTRY.stop_all(timeout)
