"""Deviation profiles that run off the script thread, in a registry that outlives pages and reloads.

A profile searches every seed under up to seven distance budgets: seconds to minutes, too long
for a script run, which Streamlit repeats on every click and cuts short on a page switch. It
runs in a worker thread registered here by job id, like every other job; the thread hands the
work, as a ``ProfileTask``, to the server's executor (``$COMPD_EXECUTOR``). The session keeps
only the id, and the page's live fragment draws the job's latest ``Progress`` with its Stop.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from compd_core.pair_spec import PairSpec
from compd_core.search.profile import DeviationProfile
from compd_core.search.profile_task import ProfileTask
from dashboard.job_registry import JobLifecycle, JobRegistry, run_on_executor

KEEP_FINISHED = 8  # finished profiles kept for sessions that come back to them


@dataclass
class ProfileJob(JobLifecycle):
    """One deviation profile of one pair: its thread, stop signal, progress and outcome."""

    id: str
    pair: str
    dataset: str  # the dataset spec the seeds come from
    stop_event: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.time)
    status: str = "running"  # running, finished, stopped, failed
    profile: DeviationProfile | None = None
    error: str | None = None
    ended: float | None = None
    future: Future | None = None


_REGISTRY: JobRegistry[ProfileJob] = JobRegistry(KEEP_FINISHED)


def start_profile(pair: PairSpec, dataset: str, seeds: int, budgets: Sequence[int],
                  max_queries: int, min_margin_original: float = 0.0,
                  min_margin_compressed: float = 0.0) -> ProfileJob:
    """Start measuring ``pair``'s deviation profile on ``seeds`` images of ``dataset`` (a
    dataset spec) in a worker thread; bad numbers are refused here, before any thread."""
    task = ProfileTask(pair, dataset, seeds, tuple(budgets), max_queries,
                       min_margin_original=min_margin_original,
                       min_margin_compressed=min_margin_compressed)
    job = ProfileJob(id=secrets.token_hex(6), pair=pair.name, dataset=dataset)
    _REGISTRY.start(job, lambda: _work(job, task))
    return job


def _work(job: ProfileJob, task: ProfileTask) -> None:
    profile, error = run_on_executor(job, task, "deviation profile")
    if error is not None:
        job.error, job.ended, job.status = error, time.time(), "failed"
        return
    job.profile, job.ended = profile, time.time()
    job.status = "stopped" if profile is not None and profile.stopped else "finished"  # last


def get_job(job_id: str | None) -> ProfileJob | None:
    return _REGISTRY.get(job_id)


def join_all(timeout: float = 180.0) -> None:
    _REGISTRY.join_all(timeout)


def stop_all(timeout: float = 10.0) -> None:
    """Stop every running job and wait for it (tests leave no thread behind)."""
    _REGISTRY.stop_all(timeout)
