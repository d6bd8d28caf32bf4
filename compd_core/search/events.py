"""The typed event stream of a search, and a thread-safe recorder that turns it into state.

Strategies emit events; the CLI's progress bar, the dashboard's live charts and the store
consume them. ``EventRecorder`` is written by the search thread and read by any other thread.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from compd_core.search.results import SeedResult


@dataclass(frozen=True)
class SeedStarted:
    position: int
    index: int


@dataclass(frozen=True)
class Step:
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
class OperatorUsage:
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
class SeedFinished:
    result: SeedResult


Event = SeedStarted | Step | OperatorUsage | SeedFinished
EventSink = Callable[[Event], None]


def no_events(event: Event) -> None:
    """The default sink: ignore everything."""


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
                self.seeds_finished += 1
                self.found += int(event.result.found)
                self._count_queries(event.result.seed.position, event.result.queries)
                self.results.append(event.result)

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
            }
