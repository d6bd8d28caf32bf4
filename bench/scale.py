"""The engine's speed against the pair's own: queries per second of a ``compd`` search over the
raw batched throughput of the same pair, for LeNet-5 on 1x28x28 digits, the Fashion-MNIST
ResNet (int8) on 1x28x28 clothes and a MobileNetV2-sized network on 3x224x224 photos, in one run.

    nice python bench/scale.py [--threads 1] [--lenet-seeds 100] [--lenet-budget 200]
                               [--fashion-seeds 50] [--fashion-budget 200]
                               [--mobilenet-seeds 16] [--mobilenet-budget 25] [--skip-mobilenet]

Raw throughput is ``pair.predict`` (both models) at batch sizes 1, 4, 16, 64 and
``pair.max_batch``, best of 3 repeats each; the best of them is the most queries per second the
pair can give. The engine's rate is a ``compd`` search's queries over its wall time, everything
included (mutations, criterion, shrinking, bookkeeping). MobileNetV2 (torchvision, 3.5 M parameters) has random weights, made under a fixed
seed: enough for a speed measurement, not for a claim about deviations. Its "compressed" copy is
the project's bfloat16 recipe; its seeds are 224x224 crops of scikit-learn's two bundled photos
(``china`` and ``flower``, CC BY 2.0), labelled by the original model.
"""

from __future__ import annotations

import compd_core._torchvision_compat  # noqa: F401  (must precede torchvision)

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_sample_images
from torchvision.models import mobilenet_v2

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.compress import BFloat16
from compd_core.data import load_fashion_mnist, load_mnist
from compd_core.data.dataset import ImageDataset
from compd_core.models.adapters import TorchClassifier
from compd_core.models.base import ModelInfo
from compd_core.models.pair import ModelPair
from compd_core.search.settings import SearchSettings
from compd_core.zoo import load_pair

MOBILENET_CLASSES = 1000


def mobilenet_pair(seed: int) -> ModelPair:
    """MobileNetV2 with random weights drawn under ``seed`` and its bfloat16 copy."""
    with torch.random.fork_rng():  # torchvision initialises from the global generator
        torch.manual_seed(seed)
        original = mobilenet_v2(weights=None, num_classes=MOBILENET_CLASSES).eval()
    compressed = BFloat16().compress(original, "mobilenet_v2", None, None, seed)
    names = tuple(str(k) for k in range(MOBILENET_CLASSES))
    shape = (3, 224, 224)
    return ModelPair(
        TorchClassifier(original, ModelInfo("mobilenet_v2", shape, MOBILENET_CLASSES, names, "torch")),
        TorchClassifier(compressed.served, ModelInfo("mobilenet_v2-bf16", shape, MOBILENET_CLASSES,
                                                     names, "torch"), standin=compressed.standin),
        name="mobilenet_v2-bf16",
    )


def photo_crops(count: int, size: int = 224) -> torch.Tensor:
    """``count`` size x size crops spread over scikit-learn's two photos, (N, 3, size, size)."""
    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1).float() / 255.0
              for p in load_sample_images().images]
    crops = []
    per_photo = -(-count // len(photos))
    for photo in photos:
        h, w = photo.shape[1:]
        for k in range(per_photo):
            top = (h - size) * k // max(1, per_photo - 1)
            left = (w - size) * ((k * 3) % per_photo) // max(1, per_photo - 1)
            crops.append(photo[:, top : top + size, left : left + size])
    return torch.stack(crops[:count])


def labelled_by_original(pair: ModelPair, images: torch.Tensor, name: str) -> ImageDataset:
    labels = pair.predict(images).labels_original
    return ImageDataset(images, labels, pair.class_names, name)


def raw_throughput(pair: ModelPair, images: torch.Tensor, batch: int, repeats: int = 3) -> float:
    """Images per second through both models at one batch size, best of ``repeats``."""
    x = images[torch.arange(batch) % len(images)]
    pair.predict(x[:2])  # warm up the kernels
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        pair.predict(x)
        best = min(best, time.perf_counter() - started)
    return batch / best


def measure(name: str, pair: ModelPair, dataset: ImageDataset, seeds: int, budget: int) -> dict:
    spec = CampaignSpec(pair=pair.name, strategy="compd", seeds=seeds,
                        settings=SearchSettings(max_queries=budget), dataset=dataset.name)
    summary = run_campaign(spec, pair=pair, dataset=dataset)
    by_batch = {b: raw_throughput(pair, dataset.images, b)
                for b in sorted({1, 4, 16, 64, pair.max_batch}) if b <= pair.max_batch}
    best = max(by_batch, key=by_batch.__getitem__)
    return {
        "name": name, "input": "x".join(map(str, pair.input_shape)), "max_batch": pair.max_batch,
        "raw": by_batch[best], "raw_batch": best, "by_batch": by_batch,
        "engine": summary.total_queries / summary.wall_seconds, "queries": summary.total_queries,
        "seconds": summary.wall_seconds, "found": f"{summary.found}/{summary.seeds}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lenet-seeds", type=int, default=100)
    parser.add_argument("--lenet-budget", type=int, default=200)
    parser.add_argument("--fashion-seeds", type=int, default=50)
    parser.add_argument("--fashion-budget", type=int, default=200)
    parser.add_argument("--mobilenet-seeds", type=int, default=16)
    parser.add_argument("--mobilenet-budget", type=int, default=25)
    parser.add_argument("--skip-mobilenet", action="store_true",
                        help="measure only the 28x28 pairs (a few minutes less)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    lenet = load_pair("lenet5-int8-static")
    rows.append(measure("lenet5-int8-static", lenet, load_mnist("test"), args.lenet_seeds,
                        args.lenet_budget))
    fashion = load_pair("resnet-fashion-int8-static")
    rows.append(measure("resnet-fashion-int8-static", fashion, load_fashion_mnist("test"),
                        args.fashion_seeds, args.fashion_budget))
    if not args.skip_mobilenet:
        big = mobilenet_pair(seed=0)
        crops = labelled_by_original(big, photo_crops(2 * args.mobilenet_seeds), "photo-crops")
        rows.append(measure("mobilenet_v2-bf16 (random weights)", big, crops,
                            args.mobilenet_seeds, args.mobilenet_budget))

    print(f"threads: {args.threads}")
    print("| pair | input | max_batch | raw q/s (best batch) | engine q/s | engine / raw | "
          "queries | seconds | found |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['input']} | {r['max_batch']} | {r['raw']:.0f} "
              f"({r['raw_batch']}) | {r['engine']:.0f} | {r['engine'] / r['raw']:.2f} | "
              f"{r['queries']} | {r['seconds']:.1f} | {r['found']} |")
    print("\nraw q/s of both models by batch size (best of 3):")
    for r in rows:
        print(f"- {r['name']}: " + ", ".join(f"{b}: {q:.0f}" for b, q in r["by_batch"].items()))


if __name__ == "__main__":
    main()
