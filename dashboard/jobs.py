"""Searches that run off the script thread, in a registry that outlives pages and reloads.

Streamlit reruns a page's script on every interaction and forgets a browser tab when it is
reloaded, so a search cannot live in the script thread or in session state. It runs in a worker
thread registered here, in a module-level dict keyed by job id; a session keeps only the id (and
the URL carries it), so switching pages or reloading finds the same job again. The worker never
calls Streamlit: it writes into its ``Job`` (through the thread-safe ``LiveRecorder``), and the
page's live fragment reads from it. Every seed's result is committed to the store as it ends, so
closing the browser mid-search loses nothing that was found; a finished job keeps its counts
and reloads the one trigger its page shows from the store.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from compd_core.campaign import CampaignSpec, run_campaign, spec_of_run
from compd_core.data.dataset import ImageDataset
from compd_core.errors import CompdError
from compd_core.models.pair import ModelPair
from compd_core.events import Event
from compd_core.executors import executor_from_environment
from compd_core.search.events import EventRecorder, SeedFinished, SeedStarted, Step
from compd_core.search.results import ExitReason, SeedResult
from compd_core.search.strategies import get_strategy
from compd_core.store import RunRecord, Store
from dashboard.choices import SessionChoices
from dashboard.job_registry import JobLifecycle, JobRegistry
from dashboard.uploads import release_uploads

logger = logging.getLogger(__name__)

JobStatus = Literal["running", "finished", "stopped", "failed"]
JobKind = Literal["demo", "search"]
KEEP_FINISHED = 32  # finished jobs kept for sessions that come back to them; older ones go
KEPT_TRACE_POINTS = 100  # fitness points per seed a finished job keeps for its chart


@dataclass
class LiveRecorder(EventRecorder):
    """The engine's recorder, plus a clock for queries per second and an optional early stop.

    ``stop_after`` ends the search once that many triggers are found (the one-click demo wants
    the first one, not all of them).
    """

    stop_after: int | None = None
    stop_event: threading.Event | None = None
    first_event_at: float | None = None
    last_event_at: float | None = None
    last_step_at: float | None = None  # wall clock (time.time) of the last model query's event

    def __call__(self, event: Event) -> None:
        now = time.perf_counter()
        if self.first_event_at is None and isinstance(event, SeedStarted):
            self.first_event_at = now
        self.last_event_at = now
        if isinstance(event, Step):
            self.last_step_at = time.time()
        super().__call__(event)
        if (
            isinstance(event, SeedFinished)
            and self.stop_after is not None
            and self.stop_event is not None
            and self.found >= self.stop_after
        ):
            self.stop_event.set()

    def compact(self) -> None:
        """What a finished job keeps: its numbers (counts, which seeds deviated, thinned fitness
        traces), no images: results and chains are in the store."""
        with self._lock:
            self.results = []
            self.last_chain.clear()
            for position, trace in self.traces.items():
                if len(trace) > KEPT_TRACE_POINTS:
                    stride = len(trace) / KEPT_TRACE_POINTS
                    thinned = [trace[int(i * stride)] for i in range(KEPT_TRACE_POINTS)]
                    self.traces[position] = thinned + [trace[-1]]


@dataclass(frozen=True)
class Progress:
    """A consistent, plain copy of a job's state for one redraw of a view."""

    seeds_total: int
    seeds_started: int
    seeds_done: int
    found: int
    queries: int
    search_seconds: float  # first seed started -> now, or -> the last event once it has ended
    operators: dict[str, dict[str, int]]
    traces: dict[int, list[tuple[int, float]]]
    results: list[SeedResult]  # while the search runs; a finished job keeps none
    finished: dict[int, bool]  # position -> whether it deviated
    exit_reasons: dict[ExitReason, int]
    latest_found_position: int | None

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.search_seconds if self.search_seconds > 0 else 0.0

    @property
    def stopped_seeds(self) -> int:
        """Seeds still being searched when the search was stopped."""
        return self.exit_reasons.get(ExitReason.STOPPED, 0)


@dataclass
class Job(JobLifecycle):
    """One search: its thread, stop signal, live recorder and outcome."""

    id: str
    kind: JobKind
    run_id: str
    spec: CampaignSpec
    class_names: tuple[str, ...]
    recorder: LiveRecorder
    stop_event: threading.Event
    started: float = field(default_factory=time.time)
    status: JobStatus = "running"
    summary: dict | None = None
    error: str | None = None
    ended: float | None = None
    stop_requested: float | None = None  # when Stop was pressed: how fast it stopped is shown
    future: Future | None = None
    choices: SessionChoices | None = None  # the starting session's choices, for a reload
    store: Store | None = field(default=None, repr=False)  # where its results are
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, event: Event) -> None:
        """The campaign's event sink (called on the worker thread)."""
        self.observe(event)
        self.recorder(event)

    def latest_found(self, progress: Progress) -> SeedResult | None:
        """The last trigger found, with its chain: live from the search while it runs, from the
        store once it has ended (a finished job keeps no images)."""
        live = next((r for r in reversed(progress.results) if r.found), None)
        if live is not None or progress.latest_found_position is None or self.store is None:
            return live
        try:
            stored = self.store.load_results(self.run_id, [progress.latest_found_position])
        except CompdError:  # the run was deleted meanwhile
            return None
        return stored[0] if stored else None

    @property
    def stop_seconds(self) -> float | None:
        """From Stop being pressed to the job having ended, every seed saved (None unless both)."""
        if self.stop_requested is None or self.ended is None:
            return None
        return self.ended - self.stop_requested

    @property
    def halt_seconds(self) -> float | None:
        """From Stop being pressed to the last model query (0 when none came after it)."""
        last = self.recorder.last_step_at
        if self.stop_requested is None or self.ended is None:
            return None
        return max(0.0, (last or 0.0) - self.stop_requested)

    def request_stop(self) -> None:
        """Ask the search to stop; the engine checks between steps (well under a second)."""
        if self.stop_requested is None:
            self.stop_requested = time.time()
        self.stop_event.set()

    def progress(self) -> Progress:
        snapshot = self.recorder.snapshot()
        first = self.recorder.first_event_at
        last = time.perf_counter() if self.running else self.recorder.last_event_at
        return Progress(
            seeds_total=self.spec.seeds,
            seeds_started=snapshot["seeds_started"],
            seeds_done=snapshot["seeds_finished"],
            found=snapshot["found"],
            queries=snapshot["queries"],
            search_seconds=0.0 if first is None or last is None else last - first,
            operators=snapshot["operators"],
            traces=snapshot["traces"],
            results=snapshot["results"],
            finished=snapshot["finished"],
            exit_reasons=snapshot["exit_reasons"],
            latest_found_position=snapshot["latest_found"],
        )

    def _end(self, status: JobStatus, summary: dict | None = None, error: str | None = None) -> None:
        self.recorder.compact()
        if self.choices is not None:
            self.choices = release_uploads(self.choices)
        with self._lock:
            self.summary, self.error, self.ended = summary, error, time.time()
            self.status = status  # last: a reader that sees the status sees the rest


_REGISTRY: JobRegistry[Job] = JobRegistry(KEEP_FINISHED)


def start_search(
    store: Store,
    spec: CampaignSpec,
    pair: ModelPair,
    dataset: ImageDataset,
    *,
    kind: JobKind = "search",
    stop_after: int | None = None,
    note: str = "",
    choices: SessionChoices | None = None,
) -> Job:
    """Create the run in the store and start its search in a worker thread.

    Mistakes that can be seen at once (an unknown strategy, a black-box pair for a white-box
    strategy) raise here, before any thread starts, so the page can show them next to the form.
    """
    strategy = get_strategy(spec.strategy)
    if strategy.needs_white_box:
        pair.white_box()
    run_id = store.create_run(spec.pair, spec.strategy, spec.settings, spec.seeds,
                              spec.rng_seed, spec.dataset, note=note, pair_spec=spec.pair_spec)
    return _launch(store, spec, run_id, pair, dataset, kind=kind, stop_after=stop_after,
                   choices=choices)


def resume_search(store: Store, run: RunRecord, pair: ModelPair, dataset: ImageDataset) -> Job:
    """Continue a stored run (interrupted or stopped) in a worker, with its own stored campaign:
    the same seeds, settings and rng seed as ``compd search --resume RUN``."""
    store.check_resumable(run.id)  # finished, or searched right now elsewhere: say so at once
    return _launch(store, spec_of_run(run), run.id, pair, dataset, kind="search")


def _launch(
    store: Store, spec: CampaignSpec, run_id: str, pair: ModelPair, dataset: ImageDataset, *,
    kind: JobKind, stop_after: int | None = None, choices: SessionChoices | None = None,
) -> Job:
    """Register a job for a stored run and start its search on the shared worker pool."""
    stop_event = threading.Event()
    job = Job(
        id=secrets.token_hex(6),
        kind=kind,
        run_id=run_id,
        spec=spec,
        class_names=pair.class_names,
        recorder=LiveRecorder(stop_after=stop_after, stop_event=stop_event),
        stop_event=stop_event,
        choices=choices,
        store=store,
    )
    _REGISTRY.start(job, lambda: _work(job, store, pair, dataset))
    return job


def _work(job: Job, store: Store, pair: ModelPair, dataset: ImageDataset) -> None:
    """The worker: run the campaign into the run created for it; record how it ended."""
    try:
        # ``resume`` with the id made by start_search: the run exists (and is linkable) before the
        # first seed is searched, and run_campaign still does all the storing and bookkeeping.
        summary = run_campaign(job.spec, store, pair=pair, dataset=dataset, emit=job.record,
                               stop=job.stop_event, resume=job.run_id,
                               executor=executor_from_environment())
    except CompdError as exc:
        _close_failed_run(store, job)
        job._end("failed", error=str(exc))
    except Exception as exc:  # a bug: keep the server alive, log it, tell the user plainly
        logger.exception("search job %s failed", job.id)
        _close_failed_run(store, job)
        job._end("failed", error=f"the search failed unexpectedly ({type(exc).__name__}: {exc}); "
                                 "the server's log has the details")
    else:
        job._end("stopped" if summary.stopped else "finished", summary=summary.to_dict())


def _close_failed_run(store: Store, job: Job) -> None:
    """A run that failed before its first seed holds nothing: remove it; otherwise close it."""
    try:
        record = store.get_run(job.run_id)
        if record.seeds_done == 0:
            store.delete_run(job.run_id)
        elif record.status == "running":
            store.finish_run(job.run_id, "stopped", job.seconds)
    except CompdError:
        logger.warning("could not close run %s of failed job %s", job.run_id, job.id)


def get_job(job_id: str | None) -> Job | None:
    return _REGISTRY.get(job_id)


def job_for_run(run_id: str) -> Job | None:
    """The job searching a run in this process, if any (a run being written cannot be deleted)."""
    return _REGISTRY.running_for_run(run_id)


def join_all(timeout: float = 180.0) -> None:
    _REGISTRY.join_all(timeout)


def stop_all(timeout: float = 5.0) -> None:
    """Stop every running job and wait for them (tests use it to leave no thread behind)."""
    _REGISTRY.stop_all(timeout)
