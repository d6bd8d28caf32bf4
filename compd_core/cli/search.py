"""``compd search``: run (or resume) a campaign with a live progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from compd_core.cli.common import console, out, print_json, seed_option
from compd_core.cli.stoppable import exit_stopped, run_until_stopped
from compd_core.paths import default_db_path
from compd_core.search.events import Event, SeedFinished, Step

if TYPE_CHECKING:
    from compd_core.campaign import CampaignSummary


class _ProgressSink:
    """Turns search events into a Rich progress bar (seeds done, deviations, queries)."""

    def __init__(self, progress: Progress, task: int) -> None:
        self.progress, self.task = progress, task
        self.found = 0
        self.queries: dict[int, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.queries[event.position] = event.queries
        elif isinstance(event, SeedFinished):
            self.found += int(event.result.found)
            self.queries[event.result.seed.position] = event.result.queries
            self.progress.update(
                self.task, advance=1,
                description=f"{self.found} deviations, {sum(self.queries.values()):,} queries",
            )


def search(
    pair: str = typer.Option(..., "--pair", help="Zoo pair id (see `compd zoo list`)."),
    strategy: str = typer.Option("compd", help="compd, dflare, diffchaser, gradient or random."),
    seeds: int = typer.Option(20, help="Number of seed images from the test split."),
    budget: int = typer.Option(10_000, help="Query budget per seed (one query = one image through both models)."),
    time_budget: float = typer.Option(None, help="Time budget per seed, in seconds."),
    operators: str = typer.Option("dflare", help="Mutation operator set: dflare or natural."),
    criterion: str = typer.Option("valid", help="valid (the original keeps the seed's label) or any."),
    max_linf: float = typer.Option(None, help="L-inf bound around the seed, in (0, 1]."),
    seed_order: str = typer.Option("random", help="random, or margin (lowest margin first)."),
    seed: int = typer.Option(0, "--seed", callback=seed_option, help="Random seed: same seed, same triggers."),
    db: Path = typer.Option(None, help="Results database (default ./compd.sqlite or $COMPD_DB)."),
    resume: str = typer.Option(None, help="Resume this run id, skipping its finished seeds."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Search seeds of a pair for deviation-triggering inputs; every trigger is stored at once."""
    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.search.criterion import Criterion
    from compd_core.search.settings import SearchSettings
    from compd_core.store import Store

    settings = SearchSettings(max_queries=budget, time_budget=time_budget,
                              criterion=Criterion(kind=criterion, max_linf=max_linf),  # type: ignore[arg-type]
                              operators=operators)
    spec = CampaignSpec(pair=pair, strategy=strategy, seeds=seeds, settings=settings,
                        rng_seed=seed, seed_order=seed_order)  # type: ignore[arg-type]
    store = Store(db or default_db_path())
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=json_output) as progress:
        task = progress.add_task("starting", total=seeds)
        summary, stopped = run_until_stopped(
            lambda stop: run_campaign(spec, store, emit=_ProgressSink(progress, task), stop=stop,
                                      resume=resume),
            "search step",
        )
    report = summary.to_dict()
    if json_output:
        print_json(report)
    else:
        _print_summary(summary)
    if stopped:
        exit_stopped(f"run {summary.run_id} keeps every seed searched so far ({summary.found} "
                     f"deviations); `compd search ... --resume {summary.run_id}` finishes it")


def _print_summary(summary: CampaignSummary) -> None:
    rate = f"{summary.found}/{summary.seeds} seeds deviated ({summary.success_rate:.0%})"
    out.print(f"run {summary.run_id}: {rate} in {summary.wall_seconds:.1f} s, "
              f"{summary.queries_per_second:,.0f} queries/s")
    if summary.found:
        out.print(f"median {summary.median_queries:.0f} queries and L2 {summary.median_l2:.2f} "
                  f"per trigger; {summary.seconds_per_trigger:.3f} s per trigger")
    out.print(f"see them with `compd runs show {summary.run_id}` or in the dashboard")
