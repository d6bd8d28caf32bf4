"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; Zalando, MIT licence): 28x28 grey photos of
clothes in ten classes, a harder drop-in for MNIST.

Two sources. The shipped ``fashion_mnist.npz`` holds the whole official test set (10,000
images), split class by class into 8,000 ``train`` images (repair's clean data) and 2,000
``test`` images (seeds, accuracies, disagreements). The official 60,000 training images, which
only the zoo build needs, are read from Debian's ``dataset-fashion-mnist`` package.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from compd_core.data.dataset import ImageDataset, from_uint8
from compd_core.data.mnist import Split, check_split, load_shipped_split
from compd_core.errors import DatasetError
from compd_core.paths import sample_models_dir

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
OFFICIAL_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
OFFICIAL_FILES = {"train": "train", "test": "t10k"}
_IDX_MAGIC = {1: 2049, 3: 2051}  # labels (1 dimension) and images (3 dimensions), unsigned bytes


def fashion_mnist_path() -> Path:
    """The shipped stratified split of the official test set (uint8 .npz)."""
    return sample_models_dir() / "fashion_mnist.npz"


def load_fashion_mnist(split: Split = "test", path: Path | None = None) -> ImageDataset:
    """The shipped ``train`` (8,000) or ``test`` (2,000) part of the official test set."""
    check_split(split, "Fashion-MNIST")
    return load_shipped_split(
        Path(path) if path else fashion_mnist_path(), split, FASHION_MNIST_CLASSES,
        "fashion-mnist", "rebuild it with sample_models/build_fashion_mnist.py",
    )


def read_idx(path: Path, dimensions: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes (LeCun's format) as a uint8 array, header checked."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path} is not a readable gzipped IDX file: {exc}") from exc
    header = 4 + 4 * dimensions
    if len(raw) < header or int.from_bytes(raw[:4], "big") != _IDX_MAGIC[dimensions]:
        raise DatasetError(
            f"{path} is not an IDX file of {dimensions} dimension(s) of unsigned bytes"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimensions))
    if len(raw) != header + int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated: its header declares shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def load_official_arrays(split: Split, directory: Path = OFFICIAL_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The official images (N, 28, 28) and labels (N,) as uint8, in the published order."""
    check_split(split, "Fashion-MNIST")
    stem = OFFICIAL_FILES[split]
    images_path = directory / f"{stem}-images-idx3-ubyte.gz"
    labels_path = directory / f"{stem}-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise DatasetError(
            f"the official Fashion-MNIST files are not under {directory}; install them with "
            "`apt-get install dataset-fashion-mnist` (Debian)"
        )
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DatasetError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


def load_official(split: Split, directory: Path = OFFICIAL_DIR) -> ImageDataset:
    """The official 60,000 training or 10,000 test images (the zoo build trains on these)."""
    images, labels = load_official_arrays(split, directory)
    return from_uint8(images, labels, FASHION_MNIST_CLASSES, f"fashion-mnist-official-{split}")
