"""Rebuild ``fashion_mnist.npz`` from the official Fashion-MNIST test set.

    apt-get install dataset-fashion-mnist   # Debian: the IDX files under /usr/share/datasets/
    python sample_models/build_fashion_mnist.py sample_models/fashion_mnist.npz

The official test set holds 10,000 images, 1,000 per class. All of them are kept and split,
class by class with a fixed seed, into 8,000 ``train`` images (repair's clean data) and 2,000
``test`` images (seeds, accuracies and disagreements), as ``mnist.npz`` is split. The official
60,000 training images are not shipped: the zoo build reads them from the package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from build_mnist import save_split
from compd_core.data.fashion_mnist import OFFICIAL_DIR, load_official_arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the .npz")
    parser.add_argument("--source", type=Path, default=OFFICIAL_DIR,
                        help="folder of the official IDX .gz files")
    args = parser.parse_args()
    images, labels = load_official_arrays("test", args.source)
    save_split(args.out, images, labels)


if __name__ == "__main__":
    main()
