"""How long a full characterization takes: zoo pairs, 2,000 test digits, 10 corruptions x 5.

Run from the repository root:  python -m bench.characterize [--threads 2] [--repeat 3]

Prints tables only; it asserts nothing about time (timings depend on the machine). "total s"
is wall-clock (median of the runs), "cpu s" the process's CPU time: on a machine shared with
other work, wall-clock grows while CPU time stays close to what the work itself costs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from compd_core.characterize import CORRUPTIONS, SEVERITIES, characterize
from compd_core.data import load_mnist
from compd_core.errors import UnknownPairError
from compd_core.zoo import load_pair

# Ten kinds covering every family MNIST-C and CIFAR-10-C use: noise, blur, affine, brightness and
# contrast, fog, zigzag. The costliest corruptions (glass blur, zigzag) are in on purpose.
TEN = ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "rotate",
       "brightness", "contrast", "fog", "zigzag")
PAIRS = ("lenet5-int8-static", "lenet5-prune90", "lenet1-int8-static")


def _corruption_costs(images: torch.Tensor) -> list[tuple[str, float]]:
    """Milliseconds to corrupt all images once at each severity (mean over severities)."""
    costs = []
    for name, corruption in CORRUPTIONS.items():
        start = time.perf_counter()
        for severity in SEVERITIES:
            corruption.apply(images, severity, torch.Generator().manual_seed(0))
        costs.append((name, 1000 * (time.perf_counter() - start) / len(SEVERITIES)))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pair; median reported")
    parser.add_argument("--pairs", nargs="*", default=list(PAIRS))
    parser.add_argument("--all-corruptions", action="store_true",
                        help=f"all {len(CORRUPTIONS)} corruptions instead of the ten")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mnist("test")
    names = list(CORRUPTIONS) if args.all_corruptions else list(TEN)
    cells = len(names) * len(SEVERITIES)

    print(f"threads={args.threads}  images={len(data)}  corruptions={len(names)}  "
          f"severities={len(SEVERITIES)}  cells={cells}  repeat={args.repeat}")
    header = (f"{'pair':22s} {'total s':>8s} {'min s':>7s} {'cpu s':>7s} {'corrupt s':>9s} "
              f"{'predict s':>9s} "
              f"{'AUROC s':>8s} {'clean %':>8s} {'shifted %':>9s} {'best':>8s}")
    print(header)
    print("-" * len(header))
    for pair_id in args.pairs:
        try:
            pair = load_pair(pair_id)
        except UnknownPairError as exc:
            print(f"{pair_id:22s} skipped: {exc}")
            continue
        runs, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            report = characterize(pair, data, names, SEVERITIES, seed=0)
            runs.append((time.perf_counter() - start, report))
            cpu.append(time.process_time() - start_cpu)
        totals = [t for t, _ in runs]
        middle = sorted(runs, key=lambda r: r[0])[len(runs) // 2][1]
        print(
            f"{pair_id:22s} {statistics.median(totals):8.2f} {min(totals):7.2f} "
            f"{statistics.median(cpu):7.2f} "
            f"{middle.timings['corrupt_s']:9.2f} {middle.timings['predict_s']:9.2f} "
            f"{middle.timings['indicators_s']:8.2f} {100 * middle.clean_disagreement_rate:8.2f} "
            f"{100 * middle.shifted_disagreement_rate:9.2f} {str(middle.best_indicator):>8s}"
        )

    print()
    print(f"corruption cost, {len(data)} images, mean over severities")
    for name, ms in _corruption_costs(data.images):
        print(f"  {name:15s} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
