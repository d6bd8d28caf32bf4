"""Fashion-MNIST's readers and the shipped dataset names, on small files in the real format."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from compd_core.data.fashion_mnist import FASHION_MNIST_CLASSES, load_official, read_idx
from compd_core.data.named import clean_part, load_named, named_classes, parse_named
from compd_core.data.resolve import names_a_dataset
from compd_core.errors import DatasetError
from compd_core.repair.settings import RepairSettings, on_run_dataset


def _idx(path, array: np.ndarray, magic: int, declared: tuple[int, ...] | None = None) -> None:
    shape = declared or array.shape
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _official(folder, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28) % 256
    labels = np.arange(n) % 10
    _idx(folder / "t10k-images-idx3-ubyte.gz", images, 2051)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", labels, 2049)
    return images, labels


def test_official_files_read_back_exactly(tmp_path):
    images, labels = _official(tmp_path)
    dataset = load_official("test", tmp_path)
    assert dataset.images.shape == (6, 1, 28, 28)
    assert np.array_equal((dataset.images[:, 0] * 255).round().numpy(), images)
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.class_names == FASHION_MNIST_CLASSES


def test_damaged_idx_files_are_refused_in_words(tmp_path):
    images, _ = _official(tmp_path)
    bad = tmp_path / "bad.gz"
    _idx(bad, images, 2049)  # a labels magic number on images
    with pytest.raises(DatasetError, match="not an IDX file of 3"):
        read_idx(bad, 3)
    _idx(bad, images[:2], 2051, declared=(3, 28, 28))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(bad, 3)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="not a readable gzipped IDX"):
        read_idx(bad, 3)


def test_missing_package_says_how_to_install_it(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_official("train", tmp_path)


def test_shipped_names_and_their_parts():
    assert parse_named("fashion-mnist") == ("fashion-mnist", "test")
    assert parse_named("fashion-mnist:train") == ("fashion-mnist", "train")
    assert parse_named("mnist:test") == ("mnist", "test")
    assert parse_named("fashion-mnist:valid") is None and parse_named("cifar10") is None
    assert names_a_dataset("fashion-mnist:train") and not names_a_dataset("fashion")
    assert clean_part("fashion-mnist") == "fashion-mnist:train"
    assert named_classes("fashion-mnist")[0] == "T-shirt/top"
    assert load_named("mnist").name == "mnist-test"
    with pytest.raises(DatasetError, match="known: mnist, fashion-mnist"):
        named_classes("emnist")


def test_a_repair_of_a_fashion_run_learns_and_is_judged_on_fashion_mnist():
    settings = on_run_dataset(RepairSettings(), "fashion-mnist")
    assert (settings.clean_dataset, settings.test_dataset) == ("fashion-mnist:train", "fashion-mnist")
    assert on_run_dataset(RepairSettings(), "mnist") == RepairSettings()
    own = RepairSettings(test_dataset="/data/mine.npz")
    assert on_run_dataset(own, "fashion-mnist") == own  # data the user named is kept


def test_a_zoo_build_without_the_package_stops_before_any_training(tmp_path, monkeypatch):
    import compd_core.zoo.build as build

    real = build.load_official
    monkeypatch.setattr(build, "load_official", lambda split: real(split, tmp_path / "none"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        build.build_zoo(tmp_path / "zoo", originals=("lenet1", "resnet-fashion"))
    assert not (tmp_path / "zoo").exists()  # LeNet-1, listed first, was not trained either
