"""What the engine's look-ahead buys: a ``compd`` search with and without it, in one run.

    OMP_NUM_THREADS=1 nice python bench/look_ahead.py [--pairs ...] [--seeds 5 20 100]
                                                      [--budget 10000] [--rounds 1]

For each pair and seed count (class-balanced MNIST test seeds, rng seed 0, the default
criterion and budget), the same search runs without look-ahead and with it, alternately
(``--rounds`` times each). Reported: wall seconds of each, their ratio, forward passes (calls
of ``pair.predict``), and images the pair evaluated against the queries the seeds spent (the
look-ahead rows that were thrown away fill pass padding). Every seed's outcome (exit reason,
queries, iterations, fitness trace, chain steps and trigger) is compared: look-ahead must not
change one.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace

import torch

from compd_core.data import load_mnist
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdParameters, CompdStrategy, SearchContext
from compd_core.zoo import load_pair

PAIRS = ["lenet5-int8-static", "lenet5-int8-qat", "lenet1-int8-static"]


def outcome(result) -> tuple:
    """Everything one seed's search produced, comparable with ``==``."""
    trigger = result.trigger
    return (result.exit_reason, result.queries, result.iterations, result.trace,
            [(s.iteration, s.operator, s.params, s.fitness, s.image.tolist()) for s in result.chain],
            None if trigger is None else (trigger.image.tolist(), trigger.probs_original.tolist(),
                                          trigger.probs_compressed.tolist()))


def search(pair, seeds, budget: int, look_ahead: bool) -> tuple[float, int, int, dict]:
    """(wall seconds, forward passes, images evaluated, outcome per seed index)."""
    defaults = CompdParameters()
    strategy = CompdStrategy(replace(defaults, engine=replace(defaults.engine, look_ahead=look_ahead)))
    passes = 0
    predict = pair.predict

    def counted(x, **kwargs):
        nonlocal passes
        passes += 1
        return predict(x, **kwargs)

    pair.predict = counted
    pair.reset_queries()
    try:
        start = time.perf_counter()
        results = list(strategy.run(SearchContext(pair, SearchSettings(max_queries=budget)), seeds))
        wall = time.perf_counter() - start
    finally:
        del pair.predict
    return wall, passes, pair.queries, {r.seed.index: outcome(r) for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=PAIRS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[5, 20, 100])
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    test = load_mnist("test")
    print(f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"thread(s); budget {args.budget} queries per seed; median of {args.rounds} round(s)\n")
    print("| pair | seeds | found | queries spent | without: s | passes | with: s | passes | "
          "images evaluated | speed-up | seeds differing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pair_id in args.pairs:
        pair = load_pair(pair_id)
        for count in args.seeds:
            seeds = select_seeds(pair, test, count, seed=0, order="balanced")
            walls: dict[bool, list[float]] = {False: [], True: []}
            runs = {}
            for _ in range(args.rounds):
                for look_ahead in (False, True):
                    wall, passes, evaluated, outcomes = search(pair, seeds, args.budget, look_ahead)
                    walls[look_ahead].append(wall)
                    runs[look_ahead] = (passes, evaluated, outcomes)
            off, on = runs[False], runs[True]
            differing = sum(off[2][i] != on[2][i] for i in off[2])
            spent = sum(o[1] for o in on[2].values())
            found = sum(o[5] is not None for o in on[2].values())
            slow, fast = statistics.median(walls[False]), statistics.median(walls[True])
            print(f"| {pair_id} | {count} | {found} | {spent:,} | {slow:.1f} | {off[0]:,} | "
                  f"{fast:.1f} | {on[0]:,} | {on[1]:,} | {slow / fast:.1f}x | {differing} |",
                  flush=True)


if __name__ == "__main__":
    main()
