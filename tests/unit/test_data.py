"""The shipped MNIST and the user-file loaders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from compd_core.data import load_image_folder, load_mnist, load_npz
from compd_core.data.resolve import load_dataset
from compd_core.errors import DatasetError


def test_mnist_split_sizes_and_classes(mnist_train, mnist_test):
    assert len(mnist_train) == 8000 and len(mnist_test) == 2000
    assert mnist_test.image_shape == (1, 28, 28)
    assert mnist_test.class_names == tuple("0123456789")
    counts = np.bincount(mnist_test.labels.numpy(), minlength=10)
    # stratified: every class holds its ~20% share of the test split
    assert counts.min() >= 170 and counts.max() <= 230


def test_mnist_pixels_are_real_digits_on_the_8bit_grid(mnist_test):
    x = mnist_test.images
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.allclose((x * 255).numpy(), np.round((x * 255).numpy()), atol=1e-4)
    # a handwritten digit covers roughly a fifth of the 28x28 canvas
    assert 0.1 < float((x > 0.5).float().mean()) < 0.3


def test_train_and_test_do_not_overlap():
    with np.load(load_mnist.__globals__["mnist_path"]()) as archive:
        train_idx, test_idx = archive["source_index_train"], archive["source_index_test"]
    assert len(set(train_idx) & set(test_idx)) == 0
    assert len(set(train_idx) | set(test_idx)) == 10_000


def test_subset_keeps_source_indices(mnist_test):
    sub = mnist_test.subset([5, 7])
    assert sub.indices.tolist() == [5, 7]
    assert sub.subset([1]).indices.tolist() == [7]


def _write_folder(root, mnist_test, per_class=3):
    for label in (3, 8):
        positions = np.flatnonzero(mnist_test.labels.numpy() == label)[:per_class]
        (root / str(label)).mkdir(parents=True)
        for order, p in enumerate(positions):
            pixels = (mnist_test.images[p, 0].numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(root / str(label) / f"{order:03d}.png")


def test_image_folder_round_trips_mnist_digits(tmp_path, mnist_test):
    _write_folder(tmp_path, mnist_test)
    dataset = load_image_folder(tmp_path)
    assert len(dataset) == 6
    assert dataset.class_names == ("3", "8")
    first = int(np.flatnonzero(mnist_test.labels.numpy() == 3)[0])
    assert np.allclose(dataset.images[0].numpy(), mnist_test.images[first].numpy())


def test_image_folder_resizes_and_converts_colour(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "a" / "red.jpg")
    dataset = load_image_folder(tmp_path, channels=1, size=(28, 28))
    assert dataset.image_shape == (1, 28, 28)
    # luminance of pure red is 0.299 * 255 = 76
    assert abs(float(dataset.images.mean()) - 76 / 255) < 3 / 255


def test_npz_loader(tmp_path, mnist_test):
    path = tmp_path / "digits.npz"
    np.savez(path, x=(mnist_test.images[:10, 0] * 255).numpy().astype(np.uint8),
             y=mnist_test.labels[:10].numpy())
    dataset = load_npz(path)
    assert len(dataset) == 10 and dataset.image_shape == (1, 28, 28)
    assert np.allclose(dataset.images.numpy(), mnist_test.images[:10].numpy(), atol=1e-6)


@pytest.mark.parametrize("setup, message", [
    (lambda p: p, "no class sub-folders"),
    (lambda p: (p / "0").mkdir() or p, "no PNG/JPG images"),
])
def test_folder_without_images_is_refused(tmp_path, setup, message):
    with pytest.raises(DatasetError, match=message):
        load_image_folder(setup(tmp_path))


def test_non_image_file_is_refused(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "notes.png").write_text("not an image")
    with pytest.raises(DatasetError, match="not a readable image"):
        load_image_folder(tmp_path)


def test_npz_without_arrays_and_bad_specs(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((2, 28, 28)))
    with pytest.raises(DatasetError, match="'x' and 'y'"):
        load_npz(path)
    with pytest.raises(DatasetError, match="neither"):
        load_dataset(str(tmp_path / "nothing.txt"))
    with pytest.raises(DatasetError, match="unknown MNIST split"):
        load_mnist("validation")  # type: ignore[arg-type]
