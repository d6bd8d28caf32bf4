"""``compd profile``: the share of seeds that deviate within each L-inf distance budget."""

from __future__ import annotations

import typer
from rich.table import Table

from compd_core.cli.common import (
    ALLOW_CODE_HELP,
    COMPRESSED_HELP,
    DATASET_HELP,
    ORIGINAL_HELP,
    PAIR_HELP,
    SEED_INDICES_HELP,
    default_dataset,
    out,
    pair_spec_from_options,
    parse_csv_ints,
    parse_seed_indices,
    print_json,
)
from compd_core.cli.stoppable import exit_stopped, run_job
from compd_core.search.profile import DEFAULT_BUDGETS, DeviationProfile


def profile(
    pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
    original: str = typer.Option(None, "--original", help=ORIGINAL_HELP),
    compressed: str = typer.Option(None, "--compressed", help=COMPRESSED_HELP),
    allow_code: bool = typer.Option(False, "--allow-code", help=ALLOW_CODE_HELP),
    dataset: str = typer.Option(None, "--dataset", help=DATASET_HELP),
    seed_indices: str = typer.Option(None, "--seed-indices", help=SEED_INDICES_HELP),
    seeds: int = typer.Option(50, help="Number of seed images drawn from the dataset."),
    budgets: str = typer.Option(",".join(map(str, DEFAULT_BUDGETS)),
                                help="L-inf budgets in grey levels of 255, comma-separated."),
    budget: int = typer.Option(2_000, "--budget", help="Query budget per seed and distance budget."),
    strategy: str = typer.Option("compd", help="compd (any pair) or gradient (PyTorch pairs)."),
    seed_order: str = typer.Option("random", help="How seeds are picked from the test split (as in `compd search`)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same profile."),
    min_margin_original: float = typer.Option(0.0, help="How sure the original must stay of the "
                                              "seed's label (probability minus its next class's, "
                                              "in [0, 1); 0: strict only)."),
    min_margin_compressed: float = typer.Option(0.0, help="How clearly the compressed model must "
                                                "answer otherwise (in [0, 1); 0: strict only)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Search each seed under growing per-pixel budgets; print the share that deviates within each."""
    from compd_core.search.profile_task import ProfileTask

    dataset = default_dataset(dataset, pair)
    task = ProfileTask(pair_spec_from_options(pair, original, compressed, dataset, allow_code),
                       dataset, seeds, parse_csv_ints(budgets, "--budgets"), budget, strategy, seed,
                       seed_order, parse_seed_indices(seed_indices),  # type: ignore[arg-type]
                       min_margin_original, min_margin_compressed)
    job = run_job(task, "seed")
    if json_output:
        print_json(job.value.to_dict())
    else:
        render_profile(job.value)
    if job.stopped:
        exit_stopped("budgets not shown were not searched to the end")


def render_profile(result: DeviationProfile) -> None:
    """A table of the profile and its sentence in numbers."""
    table = Table(title=f"Deviation profile of {result.pair} ({result.strategy}, {result.seeds} seeds, "
                        f"{result.max_queries:,} queries per seed and budget)")
    for column in ("largest pixel change", "seeds that deviate", "share", "seeds searched", "queries"):
        table.add_column(column, justify="right")
    for p in result.points:
        table.add_row(f"{p.budget}/255", str(p.solved), f"{p.share:.0%}", str(p.searched), f"{p.queries:,}")
    out.print(table)
    out.print(result.sentence())
