"""The shipped datasets by name: ``mnist`` and ``fashion-mnist``, each with a ``:train`` part
(repair's clean data) and a ``:test`` part (seeds and measurements, the default)."""

from __future__ import annotations

from collections.abc import Callable

from compd_core.data.dataset import ImageDataset
from compd_core.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from compd_core.data.mnist import MNIST_CLASSES, Split, load_mnist
from compd_core.errors import DatasetError

SHIPPED: dict[str, tuple[Callable[[Split], ImageDataset], tuple[str, ...]]] = {
    "mnist": (load_mnist, MNIST_CLASSES),
    "fashion-mnist": (load_fashion_mnist, FASHION_MNIST_CLASSES),
}
SPLITS: tuple[Split, ...] = ("test", "train")


def parse_named(spec: str) -> tuple[str, Split] | None:
    """``fashion-mnist:train`` -> ("fashion-mnist", "train"); None when ``spec`` names no
    shipped dataset (then it is a path)."""
    name, _, split = spec.partition(":")
    if name not in SHIPPED:
        return None
    if not split:
        return name, "test"
    return (name, split) if split in SPLITS else None  # type: ignore[return-value]


def is_named(spec: str) -> bool:
    return parse_named(spec) is not None


def load_named(spec: str) -> ImageDataset:
    """A shipped dataset's part by name (``mnist``, ``fashion-mnist:train``, ...)."""
    parsed = parse_named(spec)
    if parsed is None:
        known = ", ".join(f"{n}, {n}:train" for n in SHIPPED)
        raise DatasetError(f"{spec!r} names no shipped dataset; known: {known}")
    name, split = parsed
    return SHIPPED[name][0](split)


def named_classes(name: str) -> tuple[str, ...]:
    """The class names of a shipped dataset (``mnist``, ``fashion-mnist``)."""
    if name not in SHIPPED:
        raise DatasetError(f"unknown shipped dataset {name!r}; known: {', '.join(SHIPPED)}")
    return SHIPPED[name][1]


def clean_part(spec: str) -> str:
    """The ``:train`` part of a shipped dataset (repair's clean data) for a run on its test part."""
    parsed = parse_named(spec)
    return f"{parsed[0]}:train" if parsed is not None else spec
