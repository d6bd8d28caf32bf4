"""A campaign: many seeds of one pair through one strategy, every result stored as it arrives.

The store is written after each seed, so killing the process loses nothing already found, and
``resume`` skips the seeds a run has finished. Summary numbers are computed in one place
(``summarize``) for the CLI, the dashboard and the benchmark alike.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from compd_core.data.dataset import ImageDataset
from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError, StoreError
from compd_core.models.pair import ModelPair
from compd_core.search.events import EventSink, no_events
from compd_core.search.results import SeedResult
from compd_core.search.seeds import Order, select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.store import Store


@dataclass(frozen=True)
class CampaignSpec:
    """Everything that determines a campaign's results."""

    pair: str  # zoo pair id
    strategy: str = "compd"
    seeds: int = 100
    settings: SearchSettings = SearchSettings()
    rng_seed: int = 0
    dataset: str = "mnist"  # where seeds come from (see compd_core.data.resolve)
    seed_order: Order = "random"


@dataclass(frozen=True)
class CampaignSummary:
    """The numbers a user compares strategies by (see README: search metrics)."""

    run_id: str | None
    pair: str
    strategy: str
    seeds: int
    found: int
    success_rate: float
    median_queries: float | None  # per trigger, seeds that deviated
    mean_queries: float | None
    median_seconds: float | None  # per trigger, from the seed's start to its trigger
    seconds_per_trigger: float | None  # wall-clock of the run / triggers found
    queries_per_second: float
    median_l2: float | None
    median_linf: float | None
    wall_seconds: float
    total_queries: int
    stopped: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarize(
    results: Sequence[SeedResult], wall_seconds: float, *, run_id: str | None, pair: str,
    strategy: str, stopped: bool = False,
) -> CampaignSummary:
    found = [r for r in results if r.found]
    total_queries = sum(r.queries for r in results)
    return CampaignSummary(
        run_id=run_id,
        pair=pair,
        strategy=strategy,
        seeds=len(results),
        found=len(found),
        success_rate=len(found) / len(results) if results else 0.0,
        median_queries=_median([r.queries for r in found]),
        mean_queries=statistics.fmean([r.queries for r in found]) if found else None,
        median_seconds=_median([r.seconds for r in found]),
        seconds_per_trigger=wall_seconds / len(found) if found else None,
        queries_per_second=total_queries / wall_seconds if wall_seconds > 0 else 0.0,
        median_l2=_median([r.trigger.l2 for r in found]),  # type: ignore[union-attr]
        median_linf=_median([r.trigger.linf for r in found]),  # type: ignore[union-attr]
        wall_seconds=wall_seconds,
        total_queries=total_queries,
        stopped=stopped,
    )


def run_campaign(
    spec: CampaignSpec,
    store: Store | None = None,
    *,
    pair: ModelPair | None = None,
    dataset: ImageDataset | None = None,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
    resume: str | None = None,
) -> CampaignSummary:
    """Run (or resume, by run id) a campaign; with a store, each result is committed at once.

    ``pair`` and ``dataset`` may be given to skip loading them (the dashboard caches both).
    The summary counts only the seeds this call searched when resuming; the store holds them all.
    """
    if resume is not None and store is None:
        raise ConfigError("resuming needs the results database the run was stored in (--db)")
    strategy = get_strategy(spec.strategy)
    if pair is None:
        from compd_core.zoo import load_pair

        pair = load_pair(spec.pair)
    if strategy.needs_white_box:
        pair.white_box()  # refuses a black-box pair before any work is done
    dataset = dataset or load_dataset(spec.dataset, pair.input_shape)
    seeds = select_seeds(pair, dataset, spec.seeds, seed=spec.rng_seed, order=spec.seed_order)
    stop = stop or threading.Event()
    if store is not None and resume is not None:
        run_id = resume
        record = store.resume_run(run_id)
        if record.pair != spec.pair or record.strategy != spec.strategy:
            raise StoreError(f"run {run_id} is a {record.strategy} run on {record.pair}; resume it with those")
        done = store.finished_positions(run_id)
        seeds = [s for s in seeds if s.position not in done]
    elif store is not None:
        run_id = store.create_run(spec.pair, spec.strategy, spec.settings, spec.seeds,
                                  spec.rng_seed, spec.dataset)
    else:
        run_id = None
    pair.reset_queries()
    context = SearchContext(pair, spec.settings, spec.rng_seed, emit, stop)
    results: list[SeedResult] = []
    after_stop: list[SeedResult] = []  # what the strategy hands back once Stop was asked for
    started = time.perf_counter()
    try:
        for result in strategy.run(context, seeds):
            if store is not None and run_id is not None:
                if stop.is_set():
                    after_stop.append(result)
                else:
                    store.save_result(run_id, result)  # committed at once: a kill loses nothing
            results.append(result)
    except BaseException:
        stop.set()  # Ctrl-C or a crash: the run is recorded as stopped, its results are kept
        raise
    finally:
        wall = time.perf_counter() - started
        if store is not None and run_id is not None:
            store.save_results(run_id, after_stop)  # the rest of a stopped run: one commit
            store.finish_run(run_id, "stopped" if stop.is_set() else "finished", wall)
    return summarize(results, wall, run_id=run_id, pair=spec.pair, strategy=spec.strategy,
                     stopped=stop.is_set())
