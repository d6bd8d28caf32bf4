"""Benchmark: TFLite kernels, and the engine's speed on a TFLite pair against raw throughput.

    python bench/tflite.py                          # writes bench/TFLITE.md
    python bench/tflite.py --seeds 5 --out /tmp/tflite.md

1. Kernels: each zoo conversion run with TFLite's builtin kernels (what compd uses), LiteRT's
   default XNNPACK delegate and the reference kernels, on the 2,000 test digits and 2,000
   uniform-noise images: milliseconds per batch of 256, the largest probability difference to
   builtin, and how many answers (argmax) differ from builtin.
2. Engine: queries per second of a `compd` campaign (class-balanced seeds, a fixed query
   budget each) over the raw batched throughput of the same pair (images per second through
   both models, batches of 256), for the TFLite pairs and the PyTorch int8 pair beside them.
   One run, so the ratios compare like with like on one machine.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.data import load_mnist
from compd_core.data.mnist import MNIST_CLASSES
from compd_core.models.evaluate import latency_ms
from compd_core.models.tflite import KERNELS, TFLiteClassifier
from compd_core.paths import sample_models_dir
from compd_core.search.settings import SearchSettings
from compd_core.zoo import load_pair

SHAPE = (1, 28, 28)
CONVERSIONS = ("int8", "dynamic-range", "float16")
ENGINE_PAIRS = ("lenet5-tflite-int8", "lenet5-tflite-dynamic", "lenet5-tflite-float16",
                "lenet5-int8-static")


def _probabilities(model: TFLiteClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([model.predict_proba(images[i:i + 256]) for i in range(0, len(images), 256)])


def kernel_rows(images: torch.Tensor, noise: torch.Tensor) -> list[str]:
    rows = []
    for arch in ("lenet5", "lenet1"):
        for conversion in CONVERSIONS:
            path = sample_models_dir() / "tflite" / arch / f"{conversion}.tflite"
            builtin: tuple[torch.Tensor, torch.Tensor] | None = None
            for kernels in KERNELS:
                model = TFLiteClassifier(path, SHAPE, MNIST_CLASSES, kernels=kernels)
                probs = (_probabilities(model, images), _probabilities(model, noise))
                builtin = builtin or probs
                diff = max(float((p - b).abs().max()) for p, b in zip(probs, builtin))
                flips = [int((p.argmax(1) != b.argmax(1)).sum()) for p, b in zip(probs, builtin)]
                rows.append(f"| {arch} | {conversion} | {kernels} | {latency_ms(model, SHAPE):.1f} | "
                            f"{diff:.2g} | {flips[0]} | {flips[1]} |")
    return rows


def raw_throughput(pair_id: str, images: torch.Tensor, repeats: int = 3) -> float:
    """Images per second through both models of the pair, batches of 256 (best of repeats)."""
    pair = load_pair(pair_id)
    pair.predict(images[:256])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        pair.predict(images)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def engine_rows(images: torch.Tensor, seeds: int, budget: int) -> list[str]:
    rows = []
    for pair_id in ENGINE_PAIRS:
        raw = raw_throughput(pair_id, images)
        spec = CampaignSpec(pair=pair_id, strategy="compd", seeds=seeds,
                            settings=SearchSettings(max_queries=budget), rng_seed=0,
                            seed_order="balanced")
        summary = run_campaign(spec)
        rows.append(f"| {pair_id} | {raw:,.0f} | {summary.queries_per_second:,.0f} | "
                    f"{summary.queries_per_second / raw:.2f} | {summary.found}/{summary.seeds} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("TFLITE.md"))
    args = parser.parse_args()
    images = load_mnist("test").images
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(0)).mul(255).round() / 255
    lines = [
        "# TFLite kernels and engine speed on TFLite pairs",
        "",
        f"`python bench/tflite.py --seeds {args.seeds} --budget {args.budget}`; {platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, LiteRT on 1 thread.",
        "",
        "## Kernels (2,000 test digits and 2,000 uniform-noise images)",
        "",
        "| model | conversion | kernels | ms / 256 | max prob. diff to builtin | answers differing "
        "from builtin: test | noise |",
        "|---|---|---|---|---|---|---|",
        *kernel_rows(images, noise),
        "",
        f"## Engine queries/s over raw throughput (`compd`, {args.seeds} class-balanced seeds, "
        f"{args.budget} queries each)",
        "",
        "| pair | raw images/s (both models, batch 256) | engine queries/s | ratio | found |",
        "|---|---|---|---|---|",
        *engine_rows(images, args.seeds, args.budget),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
