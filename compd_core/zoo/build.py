"""Rebuild the whole zoo deterministically: train the originals, compress, measure, write.

Same seed, same machine type -> the same weights. Each pair is measured on its dataset's test
split right after it is made, and the manifest is written last (atomically). Building some
originals keeps every other entry of the manifest already there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from compd_core.compress import RECIPES
from compd_core.compress.training import TrainSettings, train
from compd_core.data.dataset import ImageDataset
from compd_core.data.fashion_mnist import load_official
from compd_core.data.named import load_named, named_classes
from compd_core.errors import ConfigError
from compd_core.models.adapters import TorchClassifier
from compd_core.models.architectures import seeded_architecture
from compd_core.models.evaluate import evaluate_pair, latency_ms
from compd_core.models.pair import ModelPair
from compd_core.zoo.loading import INPUT_SHAPE, _info, classifier_for, load_original
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry, read_manifest, write_manifest
from compd_core.zoo.platform import build_platform

_log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class OriginalPlan:
    """How one original is trained, on which shipped dataset, and which pairs are made of it."""

    dataset: str  # a shipped dataset: the pairs are measured on its test part
    training: TrainSettings = TrainSettings()
    kinds: tuple[str, ...] = tuple(RECIPES)
    # Training images the recipes calibrate and fine-tune on (None: the whole training set).
    # Fine-tuning recipes run up to 20 epochs; on a subset the build stays within minutes.
    recipe_images: int | None = None
    notes: dict[str, str] = field(default_factory=dict)


# Dynamic int8 quantizes linear layers only: in the ResNet that is the 650-weight head of 73k
# weights, so the "compressed" model would be the float one. Not made for it.
RESNET_KINDS = tuple(k for k in RECIPES if k != "int8-dynamic")
PLANS: dict[str, OriginalPlan] = {
    "lenet5": OriginalPlan("mnist"),
    "lenet1": OriginalPlan("mnist"),
    "resnet-fashion": OriginalPlan(
        "fashion-mnist",
        # Measured: 5 epochs of the 60,000 official images reach ~91% on the official test set.
        TrainSettings(epochs=5, batch_size=128, lr=3e-3, shift_pixels=0),
        RESNET_KINDS,
        recipe_images=8000,
    ),
}
ORIGINALS = tuple(PLANS)


def _student_arch(arch: str, kind: str) -> str:
    return f"{arch}-student" if kind == "distilled" else arch


def training_data(dataset: str) -> ImageDataset:
    """What an original of a shipped dataset trains on: MNIST's 8,000 shipped training digits,
    or Fashion-MNIST's 60,000 official training images (Debian's dataset-fashion-mnist)."""
    return load_official("train") if dataset == "fashion-mnist" else load_named(f"{dataset}:train")


def recipe_data(train_set: ImageDataset, plan: OriginalPlan, seed: int) -> ImageDataset:
    """The recipes' share of the training set: all of it, or a seeded random subset."""
    if plan.recipe_images is None or plan.recipe_images >= len(train_set):
        return train_set
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))
    return train_set.subset(order[: plan.recipe_images])


def build_zoo(
    directory: Path,
    originals: tuple[str, ...] = ORIGINALS,
    kinds: tuple[str, ...] | None = None,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> Manifest:
    """Train each original, make its compressed variants (``kinds``, or each plan's own),
    measure and store them; entries of other originals already in ``directory`` are kept.

    Runs on one torch thread: float sums then happen in one order, so the same seed gives
    bit-identical weights on any machine, and a busy machine does not stall the build.
    """
    unknown = [name for name in originals if name not in PLANS]
    if unknown or not originals:
        raise ConfigError(f"no original named {', '.join(unknown) or '(none given)'} to build; "
                          f"known: {', '.join(PLANS)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(directory, originals, kinds, seed, on_progress)
    finally:
        torch.set_num_threads(threads)


def _build(
    directory: Path,
    originals: tuple[str, ...],
    kinds: tuple[str, ...] | None,
    seed: int,
    on_progress: Progress | None,
) -> Manifest:
    torch.manual_seed(seed)  # nothing should draw from it; fixed in case a library does
    say = on_progress or (lambda message: _log.info(message))
    # Read every training set first: a missing package fails the build before any training.
    training = {name: training_data(name) for name in {PLANS[arch].dataset for arch in originals}}
    original_entries: dict[str, OriginalEntry] = {}
    pair_entries: dict[str, list[PairEntry]] = {}
    for arch in originals:
        plan = PLANS[arch]
        train_set = training[plan.dataset]
        test_set = load_named(plan.dataset)
        classes = named_classes(plan.dataset)
        say(f"training {arch} on {len(train_set):,} {plan.dataset} images")
        model = seeded_architecture(arch, seed)
        train(model, train_set.images, train_set.labels, replace(plan.training, seed=seed))
        arch_dir = directory / arch
        arch_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), arch_dir / "original.pt")
        size = (arch_dir / "original.pt").stat().st_size
        original = TorchClassifier(model, _info(arch, "torch", size, classes))
        original_entries[arch] = OriginalEntry(
            name=arch,
            arch=arch,
            file=f"{arch}/original.pt",
            accuracy=float((original.predict_proba(test_set.images).argmax(1) == test_set.labels).float().mean()),
            size_bytes=size,
            parameters=sum(p.numel() for p in model.parameters()),
            dataset=plan.dataset,
        )
        latency_original = latency_ms(original, INPUT_SHAPE)
        recipe_set = recipe_data(train_set, plan, seed)
        pair_entries[arch] = []
        for kind in plan.kinds if kinds is None else kinds:
            say(f"making {arch}-{kind}")
            entry = _make_pair(model, original, arch, kind, arch_dir, recipe_set, test_set,
                               latency_original, seed)
            pair_entries[arch].append(entry)
            say(
                f"{entry.id}: accuracy {entry.accuracy_compressed:.4f} "
                f"(original {entry.accuracy_original:.4f}), {entry.disagreements} disagreements"
            )
    manifest = _merged(directory, original_entries, pair_entries, seed)
    write_manifest(directory, manifest)
    return manifest


def _merged(
    directory: Path, originals: dict[str, OriginalEntry], pairs: dict[str, list[PairEntry]],
    seed: int,
) -> Manifest:
    """The new entries in the place of the old ones of the same originals; every other
    original and pair already in ``directory`` kept, in its order (the TFLite pairs, which
    TensorFlow made, and originals not rebuilt this time)."""
    old = read_manifest(directory) if (directory / "manifest.json").is_file() else None
    old_originals = old.originals if old else {}
    merged = {**old_originals, **originals}
    kept: dict[str, list[PairEntry]] = {}
    for pair in old.pairs if old else []:
        if pair.original not in originals:
            kept.setdefault(pair.original, []).append(pair)
    ordered = [p for name in merged for p in pairs.get(name, kept.get(name, []))]
    return Manifest(originals=merged, pairs=ordered, seed=seed,
                    platform={**(old.platform if old else {}), **build_platform()})


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
    compressed_model = classifier_for(reloaded, pair_id, size, test_set.class_names)
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
    remade: dict[str, PairEntry] = {}
    for name, original_entry in manifest.originals.items():
        if original_entry.format != "torch":
            continue  # converted pairs are remade by compd_core.zoo.tflite_build
        plan = PLANS[name]
        train_set = recipe_data(training_data(plan.dataset), plan, manifest.seed)
        test_set = load_named(plan.dataset)
        original = load_original(directory, name)
        for kind in (k for k in kinds if k in plan.kinds):
            say(f"making {name}-{kind}")
            old = next(p for p in manifest.pairs if p.id == f"{name}-{kind}")
            remade[old.id] = _make_pair(original.module, original, name, kind,
                                        directory / Path(original_entry.file).parent,
                                        train_set, test_set, old.latency_ms_original, manifest.seed)
    pairs = [remade.get(p.id, p) for p in manifest.pairs]
    updated = replace(manifest, pairs=pairs, platform=build_platform())
    write_manifest(directory, updated)
    return updated
