"""Rebuild the whole zoo deterministically: train the originals, compress, measure, write.

Same seed, same machine type -> the same weights. Each pair is measured on the MNIST test
split right after it is made, and the manifest is written last (atomically).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from compd_core.compress import RECIPES
from compd_core.compress.training import TrainSettings, train
from compd_core.data.mnist import load_mnist
from compd_core.models.adapters import TorchClassifier
from compd_core.models.architectures import seeded_architecture
from compd_core.models.evaluate import evaluate_pair, latency_ms
from compd_core.models.pair import ModelPair
from compd_core.zoo.loading import INPUT_SHAPE, _info, classifier_for
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry, write_manifest


_log = logging.getLogger(__name__)
ORIGINALS = ("lenet5", "lenet1")
Progress = Callable[[str], None]


def _student_arch(arch: str, kind: str) -> str:
    return f"{arch}-student" if kind == "distilled" else arch


def build_zoo(
    directory: Path,
    originals: tuple[str, ...] = ORIGINALS,
    kinds: tuple[str, ...] = tuple(RECIPES),
    seed: int = 0,
    on_progress: Progress | None = None,
) -> Manifest:
    """Train each original, make every compressed variant, measure and store them.

    Runs on one torch thread: float sums then happen in one order, so the same seed gives
    bit-identical weights on any machine, and a busy machine does not stall the build.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(directory, originals, kinds, seed, on_progress)
    finally:
        torch.set_num_threads(threads)


def _build(
    directory: Path,
    originals: tuple[str, ...],
    kinds: tuple[str, ...],
    seed: int,
    on_progress: Progress | None,
) -> Manifest:
    torch.manual_seed(seed)  # nothing should draw from it; fixed in case a library does
    say = on_progress or (lambda message: _log.info(message))
    train_set, test_set = load_mnist("train"), load_mnist("test")
    original_entries: dict[str, OriginalEntry] = {}
    pair_entries: list[PairEntry] = []
    for arch in originals:
        say(f"training {arch}")
        model = seeded_architecture(arch, seed)
        train(model, train_set.images, train_set.labels, TrainSettings(seed=seed))
        arch_dir = directory / arch
        arch_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), arch_dir / "original.pt")
        size = (arch_dir / "original.pt").stat().st_size
        original = TorchClassifier(model, _info(arch, "torch", size))
        original_entries[arch] = OriginalEntry(
            name=arch,
            arch=arch,
            file=f"{arch}/original.pt",
            accuracy=float((original.predict_proba(test_set.images).argmax(1) == test_set.labels).float().mean()),
            size_bytes=size,
            parameters=sum(p.numel() for p in model.parameters()),
        )
        latency_original = latency_ms(original, INPUT_SHAPE)
        for kind in kinds:
            pair_id = f"{arch}-{kind}"
            say(f"making {pair_id}")
            recipe = RECIPES[kind]
            compressed = recipe.compress(model, arch, train_set.images, train_set.labels, seed)
            files = recipe.save(compressed, arch_dir, kind)
            size = (arch_dir / files["model"]).stat().st_size
            reloaded = recipe.load(
                _student_arch(arch, kind), {r: arch_dir / f for r, f in files.items()}
            )
            compressed_model = classifier_for(reloaded, pair_id, size)
            evaluation = evaluate_pair(ModelPair(original, compressed_model), test_set)
            pair_entries.append(
                PairEntry(
                    id=pair_id,
                    original=arch,
                    compression=kind,
                    description=recipe.description,
                    arch=_student_arch(arch, kind),
                    files={r: f"{arch}/{f}" for r, f in files.items()},
                    accuracy_original=evaluation.accuracy_original,
                    accuracy_compressed=evaluation.accuracy_compressed,
                    disagreements=evaluation.disagreements,
                    size_bytes=size,
                    latency_ms_original=latency_original,
                    latency_ms_compressed=latency_ms(compressed_model, INPUT_SHAPE),
                    white_box=recipe.white_box,
                )
            )
            say(
                f"{pair_id}: accuracy {evaluation.accuracy_compressed:.4f} "
                f"(original {evaluation.accuracy_original:.4f}), "
                f"{evaluation.disagreements} disagreements"
            )
    manifest = Manifest(originals=original_entries, pairs=pair_entries, seed=seed)
    write_manifest(directory, manifest)
    return manifest
