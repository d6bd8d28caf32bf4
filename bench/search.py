"""Benchmark: every strategy on the same seeds of several zoo pairs, in one run.

    python bench/search.py                       # the full benchmark (writes bench/RESULTS.md)
    python bench/search.py --seeds 20 --pairs lenet5-int8-static --out /tmp/quick.md

Reports per pair and strategy: success rate, median and mean queries per trigger, median L2
and L-inf distance of triggers, seconds per trigger (the run's wall-clock / triggers found),
median seconds per seed, queries per second; each strategy's ratios to ``dflare``; and the
pair's raw batched throughput (queries per second at batch 256), the ceiling for any strategy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from compd_core.campaign import CampaignSummary, summarize
from compd_core.data import load_mnist
from compd_core.errors import WhiteBoxRequiredError
from compd_core.models.pair import ModelPair
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.zoo import load_pair

PAIRS = ["lenet5-int8-static", "lenet5-int8-qat", "lenet5-prune90", "lenet5-distilled",
         "lenet5-onnx-int8"]
# (label, strategy, criterion): dflare also runs under its own published criterion.
RUNS = [("compd", "compd", "valid"), ("compd-close", "compd-close", "valid"),
        ("dflare", "dflare", "valid"),
        ("dflare (any)", "dflare", "any"), ("diffchaser", "diffchaser", "valid"),
        ("random", "random", "valid"), ("gradient", "gradient", "valid")]


@dataclass
class Row:
    label: str
    summary: CampaignSummary
    queries_by_seed: dict[int, int]  # queries to the trigger, for the seeds this strategy solved


def paired_ratio(row: Row, reference: Row | None) -> str:
    """Median-queries ratio over the seeds both strategies solved: no survivor bias."""
    if reference is None:
        return "–"
    both = sorted(set(row.queries_by_seed) & set(reference.queries_by_seed))
    if not both:
        return "–"
    mine = statistics.median(row.queries_by_seed[s] for s in both)
    theirs = statistics.median(reference.queries_by_seed[s] for s in both)
    return f"{mine / theirs:.2f} (n={len(both)})"


def raw_throughput(pair: ModelPair, images: torch.Tensor, seconds: float = 2.0) -> float:
    """Queries per second of plain batched prediction at batch 256."""
    batch = images[:256]
    pair.predict(batch)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        pair.predict(batch)
        count += len(batch)
    return count / (time.perf_counter() - start)


def run_one(pair_id: str, strategy: str, criterion: str, seeds, budget: int, time_budget: float | None):
    pair = load_pair(pair_id)
    settings = SearchSettings(max_queries=budget, time_budget=time_budget, criterion=criterion)
    context = SearchContext(pair, settings, rng_seed=0)
    strategy_object = get_strategy(strategy)
    if strategy_object.needs_white_box:
        pair.white_box()
    start = time.perf_counter()
    results = list(strategy_object.run(context, seeds))
    wall = time.perf_counter() - start
    solved = {r.seed.position: r.queries for r in results if r.found}
    return summarize(results, wall, run_id=None, pair=pair_id, strategy=strategy), solved


def fmt(value, digits=2, suffix=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def ratio(value, reference):
    if value is None or reference in (None, 0):
        return "–"
    return f"{value / reference:.2f}"


def table(pair_id: str, rows: list[Row], ceiling: float) -> list[str]:
    reference_row = next((r for r in rows if r.label == "dflare"), None)
    reference = reference_row.summary if reference_row else None
    lines = [
        f"### {pair_id}  (raw batched throughput: {ceiling:,.0f} queries/s at batch 256)",
        "",
        "| strategy | success | median q | mean q | median L2 | median L-inf | s / trigger | median s / seed | queries/s | q ratio | paired q ratio | s/trigger ratio | L2 ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary
        lines.append(
            f"| {row.label} | {s.success_rate:.0%} ({s.found}/{s.seeds}) | {fmt(s.median_queries, 0)} | "
            f"{fmt(s.mean_queries, 0)} | {fmt(s.median_l2)} | {fmt(s.median_linf)} | "
            f"{fmt(s.seconds_per_trigger, 3)} | {fmt(s.median_seconds, 3)} | {fmt(s.queries_per_second, 0)} | "
            f"{ratio(s.median_queries, reference and reference.median_queries)} | "
            f"{paired_ratio(row, reference_row)} | "
            f"{ratio(s.seconds_per_trigger, reference and reference.seconds_per_trigger)} | "
            f"{ratio(s.median_l2, reference and reference.median_l2)} |"
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=PAIRS)
    parser.add_argument("--strategies", nargs="+", default=[label for label, _, _ in RUNS])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=10_000, help="queries per seed")
    parser.add_argument("--baseline-budget", type=int, default=1_000,
                        help="queries per seed for dflare, diffchaser and random (over 10x dflare's median)")
    parser.add_argument("--gradient-budget", type=int, default=200,
                        help="queries per seed for gradient (20 starts of CompD's 10 steps; each costs a backward pass)")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds per seed")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args()
    test = load_mnist("test")
    lines = [
        "# Search benchmark",
        "",
        f"Command: `python {' '.join(['bench/search.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}. "
        f"{args.seeds} seeds per pair (the same seeds for every strategy), criterion 'valid' "
        f"(the original keeps the seed's label) unless marked 'any'. Query budget per seed: "
        f"{args.budget:,} for compd and compd-close, {args.gradient_budget:,} for gradient, "
        f"{args.baseline_budget:,} for the others. "
        "Ratios are to dflare (valid): below 1 is better for queries, seconds and L2.",
        "",
        "How to read it: medians of queries, L2 and seconds are over the seeds a strategy solved, "
        "so a strategy that solves only the easy seeds looks cheaper than it is; compare them "
        "together with the success rate. 's / trigger' is the run's wall-clock divided by the "
        "triggers found, the number that counts when seeds run side by side. 'paired q ratio' "
        "compares median queries on the seeds both this strategy and dflare solved (n of them), "
        "which removes that bias. All strategies of "
        "one pair run in one process, one after the other, on the same machine; timings on a "
        "busy machine move by tens of percent between runs, ratios much less.",
        "",
    ]
    for pair_id in args.pairs:
        pair = load_pair(pair_id)
        seeds = select_seeds(pair, test, args.seeds, seed=0)
        ceiling = raw_throughput(pair, test.images)
        rows = []
        for label, strategy, criterion in RUNS:
            if label not in args.strategies:
                continue
            budget = (args.budget if strategy.startswith("compd")
                      else args.gradient_budget if strategy == "gradient" else args.baseline_budget)
            try:
                summary, solved = run_one(pair_id, strategy, criterion, seeds, budget, args.time_budget)
            except WhiteBoxRequiredError:
                continue
            rows.append(Row(label, summary, solved))
            print(f"{pair_id} {label}: {summary.found}/{summary.seeds} in {summary.wall_seconds:.1f} s",
                  file=sys.stderr, flush=True)
        lines += table(pair_id, rows, ceiling)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
