"""The embedded default: the strategy runs in this process, on the campaign's own pair."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from compd_core.events import EventSink
from compd_core.executors.base import Executor, JobTask, SearchWork
from compd_core.search.results import Seed, SeedResult
from compd_core.search.strategies import SearchContext, get_strategy


class InProcessExecutor(Executor):
    """All seeds through one strategy object in this thread: every event reaches the caller."""

    name = "inprocess"

    def run(self, work: SearchWork, seeds: Sequence[Seed], context: SearchContext) -> Iterator[SeedResult]:
        return get_strategy(work.strategy).run(context, seeds)

    def run_job(self, task: JobTask[Any], emit: EventSink, stop: threading.Event) -> Any:
        """The task in the caller's thread: each event reaches ``emit`` as it happens."""
        return task(emit, stop)
