"""One campaign in-process vs on Ray with 1 and 2 workers: queries/s and triggers/s as ratios,
whether every seed got the same result, and what one SQLite writer can take; then one campaign
over two pairs at once (``--second-pair``), in-process and on 2 Ray workers that share them.

    python bench/executors.py [--seeds 1000] [--budget 500] [--pair lenet5-int8-static]
                              [--second-pair lenet1-int8-static]

Each executor searches the same seeds (the campaign's rng seed), with the `compd` strategy.
The local Ray cluster is started once before the runs (its start-up is printed apart); a
run's wall time includes its workers loading their pair. The store is measured by writing the
in-process run's own results again, one commit per seed as the driver does.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from compd_core.campaign import CampaignSpec, CampaignSummary, run_campaign, run_campaigns
from compd_core.executors import InProcessExecutor, PairLoader, SearchWork, chunk_size
from compd_core.executors.ray_executor import RayExecutor, import_ray
from compd_core.search.results import SeedResult
from compd_core.search.settings import SearchSettings
from compd_core.store import Store


def campaign(spec: CampaignSpec, folder: Path, name: str, executor) -> tuple[CampaignSummary, list[SeedResult]]:
    with Store(folder / f"{name}.sqlite") as store:
        summary = run_campaign(spec, store, executor=executor)
        return summary, store.load_results(summary.run_id)


def two_pairs(specs: list[CampaignSpec], folder: Path, name: str, executor) -> tuple[CampaignSummary, list[list[SeedResult]]]:
    """Both pairs in one campaign, as one row: the campaign's wall, every run's queries and triggers."""
    with Store(folder / f"{name}.sqlite") as store:
        started = time.perf_counter()
        summaries = run_campaigns(specs, store, executor=executor)
        wall = time.perf_counter() - started
        results = [store.load_results(s.run_id) for s in summaries]
    queries = sum(s.total_queries for s in summaries)
    joint = replace(summaries[0], pair=" + ".join(s.pair for s in summaries), seeds=sum(s.seeds for s in summaries),
                    found=sum(s.found for s in summaries), total_queries=queries, wall_seconds=wall,
                    queries_per_second=queries / wall)
    return joint, results


def same_results(a: list[SeedResult], b: list[SeedResult]) -> int:
    """How many seeds ended differently (queries, exit, or trigger image)."""
    theirs = {r.seed.position: r for r in b}
    differing = 0
    for mine in a:
        other = theirs.get(mine.seed.position)
        same = other is not None and (mine.queries, mine.exit_reason) == (other.queries, other.exit_reason) and (
            (mine.trigger is None and other.trigger is None)
            or (mine.trigger is not None and other.trigger is not None
                and torch.equal(mine.trigger.image, other.trigger.image)))
        differing += not same
    return differing


def store_writes_per_second(results: list[SeedResult], spec: CampaignSpec, folder: Path) -> float:
    with Store(folder / "writes.sqlite") as store:
        run_id = store.create_run(spec.pair, spec.strategy, spec.settings, len(results),
                                  spec.rng_seed, spec.dataset)
        started = time.perf_counter()
        for result in results:
            store.save_result(run_id, result)
        return len(results) / (time.perf_counter() - started)


def print_table(rows: list[tuple[str, CampaignSummary, int]]) -> None:
    """Rows as a Markdown table, each against the first (in-process) row."""
    base = rows[0][1]
    print("| executor | wall s | queries | queries/s | triggers | triggers/s | x in-process | seeds differing |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s, differing in rows:
        print(f"| {name} | {s.wall_seconds:.1f} | {s.total_queries:,} | {s.queries_per_second:,.0f} | "
              f"{s.found} | {s.found / s.wall_seconds:.2f} | "
              f"{s.queries_per_second / base.queries_per_second:.2f} | {differing} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--pair", default="lenet5-int8-static")
    parser.add_argument("--second-pair", default="lenet1-int8-static",
                        help="the second pair of the two-pair campaign; 'none' skips that part")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = CampaignSpec(args.pair, "compd", seeds=args.seeds,
                        settings=SearchSettings(max_queries=args.budget), rng_seed=0)
    ray = import_ray()
    rows: list[tuple[str, CampaignSummary, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base, reference = campaign(spec, folder, "inprocess", InProcessExecutor())
        rows.append(("in-process", base, 0))
        two = args.second_pair != "none"
        specs = [spec, replace(spec, pair=args.second_pair)]
        if two:
            both_base, both_reference = two_pairs(specs, folder, "both-inprocess", InProcessExecutor())
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        try:
            for workers in (1, 2):
                summary, results = campaign(spec, folder, f"ray{workers}", RayExecutor(workers=workers))
                rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}", summary,
                             same_results(results, reference)))
            if two:
                both, both_results = two_pairs(specs, folder, "both-ray", RayExecutor(workers=2))
        finally:
            ray.shutdown()
        writes = store_writes_per_second(reference, spec, folder)
    work = SearchWork(PairLoader(spec.source), spec.strategy, spec.settings, spec.rng_seed)
    per_result = statistics.fmean(len(pickle.dumps(r)) for r in reference)
    seed_bytes = statistics.fmean(len(pickle.dumps(r.seed)) for r in reference)
    print(f"{args.seeds} seeds of {args.pair}, compd, budget {args.budget} queries per seed, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}\n")
    print_table(rows)
    if two:
        print(f"\nTwo pairs in one campaign ({args.pair} + {args.second_pair}, {args.seeds} seeds each):\n")
        differing = sum(same_results(mine, theirs) for mine, theirs in zip(both_results, both_reference))
        print_table([("in-process, 2 pairs", both_base, 0), ("Ray, 2 workers, 2 pairs", both, differing)])
    print(f"\nRay start-up (local, 2 CPUs): {ray_start:.1f} s, not in the walls above")
    print(f"sent per task: {len(pickle.dumps(work))} bytes of work + {seed_bytes:,.0f} bytes per seed "
          f"(chunk of {chunk_size(args.seeds, 2)} seeds at 2 workers)")
    print(f"sent back: {per_result:,.0f} bytes per seed result on average (trigger, chain, trace)")
    print(f"store: {writes:,.0f} seed results/s written, one commit each "
          f"(in-process found {base.found / base.wall_seconds:.1f} results/s... "
          f"searched {base.seeds / base.wall_seconds:.1f} seeds/s)")


if __name__ == "__main__":
    main()
