"""The typed event stream of a search, and a thread-safe recorder that turns it into state.

Strategies emit these payload events through the job protocol's one sink type
(``compd_core.events``); ``SearchProgress`` turns them into its common ``Progress``.
``EventRecorder`` is written by the search thread and read by any other thread.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from compd_core.events import Event, EventSink, Progress, no_events
from compd_core.search.results import ExitReason, SeedResult

__all__ = ["Event", "EventSink", "no_events", "EventRecorder", "OperatorUsage", "SearchEvent",
           "SearchProgress", "SeedFinished", "SeedStarted", "Step"]


@dataclass(frozen=True)
class SeedStarted(Event):
    position: int
    index: int


@dataclass(frozen=True)
class Step(Event):
    """One iteration of one chain: the operator tried and what came of it."""

    position: int  # the seed's position in the run
    iteration: int
    operator: str
    accepted: bool
    fitness: float  # the chain's current (best) fitness; lower is closer to a deviation
    label_original: int
    label_compressed: int
    found: bool
    queries: int  # queries this seed has used so far


@dataclass(frozen=True)
class OperatorUsage(Event):
    """How often each operator was applied and succeeded (improved its chain or deviated)."""

    chosen: dict[str, int]
    succeeded: dict[str, int]

    @staticmethod
    def count(names: Sequence[str], choices: torch.Tensor, success: torch.Tensor) -> OperatorUsage:
        """Tally a batch of (operator index, success) outcomes."""
        chosen = torch.bincount(choices, minlength=len(names)).tolist()
        won = torch.bincount(choices[success], minlength=len(names)).tolist()
        return OperatorUsage(
            {n: c for n, c in zip(names, chosen) if c}, {n: w for n, w in zip(names, won) if w}
        )


@dataclass(frozen=True)
class SeedFinished(Event):
    result: SeedResult


SearchEvent = SeedStarted | Step | OperatorUsage | SeedFinished


class SearchProgress:
    """A search's events as the common ``Progress``: one per finished seed, counting the run's
    seeds (a resumed run starts at the seeds it already had), deviations and queries."""

    def __init__(self, total: int, already_done: int = 0) -> None:
        self.total, self.done, self.found = total, already_done, 0
        self._queries: dict[int, int] = {}

    def start(self) -> Progress:
        return Progress("search", "seed", self.done, self.total, "starting")

    def __call__(self, event: Event) -> Progress | None:
        if isinstance(event, Step):
            self._queries[event.position] = event.queries
        elif isinstance(event, SeedFinished):
            self.done += 1
            self.found += int(event.result.found)
            self._queries[event.result.seed.position] = event.result.queries
            return Progress("search", "seed", self.done, self.total,
                            f"{self.found} deviation{'s' if self.found != 1 else ''}, "
                            f"{sum(self._queries.values()):,} queries")
        return None


@dataclass
class OperatorStats:
    chosen: int = 0
    succeeded: int = 0


@dataclass
class EventRecorder:
    """Aggregates events into what live views show; safe to read from another thread.

    Fitness traces are capped per seed (``max_trace``) by keeping every k-th point, so a
    long run does not grow without bound.
    """

    max_trace: int = 500
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    seeds_started: int = 0
    seeds_finished: int = 0
    found: int = 0
    queries: int = 0
    operators: dict[str, OperatorStats] = field(default_factory=lambda: defaultdict(OperatorStats))
    traces: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    last_chain: dict[int, list[Step]] = field(default_factory=dict)
    results: list[SeedResult] = field(default_factory=list)
    finished: dict[int, bool] = field(default_factory=dict)  # position -> deviation found
    exit_reasons: dict[ExitReason, int] = field(default_factory=dict)  # how many seeds ended how
    latest_found: int | None = None  # position of the last seed that deviated
    _seed_queries: dict[int, int] = field(default_factory=dict, repr=False)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, SeedStarted):
                self.seeds_started += 1
                self.traces[event.position] = []
            elif isinstance(event, Step):
                self._on_step(event)
            elif isinstance(event, OperatorUsage):
                for name, count in event.chosen.items():
                    self.operators[name].chosen += count
                for name, count in event.succeeded.items():
                    self.operators[name].succeeded += count
            elif isinstance(event, SeedFinished):
                result, position = event.result, event.result.seed.position
                self.seeds_finished += 1
                self.found += int(result.found)
                self._count_queries(position, result.queries)
                self.results.append(result)
                self.finished[position] = result.found
                self.exit_reasons[result.exit_reason] = self.exit_reasons.get(result.exit_reason, 0) + 1
                if result.found:
                    self.latest_found = position

    def _count_queries(self, position: int, seed_total: int) -> None:
        self.queries += seed_total - self._seed_queries.get(position, 0)
        self._seed_queries[position] = seed_total

    def _on_step(self, step: Step) -> None:
        self._count_queries(step.position, step.queries)
        trace = self.traces.setdefault(step.position, [])
        if len(trace) >= self.max_trace:
            del trace[1::2]  # halve the resolution, keep the shape
        trace.append((step.iteration, step.fitness))
        if step.accepted:
            self.last_chain.setdefault(step.position, []).append(step)

    def snapshot(self) -> dict:
        """A consistent copy for a reader thread."""
        with self._lock:
            return {
                "seeds_started": self.seeds_started,
                "seeds_finished": self.seeds_finished,
                "found": self.found,
                "queries": self.queries,
                "operators": {k: vars(v).copy() for k, v in self.operators.items()},
                "traces": {k: list(v) for k, v in self.traces.items()},
                "results": list(self.results),
                "finished": dict(self.finished),
                "exit_reasons": dict(self.exit_reasons),
                "latest_found": self.latest_found,
            }
