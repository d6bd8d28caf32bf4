"""The interface every search strategy implements, and the bookkeeping they share.

A strategy writes only its loop. ``SearchContext`` bundles what every loop needs (the pair,
settings, the injected generator, the event sink and the stop signal); ``SeedBudget`` decides
when one seed must end and why; ``ChainLog`` accumulates a seed's chain and fitness trace.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from compd_core.models.pair import ModelPair
from compd_core.search.criterion import distances
from compd_core.search.events import EventSink, SeedFinished, SeedStarted, no_events
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings


@dataclass
class SearchContext:
    """What every strategy's loop needs. Randomness comes only from ``rng_seed``."""

    pair: ModelPair
    settings: SearchSettings
    rng_seed: int = 0
    emit: EventSink = no_events
    stop: threading.Event = field(default_factory=threading.Event)

    def generator(self) -> torch.Generator:
        """One generator for a strategy that advances all seeds together."""
        return torch.Generator().manual_seed(self.rng_seed)

    def generator_for(self, seed: Seed) -> torch.Generator:
        """A generator of one seed's own: its search does not depend on the seeds before it,
        so a resumed run repeats exactly what an uninterrupted one would have done."""
        return torch.Generator().manual_seed(self.rng_seed * 1_000_003 + seed.index)


class SeedBudget:
    """Counts one seed's queries and time, and says why it must end, if it must."""

    def __init__(self, settings: SearchSettings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self.queries = 0
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> int:
        return self.settings.max_queries - self.queries

    def exhausted(self) -> ExitReason | None:
        if self.stop.is_set():
            return ExitReason.STOPPED
        if self.queries >= self.settings.max_queries:
            return ExitReason.QUERY_BUDGET
        if self.settings.time_budget is not None and self.seconds >= self.settings.time_budget:
            return ExitReason.TIME_BUDGET
        return None


@dataclass
class ChainLog:
    """The accepted steps and the fitness trace of one seed's chain."""

    steps: list[ChainStep] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)

    def accept(
        self, iteration: int, operator: str, params: dict[str, Any], fitness: float,
        label_original: int, label_compressed: int, image: torch.Tensor,
    ) -> None:
        self.steps.append(
            ChainStep(iteration, operator, dict(params), float(fitness), int(label_original),
                      int(label_compressed), image.detach().clone())
        )


def make_trigger(image: torch.Tensor, seed: Seed, probs_o: torch.Tensor, probs_c: torch.Tensor) -> Trigger:
    l2, linf = distances(image[None], seed.image[None])
    return Trigger(image.detach().clone(), probs_o.detach().clone(), probs_c.detach().clone(),
                   float(l2[0]), float(linf[0]))


class Strategy(ABC):
    """Turns seeds into per-seed results, yielding each as soon as it is final.

    Yielding early is what lets the campaign store a trigger the moment it is found.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    needs_white_box: ClassVar[bool] = False

    @abstractmethod
    def run(self, context: SearchContext, seeds: Sequence[Seed]) -> Iterator[SeedResult]:
        """Search every seed (in any order, possibly together) and yield their results."""


class SequentialStrategy(Strategy):
    """A strategy that searches one seed at a time (the published methods do)."""

    def run(self, context: SearchContext, seeds: Sequence[Seed]) -> Iterator[SeedResult]:
        for seed in seeds:
            if context.stop.is_set():
                return
            context.emit(SeedStarted(seed.position, seed.index))
            result = self.search_seed(context, seed)
            context.emit(SeedFinished(result))
            yield result

    @abstractmethod
    def search_seed(self, context: SearchContext, seed: Seed) -> SeedResult:
        """Search one seed until it deviates or its budget ends."""
