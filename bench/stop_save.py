"""How long Stop spends saving a campaign's unfinished seeds: one transaction per seed vs one
transaction for all of them (``Store.save_results``), in the same run, as a ratio.

    python bench/stop_save.py [--seeds 200] [--repeats 5]

The results are what a stopped ``compd`` search hands back: real MNIST seeds, each with a
chain of 8 stored images and a 200-step fitness trace, exit reason STOPPED.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from compd_core.data import load_mnist
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult
from compd_core.search.settings import SearchSettings
from compd_core.store import Store


def stopped_results(count: int) -> list[SeedResult]:
    images = load_mnist("test").images[:count]
    generator = torch.Generator().manual_seed(0)
    results = []
    for position, image in enumerate(images):
        steps = []
        current = image
        for step in range(8):
            noise = torch.randint(-3, 4, image.shape, generator=generator) / 255.0
            current = (current + noise).clamp(0, 1)
            steps.append(ChainStep(step * 10, "pixel_change", {"k": 3}, 0.1 * step, 7, 7, current))
        results.append(SeedResult(Seed(position, position, image, 7, 7), ExitReason.STOPPED,
                                  queries=80, iterations=8, seconds=0.3, trigger=None,
                                  chain=steps, trace=[0.5] * 200))
    return results


def timed(save, results: list[SeedResult], folder: Path, name: str) -> float:
    with Store(folder / f"{name}.sqlite") as store:
        run_id = store.create_run("lenet5-int8-static", "compd", SearchSettings(), len(results), 0, "mnist")
        started = time.perf_counter()
        save(store, run_id, results)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = stopped_results(args.seeds)
    each, once = [], []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(args.repeats):  # interleaved, so load on the machine hits both alike
            each.append(timed(lambda s, r, rs: [s.save_result(r, x) for x in rs], results, Path(folder), f"each{k}"))
            once.append(timed(lambda s, r, rs: s.save_results(r, rs), results, Path(folder), f"once{k}"))
    a, b = statistics.median(each), statistics.median(once)
    print(f"| saving {args.seeds} stopped seeds | median of {args.repeats} |")
    print("|---|---|")
    print(f"| one transaction per seed | {a * 1000:.0f} ms |")
    print(f"| one transaction for all (save_results) | {b * 1000:.0f} ms |")
    print(f"| ratio (all / per seed) | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
