"""Campaigns on Ray: the seeds go out in chunks to actors that each load their pair once.

Results come back per chunk and only the driver (the process that owns the SQLite store) writes
them, so a killed driver loses nothing already stored and ``--resume`` searches the rest. A
worker that dies mid-chunk is restarted by Ray and its chunk searched again from the start
(``max_task_retries``): a chunk's results arrive once or not at all, so no seed is stored twice,
and since a seed's randomness depends only on the rng seed and the seed itself, the retry
finds what the lost attempt would have found.

A whole job (a repair, a characterization) runs in one actor of its own with one CPU, like a
search worker, so Ray schedules it beside the chunks instead of crowding the server's cores;
its events stream back while it runs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from compd_core.errors import CompdError, ConfigError
from compd_core.events import Event, EventSink
from compd_core.executors.base import (
    Executor,
    Job,
    JobTask,
    PairLoader,
    SearchWork,
    chunk_size,
    chunked,
    compact_result,
)
from compd_core.models.pair import ModelPair
from compd_core.search.events import SeedFinished, no_events
from compd_core.search.results import Seed, SeedResult
from compd_core.search.strategies import SearchContext, get_strategy

logger = logging.getLogger(__name__)

MISSING_RAY = "--executor ray needs Ray: pip install 'compd[ray]'"
_ADDRESS = re.compile(r"^(ray://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
DEFAULT_RETRIES = 3  # restarts of a dead worker (and retries of its chunks) before giving up
_IN_FLIGHT = 2  # chunks queued per worker: the next one is there the moment one ends
JOB_POLL_SECONDS = 0.2  # how often a whole job's events are fetched: a live panel redraws at 0.5 s
MAX_PAIRS_PER_WORKER = 4  # loaded pairs a worker keeps for a campaign over several pairs


class WorkerLostError(CompdError):
    """A Ray worker died more often than it may be restarted."""


def import_ray() -> Any:
    """The ``ray`` module, or a ``ConfigError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(MISSING_RAY) from exc
    return ray


def check_address(address: str | None) -> str | None:
    """None (start a local cluster), 'auto' (the cluster this machine belongs to) or
    HOST:PORT / ray://HOST:PORT of a cluster's head node."""
    if address is None or address == "auto":
        return address
    match = _ADDRESS.match(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(
            f"--address {address!r} is not 'auto' or HOST:PORT (a Ray head node, e.g. "
            "10.0.0.5:6379, with a port in 1..65535)"
        )
    return address


def check_workers(workers: int | None) -> int | None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be a whole number >= 1, got {workers}")
    return workers


class ChunkSearcher:
    """A Ray actor's state: the pairs it has loaded (each once, the first one as it starts, the
    others when a chunk of theirs first arrives; at most ``MAX_PAIRS_PER_WORKER``, the least
    recently used dropped first), and a stop signal the driver can set while a chunk runs
    (``stop`` runs in its own concurrency group)."""

    def __init__(self, work: SearchWork) -> None:
        self.pairs: OrderedDict[PairLoader, ModelPair] = OrderedDict()
        self.stopping = threading.Event()
        self.pair_for(work.loader)

    def pair_for(self, loader: PairLoader) -> ModelPair:
        """The pair ``loader`` builds, loaded only the first time this worker meets it."""
        pair = self.pairs.pop(loader, None)
        if pair is None:
            pair = loader()
            while len(self.pairs) >= MAX_PAIRS_PER_WORKER:
                self.pairs.popitem(last=False)
        self.pairs[loader] = pair
        return pair

    def search(self, work: SearchWork, seeds: list[Seed]) -> list[SeedResult]:
        context = SearchContext(self.pair_for(work.loader), work.settings, work.rng_seed,
                                no_events, self.stopping)
        return [compact_result(r) for r in get_strategy(work.strategy).run(context, seeds)]

    def ready(self) -> bool:
        """Answers once the worker is up and its first pair loaded."""
        return True

    def stop(self) -> None:
        self.stopping.set()


class JobRunner:
    """A Ray actor's state for one whole job: the events its task has told and not yet been
    fetched, and a stop signal. ``drain`` and ``stop`` run in their own concurrency group, so
    the driver reaches them while ``run`` works."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def run(self, task: JobTask[Any]) -> Any:
        return task(self._keep, self.stopping)

    def _keep(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[Event]:
        """The events told since the last call, oldest first."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def stop(self) -> None:
        self.stopping.set()


class _RaySession:
    """This process's Ray session, shared by the campaigns running in it (the dashboard runs
    several at once): started by the first that needs it, shut down when the last one ends,
    and never shut down when someone else (a test, the user) started it.

    Ray's local processes die with the thread that started them (Linux's parent-death signal
    is per thread), so the session is started on a thread of its own that lives until the
    session ends, never on the thread of a campaign that may end before the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._release: threading.Event | None = None

    def enter(self, ray: Any, options: dict[str, Any]) -> None:
        with self._lock:
            if not ray.is_initialized():
                self._release = _start_on_own_thread(ray, options)
            self._users += 1

    def leave(self, ray: Any) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._release is not None:
                ray.shutdown()
                self._release.set()
                self._release = None


def _start_on_own_thread(ray: Any, options: dict[str, Any]) -> threading.Event:
    """``ray.init`` on a thread that waits until the returned event is set."""
    started, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def keep() -> None:
        try:
            ray.init(**options)
        except Exception as exc:  # reported on the caller's thread below
            failure.append(exc)
            return
        finally:
            started.set()
        release.wait()

    threading.Thread(target=keep, name="compd-ray-session", daemon=True).start()
    started.wait()
    if failure:
        where = options.get("address", "a local cluster")
        raise ConfigError(f"cannot start or reach Ray ({where}): {failure[0]}") from failure[0]
    return release


_SESSION = _RaySession()


class RayExecutor(Executor):
    """Seeds in chunks over ``workers`` Ray actors, one CPU each.

    Without ``address`` a local cluster with ``workers`` CPUs is started (and shut down when the
    last campaign using it ends); with one, the campaign joins that cluster. A Ray session
    already open in this process (a test's) is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *,
                 chunk: int | None = None, retries: int = DEFAULT_RETRIES) -> None:
        self.address = check_address(address)
        self.workers = check_workers(workers)
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ConfigError(f"--chunk must be a whole number of seeds >= 1, got {chunk}")
        self.chunk = chunk
        self.retries = retries
        import_ray()  # a missing Ray is said before any work starts

    def run(self, work: SearchWork, seeds: Sequence[Seed], context: SearchContext) -> Iterator[SeedResult]:
        for _, result in self.run_many([(work, seeds, context)]):
            yield result

    def run_many(self, jobs: Sequence[Job]) -> Iterator[tuple[int, SeedResult]]:
        """All jobs' chunks in one queue over the same workers: a worker that has finished
        one pair's chunks takes the next pair's, loading that pair once."""
        ray = import_ray()
        _SESSION.enter(ray, self._init_options())
        try:
            yield from self._search(ray, jobs)
        finally:
            _SESSION.leave(ray)

    def run_job(self, task: JobTask[Any], emit: EventSink, stop: threading.Event) -> Any:
        """The task in one actor with one CPU; its events reach ``emit`` every
        ``JOB_POLL_SECONDS`` while it runs, all of them before its result.

        On a cluster this process joined (an address), a task that reads files of this
        machine (a store, model files, a dataset) runs here instead, with a logged reason: the
        cluster's other machines cannot see those files.
        """
        files = task.local_files() if self.address is not None else []
        if files:
            logger.warning("the %s runs in this process, not on the Ray cluster at %s: it reads "
                           "files of this machine (%s) that the cluster's other machines cannot see",
                           task.kind, self.address, ", ".join(files))
            return task(emit, stop)
        ray = import_ray()
        _SESSION.enter(ray, self._init_options())
        try:
            return self._run_job(ray, task, emit, stop)
        finally:
            _SESSION.leave(ray)

    def _run_job(self, ray: Any, task: JobTask[Any], emit: EventSink, stop: threading.Event) -> Any:
        runner = ray.remote(concurrency_groups={"control": 1})(JobRunner)
        actor = runner.options(num_cpus=1, max_restarts=0).remote()
        try:
            result = actor.run.remote(task)
            stop_sent = False
            while True:
                if stop.is_set() and not stop_sent:
                    actor.stop.options(concurrency_group="control").remote()
                    stop_sent = True
                ready, _ = ray.wait([result], timeout=JOB_POLL_SECONDS)
                # fetched after the wait: once the result is there, this holds the last events
                drained = actor.drain.options(concurrency_group="control").remote()
                for event in self._fetch_job(ray, drained, task):
                    emit(event)
                if ready:
                    return self._fetch_job(ray, result, task)
        finally:
            ray.kill(actor)

    def _fetch_job(self, ray: Any, ref: Any, task: JobTask[Any]) -> Any:
        """A job actor's answer; its task's own error raised as itself (the same message a
        user would see in-process), a dead worker said in one line."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from exc
            raise
        except ray.exceptions.RayActorError as exc:
            raise WorkerLostError(
                f"the Ray worker running this {task.kind} died (out of memory, or its node "
                "lost?); nothing of it was kept: start it again"
            ) from exc

    def _init_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if self.address is None:
            options["num_cpus"] = self.workers or os.cpu_count() or 1
        else:
            options["address"] = self.address
        return options

    def _worker_count(self, ray: Any) -> int:
        """As many as asked, but no more than the cluster has CPUs: an actor that no CPU is
        free for would hold its queued chunks forever."""
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if self.workers is not None and self.workers > cpus:
            logger.warning("the Ray cluster has %d CPUs: searching with %d workers, not %d",
                           cpus, cpus, self.workers)
        return cpus if self.workers is None else min(self.workers, cpus)

    def _search(self, ray: Any, jobs: Sequence[Job]) -> Iterator[tuple[int, SeedResult]]:
        """Chunks go only to workers that are up (their first pair loaded) and never more than
        ``_IN_FLIGHT`` to one: a worker still waiting for a CPU (another campaign holds it)
        is never handed a chunk the others could search. A stop signal of any job stops all."""
        total = sum(len(seeds) for _, seeds, _ in jobs)
        if not total:
            return
        workers = min(self._worker_count(ray), total)
        size = self.chunk or chunk_size(total, workers)
        queue = [(k, part) for k, (_, seeds, _) in enumerate(jobs) for part in chunked(seeds, size)]
        actor_class = ray.remote(concurrency_groups={"control": 1})(ChunkSearcher)
        actors = [actor_class.options(num_cpus=1, max_restarts=self.retries,
                                      max_task_retries=self.retries).remote(jobs[queue[0][0]][0])
                  for _ in range(min(workers, len(queue)))]
        starting = {actor.ready.remote(): actor for actor in actors}
        in_flight: dict[Any, tuple[Any, int]] = {}
        load = {id(actor): 0 for actor in actors}

        def stopping() -> bool:
            return any(context.stop.is_set() for _, _, context in jobs)

        def feed(actor: Any) -> None:
            while queue and load[id(actor)] < _IN_FLIGHT and not stopping():
                k, part = queue.pop(0)
                in_flight[actor.search.remote(jobs[k][0], part)] = (actor, k)
                load[id(actor)] += 1

        stop_sent = False
        try:
            while in_flight or (queue and starting and not stopping()):
                if stopping() and not stop_sent:
                    for actor in actors:  # each ends its chunk after the current step
                        actor.stop.options(concurrency_group="control").remote()
                    stop_sent = True
                ready, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=0.2)
                for ref in ready:
                    if ref in starting:
                        actor = starting.pop(ref)
                        self._fetch(ray, ref)  # raises if the worker could not start
                    else:
                        actor, k = in_flight.pop(ref)
                        load[id(actor)] -= 1
                        for result in self._fetch(ray, ref):
                            jobs[k][2].emit(SeedFinished(result))
                            yield k, result
                    feed(actor)
        finally:
            for actor in actors:
                ray.kill(actor)

    def _fetch(self, ray: Any, ref: Any) -> Any:
        """A task's value; a worker lost for good (its restarts spent) says so in one line."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise WorkerLostError(
                f"a Ray worker searching a chunk of seeds died {self.retries + 1} time(s) "
                "(out of memory, or a node lost?); the seeds already stored are kept: "
                "`compd search --resume RUN` searches the rest"
            ) from exc
