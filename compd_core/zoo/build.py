"""Rebuild the whole zoo deterministically: train the originals, compress, measure, write.

Same seed, same machine type -> the same weights. Each pair is measured on the MNIST test
split right after it is made, and the manifest is written last (atomically).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from compd_core.compress import RECIPES, TFLITE_RECIPES
from compd_core.compress.training import TrainSettings, train
from compd_core.data.mnist import load_mnist
from compd_core.models.adapters import TorchClassifier
from compd_core.models.architectures import seeded_architecture
from compd_core.models.evaluate import evaluate_pair, latency_ms
from compd_core.models.pair import ModelPair
from compd_core.data.dataset import ImageDataset
from compd_core.zoo.loading import INPUT_SHAPE, _info, classifier_for, load_original
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry, read_manifest, write_manifest
from compd_core.zoo.platform import build_platform


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
            say(f"making {arch}-{kind}")
            entry = _make_pair(model, original, arch, kind, arch_dir, train_set, test_set,
                               latency_original, seed)
            pair_entries.append(entry)
            say(
                f"{entry.id}: accuracy {entry.accuracy_compressed:.4f} "
                f"(original {entry.accuracy_original:.4f}), {entry.disagreements} disagreements"
            )
    converted_originals, converted_pairs = _converted_entries(directory)
    manifest = Manifest(originals={**original_entries, **converted_originals},
                        pairs=pair_entries + converted_pairs, seed=seed,
                        platform={**_previous_platform(directory), **build_platform()})
    write_manifest(directory, manifest)
    return manifest


def _converted_entries(directory: Path) -> tuple[dict[str, OriginalEntry], list[PairEntry]]:
    """The TFLite pairs already in ``directory`` (TensorFlow made them; this build cannot), so
    that rebuilding the PyTorch pairs keeps them."""
    if not (directory / "manifest.json").is_file():
        return {}, []
    old = read_manifest(directory)
    pairs = [p for p in old.pairs if p.compression in TFLITE_RECIPES]
    return {p.original: old.originals[p.original] for p in pairs}, pairs


def _previous_platform(directory: Path) -> dict:
    return read_manifest(directory).platform if (directory / "manifest.json").is_file() else {}


def _make_pair(
    model: torch.nn.Module,
    original: TorchClassifier,
    arch: str,
    kind: str,
    arch_dir: Path,
    train_set: ImageDataset,
    test_set: ImageDataset,
    latency_original: float,
    seed: int,
) -> PairEntry:
    """Compress ``model`` one way, store it beside its original and measure the stored files."""
    pair_id = f"{arch}-{kind}"
    recipe = RECIPES[kind]
    compressed = recipe.compress(model, arch, train_set.images, train_set.labels, seed)
    files = recipe.save(compressed, arch_dir, kind)
    size = (arch_dir / files["model"]).stat().st_size
    reloaded = recipe.load(_student_arch(arch, kind), {r: arch_dir / f for r, f in files.items()})
    compressed_model = classifier_for(reloaded, pair_id, size)
    evaluation = evaluate_pair(ModelPair(original, compressed_model), test_set)
    return PairEntry(
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


def remake_pairs(directory: Path, kinds: tuple[str, ...], on_progress: Progress | None = None) -> Manifest:
    """Recompress only ``kinds`` from the originals already stored in ``directory``, keeping
    every other pair's files and numbers (when one recipe changes, the rest need no retraining)."""
    say = on_progress or (lambda message: _log.info(message))
    manifest = read_manifest(directory)
    train_set, test_set = load_mnist("train"), load_mnist("test")
    remade: dict[str, PairEntry] = {}
    for name, original_entry in manifest.originals.items():
        if original_entry.format != "torch":
            continue  # converted pairs are remade by compd_core.zoo.tflite_build
        original = load_original(directory, name)
        for kind in kinds:
            say(f"making {name}-{kind}")
            old = next(p for p in manifest.pairs if p.id == f"{name}-{kind}")
            remade[old.id] = _make_pair(original.module, original, name, kind,
                                        directory / Path(original_entry.file).parent,
                                        train_set, test_set, old.latency_ms_original, manifest.seed)
    pairs = [remade.get(p.id, p) for p in manifest.pairs]
    updated = replace(manifest, pairs=pairs, platform=build_platform())
    write_manifest(directory, updated)
    return updated
