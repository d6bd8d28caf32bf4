"""The one event protocol of search, repair and characterize: common progress, one end event
carrying the summary, and the one command-line printer that draws them."""

from __future__ import annotations

import io
import math
import threading

import pytest
import torch
from rich.console import Console
from rich.progress import Progress as ProgressBars

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.cli.stoppable import ProgressPrinter
from compd_core.events import Finished, Progress, Stopped, ended, with_progress
from compd_core.repair.events import EpochFinished, RepairProgress, ResearchProgress, StageStarted
from compd_core.search.events import SearchProgress, SeedFinished, SeedStarted, Step
from compd_core.search.results import ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store import Store


def _result(position: int, queries: int, found: bool) -> SeedResult:
    image = torch.zeros(1, 28, 28)
    trigger = None
    if found:
        trigger = Trigger(image, torch.eye(10)[3], torch.eye(10)[5], l2=1.0, linf=0.1)
    reason = ExitReason.FOUND if found else ExitReason.QUERY_BUDGET
    return SeedResult(Seed(position, position, image, 3), reason, queries, queries, 0.1, trigger)


def test_progress_says_how_far_in_a_share_that_stays_in_range() -> None:
    assert Progress("search", "seed", 3, 12, "x").fraction == 0.25
    assert Progress("repair", "mining", 0, None, "x").fraction is None
    assert Progress("repair", "seed", 5, 0, "x").fraction is None
    assert Progress("search", "seed", 13, 12, "x").fraction == 1.0


def test_one_end_event_either_finished_or_stopped() -> None:
    done = ended("search", {"found": 2}, stopped=False, line="all done")
    kept = ended("repair", {"found": 1}, stopped=True, line="kept one")
    assert type(done) is Finished and not done.stopped and done.summary == {"found": 2}
    assert type(kept) is Stopped and kept.stopped and kept.line == "kept one"


def test_with_progress_forwards_each_event_then_the_progress_it_means() -> None:
    heard: list = []
    sink = with_progress(heard.append, lambda e: Progress("search", "seed", 1, 2, "one")
                         if isinstance(e, SeedStarted) else None)
    sink(SeedStarted(0, 7))
    sink(Step(0, 1, "blur", True, 0.5, 3, 3, False, 1))
    assert [type(e).__name__ for e in heard] == ["SeedStarted", "Progress", "Step"]


def test_search_progress_counts_seeds_deviations_and_queries_from_where_a_resume_starts() -> None:
    progress = SearchProgress(total=5, already_done=2)
    assert progress.start() == Progress("search", "seed", 2, 5, "starting")
    assert progress(Step(2, 1, "blur", True, 0.5, 3, 3, False, 40)) is None  # steps move no count
    assert progress(Step(3, 1, "blur", True, 0.5, 3, 3, False, 60)) is None
    first = progress(SeedFinished(_result(2, 100, found=True)))
    assert first == Progress("search", "seed", 3, 5, "1 deviation, 160 queries")
    second = progress(SeedFinished(_result(3, 1_250, found=False)))
    assert second == Progress("search", "seed", 4, 5, "1 deviation, 1,350 queries")


def test_repair_progress_starts_a_count_per_stage() -> None:
    progress = RepairProgress(epochs=20)
    mining = progress(StageStarted("mining", "searching 16 training digits"))
    assert mining == Progress("repair", "mining", 0, None, "mining: searching 16 training digits")
    assert progress(EpochFinished(0, 20, math.nan, 0.0, 0.0)) is None  # before training
    training = progress(StageStarted("training", "20 epochs"))
    assert (training.unit, training.done, training.total) == ("epoch", 0, 20)
    epoch = progress(EpochFinished(4, 20, 0.25, 0.5, 0.75))
    assert epoch == Progress("repair", "epoch", 4, 20,
                             "training: loss 0.250, repaired train 50% / held-out 75%")
    research = progress(ResearchProgress("after", 3, 9, 1))
    assert research == Progress("repair", "seed", 3, 9, "re-search after: 1 deviations")


def _printer() -> tuple[ProgressPrinter, ProgressBars]:
    bars = ProgressBars(console=Console(file=io.StringIO()), auto_refresh=False)
    return ProgressPrinter(bars), bars


def test_the_cli_printer_opens_a_bar_per_count_and_keeps_the_end_event() -> None:
    printer, bars = _printer()
    printer(Progress("repair", "mining", 0, None, "mining: 16 digits"))
    printer(Progress("repair", "epoch", 0, 3, "training"))
    printer(Progress("repair", "epoch", 2, 3, "training: loss 0.2"))
    printer(Progress("repair", "seed", 4, 9, "re-search before"))
    printer(Progress("repair", "seed", 1, 9, "re-search after"))  # counts again: a new bar
    printer(EpochFinished(3, 3, 0.1, 1.0, 1.0))  # payload: no bar of its own
    assert [(t.description, t.completed, t.total, t.visible) for t in bars.tasks] == [
        ("mining: 16 digits", 0, None, False),
        ("training: loss 0.2", 2, 3, False),
        ("re-search before", 4, 9, False),
        ("re-search after", 1, 9, True),
    ]
    assert printer.ended is None
    printer(ended("repair", {}, stopped=True, line="nothing registered"))
    assert isinstance(printer.ended, Stopped) and printer.ended.line == "nothing registered"


@pytest.mark.parametrize("stop_first", [False, True])
def test_a_search_emits_progress_per_seed_and_ends_with_its_summary(
    tmp_path, int8_pair, mnist_test, stop_first: bool
) -> None:
    spec = CampaignSpec(pair="lenet5-int8-static", strategy="random", seeds=3,
                        settings=SearchSettings(max_queries=30), rng_seed=0)
    events: list = []
    stop = threading.Event()
    if stop_first:
        stop.set()
    with Store(tmp_path / "r.sqlite") as store:
        summary = run_campaign(spec, store, pair=int8_pair, dataset=mnist_test,
                               emit=events.append, stop=stop)
    progress = [e for e in events if isinstance(e, Progress)]
    finished_seeds = sum(isinstance(e, SeedFinished) for e in events)
    assert [(p.done, p.total) for p in progress] == [(i, 3) for i in range(finished_seeds + 1)]
    assert all(p.kind == "search" and p.unit == "seed" for p in progress)
    end = events[-1]
    assert sum(isinstance(e, (Finished, Stopped)) for e in events) == 1
    assert end.summary == summary.to_dict() and end.stopped is stop_first
    if stop_first:
        assert end.line.startswith(f"run {summary.run_id} keeps every seed searched so far")
    else:
        assert end.line == f"run {summary.run_id}: {summary.found}/3 seeds deviated"
