"""Benchmark: the deviation profile of every LeNet-5 zoo pair, on the same class-balanced seeds.

    python bench/deviation_profile.py                                   # writes bench/PROFILE.md
    python bench/deviation_profile.py --seeds 20 --pairs lenet5-int8-static --out /tmp/quick.md

For each pair: the share of seeds with a strict deviation (the original keeps the seed's label
with a positive margin, the compressed model answers another class with a positive margin)
within each L-inf budget, searched by ``compd`` from the smallest budget up. The table is
rewritten after each pair, so a stopped run keeps the pairs it finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import torch

from compd_core.data import load_mnist
from compd_core.models.pair import ModelPair
from compd_core.search.profile import DeviationProfile, deviation_profile
from compd_core.search.results import Seed
from compd_core.search.seeds import select_seeds
from compd_core.zoo import load_pair

PAIRS = ["lenet5-int8-static", "lenet5-int8-dynamic", "lenet5-int8-qat", "lenet5-prune50",
         "lenet5-prune90", "lenet5-distilled", "lenet5-bf16", "lenet5-onnx-int8"]
BUDGETS = (2, 4, 8, 16, 32, 64, 128)


def balanced_seeds(pair: ModelPair, per_class: int, rng_seed: int) -> list[Seed]:
    """``per_class`` seeds of every class of the test split, numbered 0..N-1."""
    test = load_mnist("test")
    seeds: list[Seed] = []
    for label in range(pair.num_classes):
        of_class = test.subset(torch.nonzero(test.labels == label).flatten())
        seeds += select_seeds(pair, of_class, per_class, seed=rng_seed)
    return [dataclasses.replace(s, position=i) for i, s in enumerate(seeds)]


def table(profiles: list[tuple[DeviationProfile, float]]) -> list[str]:
    budgets = profiles[0][0].budgets
    lines = ["| pair | " + " | ".join(f"≤{b}/255" for b in budgets) + " | queries | seconds |",
             "|---|" + "---|" * (len(budgets) + 2)]
    for profile, seconds in profiles:
        cells = [f"{p.share:.0%} ({p.solved})" for p in profile.points]
        queries = sum(p.queries for p in profile.points)
        lines.append(f"| {profile.pair} | " + " | ".join(cells) + f" | {queries:,} | {seconds:.0f} |")
    return lines


def write(out: Path, args: argparse.Namespace, profiles: list[tuple[DeviationProfile, float]]) -> None:
    seeds = profiles[0][0].seeds
    text = [
        "# Deviation profiles of the LeNet-5 zoo pairs",
        "",
        f"`python bench/deviation_profile.py --seeds-per-class {args.seeds_per_class} --budget {args.budget}` "
        f"on {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}.",
        f"{seeds} class-balanced MNIST test seeds ({args.seeds_per_class} per class, rng seed "
        f"{args.rng_seed}), the same for every pair; strategy `compd`, {args.budget:,} queries per "
        "seed and budget; strict criterion (no margin minimum, ties never count).",
        "",
        "Share (count) of seeds with a strict deviation whose largest pixel change is at most the "
        "budget, in grey levels of 255. A seed solved within a budget counts for every larger one; "
        "each budget searches only the seeds the smaller ones left.",
        "",
        *table(profiles),
        "",
        *[f"- {profile.pair}: {profile.sentence()}" for profile, _ in profiles],
        "",
        "These shares are what a `compd` search finds within the query budget: lower bounds on how "
        "many seeds have a deviation that close, not exact counts. A longer or stronger search "
        "usually raises them.",
        "",
    ]
    out.write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--seeds-per-class", type=int, default=10)
    parser.add_argument("--budget", type=int, default=1_000, help="queries per seed and distance budget")
    parser.add_argument("--rng-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("PROFILE.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    profiles: list[tuple[DeviationProfile, float]] = []
    for pair_id in args.pairs.split(","):
        pair = load_pair(pair_id)
        seeds = balanced_seeds(pair, args.seeds_per_class, args.rng_seed)
        started = time.perf_counter()
        profile = deviation_profile(pair, seeds, BUDGETS, max_queries=args.budget, rng_seed=args.rng_seed)
        profiles.append((profile, time.perf_counter() - started))
        sys.stdout.write(f"{pair_id}: " + ", ".join(f"{p.budget}:{p.solved}" for p in profile.points)
                         + f" ({profiles[-1][1]:.0f} s)\n")
        sys.stdout.flush()
        write(args.out, args, profiles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
