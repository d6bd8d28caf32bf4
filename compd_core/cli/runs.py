"""``compd runs``: what earlier searches found, read from the results database (read-only:
these commands need no write access and never wait on a running search)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.table import Table

from compd_core.cli.common import (
    console,
    out,
    parse_csv,
    parse_csv_ints,
    print_json,
    warn_changed_files,
)
from compd_core.paths import default_db_path, writable_output_dir
from compd_core.strength import margin_text, summarize_strength

if TYPE_CHECKING:
    from compd_core.search.criterion import Criterion

app = typer.Typer(help="List, inspect and export stored search runs.", no_args_is_help=True)

DB_HELP = "Results database (default: ./compd.sqlite, or $COMPD_DB)."


def _open(db: Path | None):
    from compd_core.store import Store

    return Store(db or default_db_path(), read_only=True)


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _table(title: str | None = None) -> Table:
    """Borderless, one space between columns, so that a table fits an 80-column terminal or pipe."""
    return Table(title=title, box=box.SIMPLE_HEAD, padding=0, show_edge=False)


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


@app.command("list")
def list_command(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Every run, newest first, with how many seeds it searched and found."""
    with _open(db) as store:
        runs = store.list_runs()
        if json_output:
            print_json({"database": str(store.path), "runs": [r.as_dict() for r in runs]})
            return
        if not runs:
            console.print(f"no runs in {store.path} yet; `compd search` starts one")
            return
        # The id starts with its creation time, so no separate column: the table fits 80 columns.
        table = _table(f"Runs in {store.path}")
        table.add_column("run", no_wrap=True)  # copied into other commands: never broken
        for column in ("pair", "strategy", "status"):
            table.add_column(column)
        for column in ("seeds", "found", "wall s"):
            table.add_column(column, justify="right")
        for r in runs:
            table.add_row(
                r.id, r.pair, r.strategy, r.status, f"{r.seeds_done}/{r.seed_count}",
                f"{r.found} ({r.found_rate:.0%})", f"{r.wall_seconds:.1f}",
            )
        out.print(table)


@app.command("show")
def show_command(
    run_id: str = typer.Argument(..., help="A run id (see `compd runs list`)."),
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One run's settings and summary, then a row per seed."""
    from compd_core.export import result_row, run_summary

    with _open(db) as store:
        run = store.get_run(run_id)
        results = store.load_results(run_id, details=False)
    warn_changed_files(run.pair_source(), refuse_missing=False)  # reading needs no model
    summary = run_summary(results)
    rows = [result_row(r) for r in results]
    if json_output:
        print_json({"run": run.as_dict(), "summary": summary, "seeds": rows})
        return
    strength = summarize_strength([r.trigger for r in results if r.trigger is not None])
    settings = run.settings
    time_budget = "" if settings.time_budget is None else f" or {settings.time_budget:g} s"
    max_linf = "none" if settings.max_linf is None else f"{settings.max_linf:g}"
    lines = [
        f"[bold]{run.id}[/bold]  {run.pair}  {run.strategy}  {run.status}",
        f"dataset {run.dataset}, rng seed {run.rng_seed}, created {_when(run.created)}, "
        f"wall {run.wall_seconds:.1f} s",
        f"budget {settings.max_queries} queries{time_budget} per seed, criterion "
        f"{settings.criterion.kind}, max L-inf {max_linf}{_more_criterion(settings.criterion)}",
        f"found {summary['found']} of {summary['seeds_done']} seeds "
        f"({summary['found_rate']:.0%}; {run.seed_count} planned)",
        f"median over found seeds: {_number(summary['median_queries_found'], '.0f')} queries, "
        f"L2 {_number(summary['median_l2'], '.3f')}, "
        f"L-inf {_number(summary['median_linf'], '.3f')}",
        strength.describe(),
    ]
    caveat = strength.caveat()
    if caveat:
        lines.append(f"[yellow]{caveat}[/]")
    if run.pair_spec is not None:
        lines.append(f"models: {run.pair_spec.original} vs {run.pair_spec.compressed}")
    if run.note:
        lines.append(f"note: {run.note}")
    out.print("\n".join(lines) + "\n")
    table = _table()
    for column in ("pos", "index", "label", "found", "exit", "queries", "seconds",
                   "orig→comp", "margins", "L2", "L-inf"):
        table.add_column(column, justify="left" if column in ("found", "exit") else "right")
    for row in rows:
        found = bool(row["found"])
        table.add_row(
            str(row["position"]), str(row["dataset_index"]), str(row["label"]),
            "yes" if found else "no", row["exit_reason"].lower().replace("_", " "),
            str(row["queries"]),
            f"{row['seconds']:.2f}",
            f"{row['label_original']} → {row['label_compressed']}" if found else "",
            _margins(row) if found else "",
            _number(row["l2"], ".3f"), _number(row["linf"], ".3f"),
        )
    out.print(table)




def _more_criterion(criterion: Criterion) -> str:
    """The criterion's L2 budget and margin minimums, where the run set them."""
    parts = [] if criterion.max_l2 is None else [f"max L2 {criterion.max_l2:g}"]
    if criterion.min_margin_original or criterion.min_margin_compressed:
        parts.append(f"margins at least {criterion.min_margin_original:g} (original) and "
                     f"{criterion.min_margin_compressed:g} (compressed)")
    return "".join(f", {part}" for part in parts)


def _margins(row: dict) -> str:
    """'0.80/0.50', or 'tie' for a stored trigger a tie decides (no deviation when strict)."""
    if not row["strict"]:
        return "tie"
    return f"{margin_text(row['margin_original'])}/{margin_text(row['margin_compressed'])}"


@app.command("export")
def export_command(
    run_id: str = typer.Argument(..., help="A run id (see `compd runs list`)."),
    out_dir: Path = typer.Option(..., "--out", help="Directory to write (created if missing)."),
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    formats: str = typer.Option("csv,json,png", "--format", help="Any of csv, json, png."),
    positions: str = typer.Option(
        None, "--positions", help="Only these seed positions, e.g. 0,3,7 (default: all)."
    ),
) -> None:
    """Write triggers.csv, run.json and png/ (seed, trigger, amplified difference)."""
    from compd_core.export import export_run

    chosen = None if positions is None else parse_csv_ints(positions, "--positions")
    writable_output_dir(out_dir)
    with _open(db) as store:
        warn_changed_files(store.get_run(run_id).pair_source(), refuse_missing=False)
        written = export_run(store, run_id, out_dir, set(parse_csv(formats)), chosen)
    console.print(f"wrote {len(written)} files to {out_dir}")
