"""The embedded default: the strategy runs in this process, on the campaign's own pair."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from compd_core.executors.base import Executor, SearchWork
from compd_core.search.results import Seed, SeedResult
from compd_core.search.strategies import SearchContext, get_strategy


class InProcessExecutor(Executor):
    """All seeds through one strategy object in this thread: every event reaches the caller."""

    name = "inprocess"

    def run(self, work: SearchWork, seeds: Sequence[Seed], context: SearchContext) -> Iterator[SeedResult]:
        return get_strategy(work.strategy).run(context, seeds)
