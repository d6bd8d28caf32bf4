"""Benchmark: every strategy on the same class-balanced seeds of the zoo's pairs, in one run.

    python bench/search.py                       # the full benchmark (writes bench/RESULTS.md)
    python bench/search.py --seeds 20 --pairs lenet5-int8-static --out /tmp/quick.md
    python bench/search.py --speed-only          # dflare's iterations/s against a batch-1 forward
                                                 # (printed; written only where --out says)

Every strategy uses the strict criterion (a tie is never a deviation). ``compd`` searches
within the default distance budget (``DEFAULT_MAX_LINF``); the baselines search without one,
as published. Per pair and strategy: success, median queries, the paired query ratio to
dflare (median over the seeds both solved), median L2 and its ratios, the share of triggers
with both margins >= 0.2, the triggers that fail when replayed through the pair (must be 0),
and seconds per trigger.
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
from compd_core.mutations import get_operators
from compd_core.search.seeds import select_seeds
from compd_core.search.events import Step
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.zoo import load_pair

PAIRS = ["lenet5-int8-static", "lenet5-int8-qat", "lenet5-prune90", "lenet5-distilled",
         "lenet5-onnx-int8", "lenet1-int8-static"]
STRONG = 0.2  # both margins at least this: the original clearly sure, the compressed clearly not
# (label, strategy, criterion kind, bounded by the default distance budget)
RUNS = [("compd", "compd", "valid", True), ("compd-close", "compd-close", "valid", True),
        ("dflare", "dflare", "valid", False), ("dflare (any)", "dflare", "any", False),
        ("diffchaser", "diffchaser", "valid", False), ("random", "random", "valid", False),
        ("gradient", "gradient", "valid", False)]
DEFAULT_RUNS = ["compd", "dflare", "diffchaser", "gradient", "random"]


@dataclass
class Row:
    label: str
    summary: CampaignSummary
    solved: dict[int, tuple[int, float]]  # seed position -> (queries, L2) of its trigger
    strong: int  # triggers with both margins >= STRONG
    replay_failures: int  # triggers that do not meet the criterion, or tie, when replayed
    first_found: dict[int, int]  # seed position -> queries spent when it first deviated


def paired(row: Row, reference: Row | None, field: int) -> str:
    """Median ratio over the seeds both strategies solved: no survivor bias."""
    if reference is None:
        return "–"
    both = sorted(set(row.solved) & set(reference.solved))
    if not both:
        return "–"
    mine = statistics.median(row.solved[s][field] for s in both)
    theirs = statistics.median(reference.solved[s][field] for s in both)
    return f"{mine / theirs:.2f} (n={len(both)})" if theirs else "–"


def rate(call, seconds: float) -> float:
    """Calls per second of ``call`` over about ``seconds``."""
    call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - start)


@dataclass
class Speed:
    """dflare's speed on one pair against a batch-1 forward pass of both its models."""

    forward: float  # forward passes per second, best round (wall clock)
    iterations: float  # dflare iterations per second, best round (wall clock)
    ratio_wall: float  # median over rounds of forward rate / iteration rate (wall clock)
    ratio_cpu: float  # the same in the process's CPU time, which waiting for a core leaves out
    floor_wall: float  # median over rounds of forward rate / bare-loop rate (wall clock)


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def dflare_speed(pair_id: str, rounds: int = 5) -> Speed:
    """dflare's cost per iteration in batch-1 forward passes of the pair.

    Each round times the forward pass for about a second, then dflare on 10 seeds (300
    queries each, strict criterion, no distance budget), then the floor, back to back, so all
    three see the same machine load; the ratios are taken per round and the median reported.
    The forward pass is both models' own ``predict_proba`` on one image in a tight loop,
    without ``ModelPair``. The floor is the least any DFLARE loop on these models does per
    iteration: one of dflare's operators on a seed, then both models' ``predict_proba`` on the
    mutant, nothing else (no operator choice, acceptance, archive or bookkeeping). Code that
    runs between two forward passes evicts their warm caches, so the floor is above 1.
    """
    test = load_mnist("test")
    pair = load_pair(pair_id)
    image = test.images[:1]
    seeds = select_seeds(pair, test, 10, seed=0)
    settings = _unbounded(SearchSettings(max_queries=300, criterion="valid"))
    forward_best, iterations_best, ratios_wall, ratios_cpu, floors = 0.0, 0.0, [], [], []
    operators = get_operators(settings.operators)
    generator = torch.Generator().manual_seed(0)
    for _ in range(rounds):
        passes, start = 0, _clocks()
        while time.perf_counter() - start[0] < 1.0:
            pair.original.predict_proba(image)
            pair.compressed.predict_proba(image)
            passes += 1
        middle = _clocks()
        context = SearchContext(pair, settings, rng_seed=0)
        done = sum(r.iterations for r in get_strategy("dflare").run(context, seeds))
        end = _clocks()
        bare = 0
        while time.perf_counter() - end[0] < 1.0:
            seed_image = seeds[bare % len(seeds)].image[None]
            mutant = operators[bare % len(operators)](seed_image, generator).images
            pair.original.predict_proba(mutant)
            pair.compressed.predict_proba(mutant)
            bare += 1
        bare_wall = bare / (time.perf_counter() - end[0])
        forward_wall, forward_cpu = (passes / (b - a) for a, b in zip(start, middle))
        floors.append(forward_wall / bare_wall)
        iterations_wall, iterations_cpu = (done / (b - a) for a, b in zip(middle, end))
        forward_best = max(forward_best, forward_wall)
        iterations_best = max(iterations_best, iterations_wall)
        ratios_wall.append(forward_wall / iterations_wall)
        ratios_cpu.append(forward_cpu / iterations_cpu)
    return Speed(forward_best, iterations_best, statistics.median(ratios_wall),
                 statistics.median(ratios_cpu), statistics.median(floors))


def _unbounded(settings: SearchSettings) -> SearchSettings:
    """The same settings without a distance budget (the baselines' published behaviour)."""
    from dataclasses import replace
    return replace(settings, criterion=replace(settings.criterion, max_linf=None))


def raw_throughput(pair: ModelPair, images: torch.Tensor, seconds: float = 2.0) -> float:
    """Queries per second of plain batched prediction at batch 256."""
    batch = images[:256]
    return rate(lambda: pair.predict(batch), seconds) * len(batch)


def replay_failures(pair: ModelPair, settings: SearchSettings, results) -> int:
    """Triggers that do not meet the criterion, or tie in either model, when run again."""
    found = [r for r in results if r.found]
    if not found:
        return 0
    images = torch.stack([r.trigger.image for r in found])
    seeds = torch.stack([r.seed.image for r in found])
    labels = torch.tensor([r.seed.label for r in found])
    pred = pair.predict(images)
    met = settings.criterion.met(pred.original, pred.compressed, labels, images, seeds)
    m_o, m_c = settings.criterion.strength(pred.original, pred.compressed, labels)
    return int((~met | (m_o <= 0) | (m_c <= 0)).sum())


def run_one(pair_id: str, strategy: str, kind: str, bounded: bool, seeds, budget: int,
            time_budget: float | None) -> Row:
    pair = load_pair(pair_id)
    settings = SearchSettings(max_queries=budget, time_budget=time_budget, criterion=kind)
    if not bounded:
        settings = _unbounded(settings)
    first_found: dict[int, int] = {}

    def note_first_find(event) -> None:
        if isinstance(event, Step) and event.found:
            first_found.setdefault(event.position, event.queries)

    context = SearchContext(pair, settings, rng_seed=0, emit=note_first_find)
    strategy_object = get_strategy(strategy)
    if strategy_object.needs_white_box:
        pair.white_box()
    start = time.perf_counter()
    results = list(strategy_object.run(context, seeds))
    wall = time.perf_counter() - start
    solved = {r.seed.position: (r.queries, r.trigger.l2) for r in results if r.found}
    strong = sum(min(r.trigger.margins) >= STRONG for r in results if r.found)
    summary = summarize(results, wall, run_id=None, pair=pair_id, strategy=strategy)
    return Row("", summary, solved, strong, replay_failures(pair, settings, results), first_found)


def first_find_median(row: Row) -> str:
    """Queries until the first strict deviation, before any shrinking (solved seeds only)."""
    solved = [row.first_found[p] for p in row.solved if p in row.first_found]
    return fmt(statistics.median(solved), 0) if solved else "–"


def fmt(value, digits=2):
    return "–" if value is None else f"{value:,.{digits}f}"


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
        "| strategy | success | median q | q ratio | paired q ratio | median q to first deviation "
        "| median L2 | L2 ratio | paired L2 ratio "
        "| median L-inf | both margins >= 0.2 | replay failures | s / trigger | queries/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary
        lines.append(
            f"| {row.label} | {s.success_rate:.0%} ({s.found}/{s.seeds}) | {fmt(s.median_queries, 0)} | "
            f"{ratio(s.median_queries, reference and reference.median_queries)} | "
            f"{paired(row, reference_row, 0)} | {first_find_median(row)} | {fmt(s.median_l2)} | "
            f"{ratio(s.median_l2, reference and reference.median_l2)} | {paired(row, reference_row, 1)} | "
            f"{fmt(s.median_linf)} | {row.strong / s.found if s.found else 0:.0%} ({row.strong}) | "
            f"{row.replay_failures} | {fmt(s.seconds_per_trigger, 3)} | {fmt(s.queries_per_second, 0)} |"
        )
    return lines + [""]


def speed_lines(pairs: list[str]) -> list[str]:
    lines = ["| pair | batch-1 forward passes/s | dflare iterations/s | cost ratio, wall clock "
             "| cost ratio, CPU time | floor: operator + both models |", "|---|---|---|---|---|---|"]
    for pair_id in pairs:
        speed = dflare_speed(pair_id)
        lines.append(f"| {pair_id} | {speed.forward:,.0f} | {speed.iterations:,.0f} | "
                     f"{speed.ratio_wall:.2f} | {speed.ratio_cpu:.2f} | {speed.floor_wall:.2f} |")
    return lines + ["", "Cost ratio: one dflare iteration in batch-1 forward passes of the pair "
                    "(median over 5 rounds). Floor: one operator call on a seed and both models' "
                    "forward pass on the mutant, nothing else, in the same units: what any "
                    "DFLARE loop on these models costs at least."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=PAIRS)
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_RUNS,
                        help=f"labels among: {', '.join(label for label, *_ in RUNS)}")
    parser.add_argument("--seeds", type=int, default=100, help="class-balanced: a tenth per class")
    parser.add_argument("--seed-set", type=int, default=0,
                        help="which class-balanced seeds (select_seeds' seed); the tables use 0")
    parser.add_argument("--budget", type=int, default=10_000, help="queries per seed for compd")
    parser.add_argument("--baseline-budget", type=int, default=1_000,
                        help="queries per seed for dflare, diffchaser and random")
    parser.add_argument("--gradient-budget", type=int, default=200,
                        help="queries per seed for gradient (20 starts of CompD's 10 steps)")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds per seed")
    parser.add_argument("--speed-only", action="store_true", help="only dflare's speed table")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the tables go (default: bench/RESULTS.md for the full "
                             "benchmark; --speed-only prints its table and writes only here)")
    args = parser.parse_args()
    header = [
        f"Command: `python {' '.join(['bench/search.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
    ]
    if args.speed_only:
        lines = header + speed_lines(args.pairs)
        if args.out is not None:
            args.out.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    args.out = args.out or Path(__file__).with_name("RESULTS.md")
    test = load_mnist("test")
    lines = header + [
        f"{args.seeds} class-balanced seeds per pair (seed set {args.seed_set}, the same for every "
        "strategy), strict criterion (ties never count; the original keeps the seed's label). "
        "compd searches within "
        "the default distance budget; the baselines without one. Query budget per seed: "
        f"{args.budget:,} for compd, {args.gradient_budget:,} for gradient, "
        f"{args.baseline_budget:,} for the others. Ratios are to dflare: below 1 is better.",
        "",
        "Medians are over the seeds a strategy solved; 'paired' ratios are medians over the seeds "
        "both it and dflare solved (n of them). 'replay failures' counts triggers that do not meet "
        "the criterion, or tie, when run through the pair again.",
        "",
    ]
    labels = {label: (strategy, kind, bounded) for label, strategy, kind, bounded in RUNS}
    for pair_id in args.pairs:
        pair = load_pair(pair_id)
        seeds = select_seeds(pair, test, args.seeds, seed=args.seed_set, order="balanced")
        ceiling = raw_throughput(pair, test.images)
        rows = []
        for label in args.strategies:
            strategy, kind, bounded = labels[label]
            budget = (args.budget if strategy.startswith("compd")
                      else args.gradient_budget if strategy == "gradient" else args.baseline_budget)
            try:
                row = run_one(pair_id, strategy, kind, bounded, seeds, budget, args.time_budget)
            except WhiteBoxRequiredError:
                continue
            row.label = label
            rows.append(row)
            print(f"{pair_id} {label}: {row.summary.found}/{row.summary.seeds} in "
                  f"{row.summary.wall_seconds:.1f} s", file=sys.stderr, flush=True)
            # Written after every strategy: the rows finished so far survive a killed run.
            args.out.write_text("\n".join(lines + table(pair_id, rows, ceiling)) + "\n")
        lines += table(pair_id, rows, ceiling)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
