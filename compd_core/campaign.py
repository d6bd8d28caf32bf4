"""A campaign: many seeds of one pair through one strategy, every result stored as it arrives.

The store is written after each seed, so killing the process loses nothing already found, and
``resume`` skips the seeds a run has finished. Summary numbers are computed in one place
(``summarize``) for the CLI, the dashboard and the benchmark alike.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError, UnknownPairError
from compd_core.executors import Executor, InProcessExecutor, PairLoader, SearchWork
from compd_core.models.device import resolve_device
from compd_core.models.pair import ModelPair
from compd_core.events import Event, EventSink, Progress, ended, no_events, with_progress
from compd_core.search.events import SearchProgress
from compd_core.search.results import Seed, SeedResult
from compd_core.pair_spec import PairSpec
from compd_core.zoo.loading import pair_dataset
from compd_core.search.seeds import (EXPLICIT_ORDER, Order, check_seed_count, explicit_seeds, seeds_from,
                                     select_seeds)
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.store import RunRecord, SeedPlan, Store
from compd_core.strength import StrengthSummary, summarize_strength


@dataclass(frozen=True)
class CampaignSpec:
    """Everything that determines a campaign's results."""

    pair: str  # the pair's name: a zoo id, or what ``pair_spec`` calls its files
    strategy: str = "compd"
    seeds: int = 100
    settings: SearchSettings = SearchSettings()
    rng_seed: int = 0
    dataset: str | None = None  # where seeds come from (see compd_core.data.resolve); None: the
    # zoo pair's own dataset (clothes for a Fashion-MNIST pair), mnist for own model files
    seed_order: Order = "random"
    pair_spec: PairSpec | None = None  # own model files; None: ``pair`` is a zoo id
    seed_indices: tuple[int, ...] | None = None  # explicit dataset indices instead of a draw

    def __post_init__(self) -> None:
        if self.dataset is None:
            object.__setattr__(self, "dataset", self._own_dataset())
        if self.seed_indices is not None:  # listed seeds fix their count and their order
            object.__setattr__(self, "seed_indices", tuple(int(i) for i in self.seed_indices))
            object.__setattr__(self, "seeds", len(self.seed_indices))
            object.__setattr__(self, "seed_order", EXPLICIT_ORDER)
        else:  # refused at the door, not once a progress bar is up
            check_seed_count(self.seeds)

    def _own_dataset(self) -> str:
        if self.pair_spec is not None:
            return "mnist"
        try:
            return pair_dataset(self.pair)
        except UnknownPairError:  # refused with its own message when the campaign loads it
            return "mnist"

    @property
    def source(self) -> PairSpec:
        """How to build the pair: the given files, or the zoo pair ``pair`` names."""
        return self.pair_spec if self.pair_spec is not None else PairSpec.zoo(self.pair)


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
    strength: StrengthSummary | None = None  # the triggers' margins: how convincing they are

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
    strength = summarize_strength([r.trigger for r in found if r.trigger is not None])
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
        strength=strength,
    )


def spec_of_run(record: RunRecord) -> CampaignSpec:
    """The campaign a stored run was started as: what ``--resume RUN`` alone continues."""
    plan = record.seed_plan
    order = plan.order if plan is not None else "random"
    explicit = plan.indices if plan is not None and order == EXPLICIT_ORDER else None
    return CampaignSpec(pair=record.pair, strategy=record.strategy, seeds=record.seed_count,
                        settings=record.settings, rng_seed=record.rng_seed,
                        dataset=record.dataset, seed_order=order,  # type: ignore[arg-type]
                        pair_spec=record.pair_spec, seed_indices=explicit)


def _check_same_campaign(spec: CampaignSpec, record: RunRecord) -> None:
    """Refuse to continue a run under other settings: its results would mix two campaigns."""
    stored = spec_of_run(record)
    for name in ("pair", "strategy", "seeds", "settings", "rng_seed", "dataset", "seed_order",
                 "seed_indices"):
        if name == "seed_order" and record.seed_plan is None:
            continue  # runs stored before seed plans did not record their order
        mine, theirs = getattr(spec, name), getattr(stored, name)
        if name == "seed_indices" and mine is None:
            continue  # a spec may leave its seeds to the stored plan
        if mine != theirs:
            raise ConfigError(
                f"run {record.id} was started with {name} {theirs!r}, not {mine!r}; resume it "
                "with its own settings (`compd search --resume RUN` alone restores them)"
            )


def _seeds_of_plan(plan: SeedPlan, dataset: ImageDataset, run_id: str) -> list[Seed]:
    """The run's own seeds, rebuilt from their dataset indices (never drawn again)."""
    where = {int(index): position for position, index in enumerate(dataset.indices.tolist())}
    missing = [index for index in plan.indices if index not in where]
    if missing:
        raise ConfigError(
            f"run {run_id}'s seeds {missing[:5]} are not in {dataset.name} (uploaded images "
            "live only in the dashboard session that searched them); start a new run"
        )
    positions = torch.tensor([where[index] for index in plan.indices])
    return seeds_from(dataset, positions, torch.tensor(plan.labels))


def _check_redrawn(store: Store, record: RunRecord, seeds: list[Seed]) -> None:
    """A run stored without its seed list resumes only if drawing again gives the same images."""
    stored = {r.seed.position: r.seed.index for r in store.load_results(record.id, details=False)}
    drawn = {s.position: s.index for s in seeds}
    moved = [p for p, index in stored.items() if drawn.get(p) != index]
    if moved:
        raise ConfigError(
            f"run {record.id} was stored without its seed list, and drawing its seeds again "
            f"puts other images at positions {moved[:5]}; give the --seed-order it was "
            "started with, or start a new run"
        )


def _plan(seeds: Sequence[Seed], order: str) -> SeedPlan:
    return SeedPlan(order, tuple(s.index for s in seeds), tuple(s.label for s in seeds))


@dataclass
class _Run:
    """One run of a campaign, ready to search: its seeds still to do, and where results go."""

    spec: CampaignSpec
    store: Store | None
    run_id: str | None
    work: SearchWork
    seeds: list[Seed]  # the seeds this call searches (a resumed run's unfinished ones)
    context: SearchContext
    results: list[SeedResult] = field(default_factory=list)  # kept only without a store
    searched: list[int] = field(default_factory=list)  # positions searched by this call
    after_stop: list[SeedResult] = field(default_factory=list)  # handed back once Stop was asked
    wall: float = 0.0

    def take(self, result: SeedResult) -> None:
        """A final result: committed at once (a kill loses nothing), or held after a Stop to
        be written with the rest in one commit."""
        if self.store is not None and self.run_id is not None:
            if self.context.stop.is_set():
                self.after_stop.append(result)
            else:
                self.store.save_result(self.run_id, result)
        else:
            self.results.append(result)
        self.searched.append(result.seed.position)

    def close(self) -> None:
        """Record how the run ended; runs whatever happened (Ctrl-C, a crash)."""
        if self.store is not None and self.run_id is not None:
            self.store.save_results(self.run_id, self.after_stop)  # a stopped run's rest: one commit
            self.store.finish_run(self.run_id, "stopped" if self.context.stop.is_set() else "finished",
                                  self.wall)

    def summary(self) -> CampaignSummary:
        results = self.results
        if self.store is not None and self.run_id is not None:
            # Report what the file holds, not what was meant to be written: a write that did
            # not land raises here instead of printing a success the run cannot back.
            results = self.store.load_results(self.run_id, self.searched, details=False)
        return summarize(results, self.wall, run_id=self.run_id, pair=self.spec.pair,
                         strategy=self.spec.strategy, stopped=self.context.stop.is_set())


def _prepare(spec: CampaignSpec, store: Store | None, *, pair: ModelPair | None,
             dataset: ImageDataset | None, emit: EventSink, stop: threading.Event,
             resume: str | None, device: str) -> tuple[_Run, SearchProgress]:
    """Check, load and claim one run (a new one, or the stored ``resume``) before any search."""
    if resume is not None and store is None:
        raise ConfigError("resuming needs the results database the run was stored in (--db)")
    record = None
    if store is not None and resume is not None:
        record = store.get_run(resume)
        _check_same_campaign(spec, record)
    strategy = get_strategy(spec.strategy)
    source = record.pair_source() if record is not None else spec.source
    loader = PairLoader(source, resolve_device(device))
    if pair is None:
        if record is not None:
            source.changed_files()  # a file that is gone is refused; a changed one logged
        pair = loader()
    elif loader.device != "cpu":
        pair = pair.on(loader.device)
    if strategy.needs_white_box:
        pair.white_box()  # refuses a black-box pair before any work is done
    dataset = dataset or load_dataset(spec.dataset, pair.input_shape, pair.class_names)
    if record is not None and record.seed_plan is not None:
        seeds = _seeds_of_plan(record.seed_plan, dataset, record.id)
    elif spec.seed_indices is not None:
        seeds = explicit_seeds(pair, dataset, spec.seed_indices)
    else:
        seeds = select_seeds(pair, dataset, spec.seeds, seed=spec.rng_seed, order=spec.seed_order)
        if store is not None and record is not None and record.seeds_done:
            _check_redrawn(store, record, seeds)
    planned = len(seeds)
    run_id = None
    if store is not None:
        if record is None:
            run_id = store.create_run(spec.pair, spec.strategy, spec.settings, spec.seeds,
                                      spec.rng_seed, spec.dataset,
                                      seed_plan=_plan(seeds, spec.seed_order),
                                      pair_spec=spec.pair_spec)
        else:
            run_id = record.id
        store.resume_run(run_id)  # claims it: one search per run at a time
        if record is not None and record.seed_plan is None:
            store.set_seed_plan(run_id, _plan(seeds, spec.seed_order))
        done = store.finished_positions(run_id)
        seeds = [s for s in seeds if s.position not in done]
    pair.reset_queries()
    progress = SearchProgress(planned, already_done=planned - len(seeds))
    context = SearchContext(pair, spec.settings, spec.rng_seed, emit, stop)
    work = SearchWork(loader, spec.strategy, spec.settings, spec.rng_seed)
    return _Run(spec, store, run_id, work, seeds, context), progress


def run_campaign(
    spec: CampaignSpec,
    store: Store | None = None,
    *,
    pair: ModelPair | None = None,
    dataset: ImageDataset | None = None,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
    resume: str | None = None,
    executor: Executor | None = None,
    device: str = "cpu",
) -> CampaignSummary:
    """Run (or resume, by run id) a campaign; with a store, each result is committed at once.

    ``pair`` and ``dataset`` may be given to skip loading them (the dashboard caches both).
    ``executor`` decides who searches the seeds (default: this process; see
    ``compd_core.executors``); whoever does, this process alone writes the store.
    ``device`` ('cpu', 'cuda' or 'auto') is where the pair's torch models run.
    A resumed run searches exactly its stored seeds under its stored settings; a spec that
    differs, a finished run, or a run another search holds right now is refused before anything
    changes. The summary counts only the seeds this call searched, as read back from the store.
    """
    stop = stop or threading.Event()
    run, progress = _prepare(spec, store, pair=pair, dataset=dataset, emit=emit, stop=stop,
                             resume=resume, device=device)
    run.context = replace(run.context, emit=with_progress(emit, progress))
    emit(progress.start())
    executor = executor or InProcessExecutor()
    started = time.perf_counter()
    try:
        for result in executor.run(run.work, run.seeds, run.context):
            run.take(result)
    except BaseException:
        stop.set()  # Ctrl-C or a crash: the run is recorded as stopped, its results are kept
        raise
    finally:
        run.wall = time.perf_counter() - started
        run.close()
    summary = run.summary()
    emit(ended("search", summary.to_dict(), stopped=summary.stopped, line=_outcome_line(summary)))
    return summary


def run_campaigns(
    specs: Sequence[CampaignSpec],
    store: Store | None = None,
    *,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
    executor: Executor | None = None,
    device: str = "cpu",
) -> list[CampaignSummary]:
    """One campaign over several pairs: one run per spec, searched through one executor.

    Every run is checked, loaded and stored (with its own pair description, settings and
    seeds) before any search starts, so a bad pair is refused before anything runs. On Ray the
    runs' chunks share the workers. Stop ends every run after its current unit, as for one
    campaign. A run's wall time is the time between the results that reached this process,
    each gap counted for the run whose result ended it, so the walls add up to the campaign's.
    """
    if not specs:
        raise ConfigError("a campaign needs at least one pair")
    pairs = [spec.pair for spec in specs]
    repeated = sorted({p for p in pairs if pairs.count(p) > 1})
    if repeated:
        raise ConfigError(f"pair {repeated[0]!r} is given twice; give each pair once")
    stop = stop or threading.Event()
    runs: list[_Run] = []
    parts: list[SearchProgress] = []
    try:
        for spec in specs:
            run, progress = _prepare(spec, store, pair=None, dataset=None, emit=emit, stop=stop,
                                     resume=None, device=device)
            runs.append(run)
            parts.append(progress)
    except BaseException:
        for run in runs:  # made by this call, nothing searched yet: a pair refused leaves no trace
            if store is not None and run.run_id is not None:
                store.delete_run(run.run_id)
        raise
    combined = _CombinedProgress(parts)
    for k, run in enumerate(runs):
        run.context = replace(run.context, emit=with_progress(emit, combined.describer(k)))
    emit(combined.start())
    executor = executor or InProcessExecutor()
    last = time.perf_counter()
    try:
        for k, result in executor.run_many([(run.work, run.seeds, run.context) for run in runs]):
            runs[k].take(result)
            now = time.perf_counter()
            runs[k].wall += now - last
            last = now
    except BaseException:
        stop.set()
        raise
    finally:
        for run in runs:
            run.close()
    summaries = [run.summary() for run in runs]
    emit(ended("search", {"runs": [s.to_dict() for s in summaries]},
               stopped=stop.is_set(), line=_outcomes_line(summaries)))
    return summaries


class _CombinedProgress:
    """Several runs' progress as one count: every seed of every run."""

    def __init__(self, parts: Sequence[SearchProgress]) -> None:
        self.parts = parts

    def start(self) -> Progress:
        return Progress("search", "seed", sum(p.done for p in self.parts),
                        sum(p.total for p in self.parts), f"starting {len(self.parts)} runs")

    def describer(self, k: int) -> Callable[[Event], Progress | None]:
        """Run ``k``'s events as the common count."""

        def describe(event: Event) -> Progress | None:
            if self.parts[k](event) is None:
                return None
            found = sum(p.found for p in self.parts)
            return Progress("search", "seed", sum(p.done for p in self.parts),
                            sum(p.total for p in self.parts),
                            f"{found} deviation{'s' if found != 1 else ''} in {len(self.parts)} runs")

        return describe


def _outcomes_line(summaries: Sequence[CampaignSummary]) -> str:
    """What several runs hold now, in one line that names each run."""
    return "; ".join(_outcome_line(s) for s in summaries)


def _outcome_line(summary: CampaignSummary) -> str:
    """What the run holds now, in one line (a stopped one: that nothing searched was lost)."""
    where = "this search" if summary.run_id is None else f"run {summary.run_id}"
    if summary.stopped:
        return (f"{where} keeps every seed searched so far ({summary.found} deviation"
                f"{'s' if summary.found != 1 else ''})")
    return f"{where}: {summary.found}/{summary.seeds} seeds deviated"
