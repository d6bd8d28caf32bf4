"""Turn what a user types for a dataset (``mnist``, ``mnist:train``, a folder, an .npz) into one."""

from __future__ import annotations

from pathlib import Path

from compd_core.data.dataset import ImageDataset
from compd_core.data.files import load_image_folder, load_npz
from compd_core.data.mnist import load_mnist
from compd_core.errors import DatasetError


def load_dataset(spec: str, input_shape: tuple[int, int, int] = (1, 28, 28)) -> ImageDataset:
    """``mnist`` (test split), ``mnist:train``, an image folder, or an .npz with x and y."""
    if spec in ("mnist", "mnist:test"):
        return load_mnist("test")
    if spec == "mnist:train":
        return load_mnist("train")
    path = Path(spec).expanduser()
    if path.is_dir():
        dataset = load_image_folder(path, channels=input_shape[0], size=input_shape[1:])
    elif path.suffix.lower() == ".npz":
        dataset = load_npz(path)
    else:
        raise DatasetError(
            f"dataset {spec!r} is neither 'mnist', 'mnist:train', a folder of class sub-folders, "
            "nor an .npz file"
        )
    if dataset.image_shape != input_shape:
        raise DatasetError(
            f"{spec}: images have shape {dataset.image_shape} but the models take {input_shape}"
        )
    return dataset
