"""The shipped real MNIST digits (10,000 of them, fixed stratified 8,000/2,000 split).

MNIST is by Yann LeCun and Corinna Cortes (CC BY-SA 3.0); see sample_models/README.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from compd_core.data.dataset import ImageDataset, from_uint8
from compd_core.errors import DatasetError
from compd_core.paths import mnist_path

Split = Literal["train", "test"]
MNIST_CLASSES = tuple(str(d) for d in range(10))


@lru_cache(maxsize=8)
def load_shipped_split(
    path: Path, split: Split, class_names: tuple[str, ...], name: str, rebuild_hint: str
) -> ImageDataset:
    """One split (``x_<split>``/``y_<split>``) of a shipped uint8 archive, cached per process."""
    if not path.is_file():
        raise DatasetError(f"{name} archive not found at {path}; {rebuild_hint}")
    with np.load(path) as archive:
        return from_uint8(
            archive[f"x_{split}"], archive[f"y_{split}"], class_names, f"{name}-{split}"
        )


def check_split(split: str, title: str) -> None:
    if split not in ("train", "test"):
        raise DatasetError(f"unknown {title} split {split!r}; use 'train' or 'test'")


def load_mnist(split: Split = "test", path: Path | None = None) -> ImageDataset:
    """The train (8,000) or test (2,000) split as a read-only-by-convention dataset."""
    check_split(split, "MNIST")
    return load_shipped_split(Path(path) if path else mnist_path(), split, MNIST_CLASSES, "mnist",
                              "rebuild it with sample_models/build_mnist.py")
