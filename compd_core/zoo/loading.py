"""Turn manifest entries into classifiers and pairs. Classifiers are cached per process and
shared, so they are read-only: repair deep-copies before it trains."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from compd_core.compress import get_recipe
from compd_core.compress.base import Compressed, load_state
from compd_core.data.mnist import MNIST_CLASSES
from compd_core.data.named import named_classes
from compd_core.errors import ModelLoadError, UnknownPairError
from compd_core.models.adapters import OnnxClassifier, TorchClassifier
from compd_core.models.architectures import build_architecture
from compd_core.models.base import Classifier, ModelInfo
from compd_core.models.loading import load_classifier
from compd_core.models.pair import DEFAULT_MAX_BATCH, ModelPair
from compd_core.paths import sample_models_dir
from compd_core.zoo.manifest import Manifest, PairEntry, read_manifest

INPUT_SHAPE = (1, 28, 28)
USER_ZOO_ENV = "COMPD_USER_ZOO"


def user_zoo_dir() -> Path:
    """Where pairs made by the user (repaired pairs) are registered."""
    return Path(os.environ.get(USER_ZOO_ENV, "~/.local/share/compd/pairs")).expanduser()


def zoo_dirs() -> list[Path]:
    """The shipped zoo first, then the user's, when it has a manifest."""
    dirs = [sample_models_dir()]
    if (user_zoo_dir() / "manifest.json").is_file():
        dirs.append(user_zoo_dir())
    return dirs


def find_entry(pair_id: str) -> tuple[Path, Manifest, PairEntry]:
    known: list[str] = []
    for directory in zoo_dirs():
        manifest = read_manifest(directory)
        for entry in manifest.pairs:
            if entry.id == pair_id:
                return directory, manifest, entry
            known.append(entry.id)
    raise UnknownPairError(
        f"unknown pair {pair_id!r}; known pairs: {', '.join(known)} (see `compd zoo list`)"
    )


def _info(name: str, kind: str, size: int, class_names: tuple[str, ...] = MNIST_CLASSES) -> ModelInfo:
    return ModelInfo(name, INPUT_SHAPE, len(class_names), class_names, kind, size)


def pair_dataset(pair_id: str) -> str:
    """The shipped dataset a zoo pair was trained and measured on (its seeds come from it)."""
    _, manifest, entry = find_entry(pair_id)
    original = manifest.originals.get(entry.original)
    return original.dataset if original is not None else "mnist"


def _original_classes(manifest: Manifest, name: str) -> tuple[str, ...]:
    original = manifest.originals.get(name)
    return named_classes(original.dataset if original is not None else "mnist")


@lru_cache(maxsize=16)
def load_original(directory: Path, name: str) -> Classifier:
    """A PyTorch original (``TorchClassifier``), or a Keras one through the model-file loader."""
    entry = read_manifest(directory).originals.get(name)
    if entry is None:
        raise ModelLoadError(f"the zoo at {directory} has no original named {name!r}")
    path = directory / entry.file
    classes = named_classes(entry.dataset)
    if entry.format != "torch":
        return load_classifier(path, INPUT_SHAPE, classes, name=name)
    model = build_architecture(entry.arch)
    try:
        model.load_state_dict(load_state(path))
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load {path}: {exc}") from exc
    return TorchClassifier(model.eval(), _info(name, "torch", path.stat().st_size, classes))


def classifier_for(
    compressed: Compressed, name: str, size_bytes: int,
    class_names: tuple[str, ...] = MNIST_CLASSES,
) -> Classifier:
    """Wrap a recipe's output as a classifier (ONNX files run in onnxruntime, TFLite files in
    LiteRT)."""
    if isinstance(compressed.served, (str, Path)):
        if Path(compressed.served).suffix == ".onnx":
            return OnnxClassifier(compressed.served, INPUT_SHAPE, class_names, output="logits", name=name)
        return load_classifier(compressed.served, INPUT_SHAPE, class_names, name=name)
    return TorchClassifier(
        compressed.served, _info(name, "torch", size_bytes, class_names), standin=compressed.standin
    )


@lru_cache(maxsize=64)
def load_compressed(directory: Path, pair_id: str) -> Classifier:
    manifest = read_manifest(directory)
    entry = next((p for p in manifest.pairs if p.id == pair_id), None)
    if entry is None:
        raise UnknownPairError(f"the zoo at {directory} has no pair {pair_id!r}")
    files = {role: directory / rel for role, rel in entry.files.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelLoadError(f"files of pair {pair_id} are missing: {', '.join(missing)}")
    try:
        compressed = get_recipe(entry.compression).load(entry.arch, files)
    except (OSError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"cannot load the compressed model of {pair_id}: {exc}") from exc
    return classifier_for(compressed, pair_id, entry.size_bytes,
                          _original_classes(manifest, entry.original))


def load_pair(pair_id: str, max_batch: int = DEFAULT_MAX_BATCH) -> ModelPair:
    """A fresh ``ModelPair`` (own query counter) over the cached, shared classifiers."""
    directory, _, entry = find_entry(pair_id)
    return ModelPair(
        load_original(directory, entry.original),
        load_compressed(directory, pair_id),
        name=pair_id,
        max_batch=max_batch,
    )


def list_pairs() -> list[PairEntry]:
    return [entry for directory in zoo_dirs() for entry in read_manifest(directory).pairs]


def pair_datasets() -> dict[str, str]:
    """Pair id -> the shipped dataset it was measured on, for every pair of every zoo."""
    found: dict[str, str] = {}
    for directory in zoo_dirs():
        manifest = read_manifest(directory)
        for entry in manifest.pairs:
            original = manifest.originals.get(entry.original)
            found.setdefault(entry.id, original.dataset if original is not None else "mnist")
    return found
