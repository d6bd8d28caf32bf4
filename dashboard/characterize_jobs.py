"""Characterizations that run off the script thread, in a registry that outlives pages and reloads.

A full characterization (18 corruptions x 5 severities, several pairs) takes tens of seconds:
too long for a script run, which Streamlit repeats on every click. It runs in a worker thread
registered here by job id, like searches in ``jobs``; the session keeps only the id. The thread
hands the work, as a ``CharacterizeTask``, to the server's executor (``$COMPD_EXECUTOR``): in
this process, or in a Ray worker beside the searches. It never calls Streamlit: the job
protocol's events go into the ``CharacterizeJob`` (its latest ``Progress``, its end event) and
the page's live fragment reads them.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import Future
from collections.abc import Sequence
from dataclasses import dataclass, field

from compd_core.characterize import PairComparison
from compd_core.characterize.task import CharacterizeTask
from compd_core.pair_spec import PairSpec
from dashboard.job_registry import JobLifecycle, JobRegistry, run_on_executor

KEEP_FINISHED = 8  # finished characterizations kept for sessions that come back to them


@dataclass
class CharacterizeJob(JobLifecycle):
    """One characterization of one or more pairs: its thread, stop signal, progress and outcome."""

    id: str
    pairs: tuple[str, ...]  # the first is the session's pair; the rest are compared with it
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.time)
    status: str = "running"  # running, finished, stopped, failed
    comparison: PairComparison | None = None
    error: str | None = None
    ended: float | None = None
    future: Future | None = None


_REGISTRY: JobRegistry[CharacterizeJob] = JobRegistry(KEEP_FINISHED)


def start_characterize(
    pairs: Sequence[PairSpec],
    dataset: str,
    corruptions: Sequence[str],
    severities: Sequence[int],
    seed: int = 0,
) -> CharacterizeJob:
    """Start characterizing ``pairs`` (the first is the one studied) on ``dataset`` (a
    dataset spec, see ``load_dataset``) in a worker thread."""
    task = CharacterizeTask(tuple(pairs), dataset, tuple(corruptions), tuple(severities), seed)
    job = CharacterizeJob(id=secrets.token_hex(6), pairs=tuple(p.name for p in pairs),
                          corruptions=task.corruptions, severities=task.severities, seed=seed)
    _REGISTRY.start(job, lambda: _work(job, task))
    return job


def _work(job: CharacterizeJob, task: CharacterizeTask) -> None:
    comparison, error = run_on_executor(job, task, "characterization")
    if error is not None:
        job.error, job.ended, job.status = error, time.time(), "failed"
        return
    stopped = job.outcome is not None and job.outcome.stopped
    job.comparison, job.ended = comparison, time.time()
    job.status = "stopped" if stopped else "finished"  # last: readers see the rest first


def get_job(job_id: str | None) -> CharacterizeJob | None:
    return _REGISTRY.get(job_id)


def join_all(timeout: float = 180.0) -> None:
    _REGISTRY.join_all(timeout)


def stop_all(timeout: float = 10.0) -> None:
    """Stop every running job and wait for it (tests leave no thread behind)."""
    _REGISTRY.stop_all(timeout)
