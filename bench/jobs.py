"""A search and a characterization at once, as two dashboard sessions start them: both in the
server's process (threads), or both on Ray (the search on one worker, the characterization in
its own one-CPU actor). Each is timed alone first, on the same executor; the table gives how
much the other job slowed it, as ratios.

    python bench/jobs.py [--seeds 64] [--budget 1000] [--pair lenet5-int8-static]

The search is the `compd` strategy on the pair's own seeds; the characterization is the pair
on its test split under five corruptions at five severities. The local Ray cluster (2 CPUs)
is started once before the runs; a Ray row's walls include its workers loading their pair.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.characterize.task import CharacterizeTask
from compd_core.events import no_events
from compd_core.executors import Executor, InProcessExecutor
from compd_core.executors.ray_executor import RayExecutor, import_ray
from compd_core.pair_spec import PairSpec
from compd_core.search.settings import SearchSettings
from compd_core.store import Store

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "rotate", "brightness", "stripe")


def search(spec: CampaignSpec, folder: Path, executor: Executor, name: str) -> tuple[float, float]:
    """(wall seconds, queries/s) of one campaign."""
    with Store(folder / f"{name}.sqlite") as store:
        summary = run_campaign(spec, store, executor=executor)
    return summary.wall_seconds, summary.queries_per_second


def characterization(task: CharacterizeTask, executor: Executor) -> float:
    started = time.perf_counter()
    executor.run_job(task, no_events, threading.Event())
    return time.perf_counter() - started


def together(spec: CampaignSpec, task: CharacterizeTask, folder: Path, searcher: Executor,
             runner: Executor, name: str) -> tuple[float, float, float]:
    """(search wall, search queries/s, characterization wall) with both started at once."""
    walls: dict[str, float] = {}
    thread = threading.Thread(target=lambda: walls.setdefault("job", characterization(task, runner)))
    thread.start()
    wall, rate = search(spec, folder, searcher, name)
    thread.join()
    return wall, rate, walls["job"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--pair", default="lenet5-int8-static")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = CampaignSpec(args.pair, "compd", seeds=args.seeds,
                        settings=SearchSettings(max_queries=args.budget), rng_seed=0)
    task = CharacterizeTask((PairSpec.zoo(args.pair),), "mnist", CORRUPTIONS, (1, 2, 3, 4, 5))
    ray = import_ray()
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, searcher, runner in (("in-process (threads)", InProcessExecutor(), InProcessExecutor()),
                                        ("Ray (1 search worker + 1 job actor)", RayExecutor(workers=1),
                                         RayExecutor(workers=1))):
            key = label.split()[0]
            alone_wall, alone_rate = search(spec, folder, searcher, f"{key}-alone")
            job_alone = characterization(task, runner)
            wall, rate, job = together(spec, task, folder, searcher, runner, f"{key}-together")
            rows.append((label, alone_rate, rate, job_alone, job))
    ray.shutdown()
    print(f"{args.seeds} seeds of {args.pair}, compd, budget {args.budget}; characterization: "
          f"{len(CORRUPTIONS)} corruptions x 5 severities on the 2,000 test digits\n")
    print("| executor | search q/s alone | search q/s beside the job | x alone | "
          "job s alone | job s beside the search | x alone |")
    print("|---|---|---|---|---|---|---|")
    for label, alone_rate, rate, job_alone, job in rows:
        print(f"| {label} | {alone_rate:,.0f} | {rate:,.0f} | {rate / alone_rate:.2f} | "
              f"{job_alone:.1f} | {job:.1f} | {job_alone / job:.2f} |")
    print(f"\nRay start-up (local, 2 CPUs): {ray_start:.1f} s, not in the numbers above")


if __name__ == "__main__":
    main()
