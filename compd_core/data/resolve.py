"""Turn what a user types for a dataset (``mnist``, ``mnist:train``, a folder, an .npz) into one.

``load_dataset`` is the one door every command and page goes through: it checks the images
against the models' input shape and the labels against the models' classes, once, at load.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.data.files import NPZ_SPLITS, load_image_folder, load_npz
from compd_core.data.named import is_named, load_named
from compd_core.errors import DatasetError


def load_dataset(
    spec: str,
    input_shape: tuple[int, int, int] | None = (1, 28, 28),
    class_names: tuple[str, ...] | None = None,
) -> ImageDataset:
    """``mnist`` (test split), ``mnist:train``, ``fashion-mnist`` (``:train``), an image folder, or an .npz with x and y (or
    with x_test/y_test and x_train/y_train: ``file.npz`` is its test split, ``file.npz:train``
    the other).

    ``class_names`` are the models' classes: labels are then checked to index them, and a
    folder's class sub-folders are matched to them by name (a folder holding only ``5/ 6/ 7/``
    gets labels 5, 6 and 7, not 0, 1 and 2). ``input_shape`` None takes the images as they
    are stored (an .npz's own shape; a folder's images are read as 1x28x28), for models whose
    shape the dataset decides.
    """
    if is_named(spec):
        dataset = load_named(spec)
    else:
        path, split = npz_split(spec)
        if path.is_dir():
            shape = input_shape or (1, 28, 28)
            dataset = load_image_folder(path, channels=shape[0], size=shape[1:])
        elif path.suffix.lower() == ".npz":
            dataset = load_npz(path, class_names, split)
        else:
            raise DatasetError(
                f"dataset {spec!r} is neither 'mnist', 'mnist:train', 'fashion-mnist', "
                "'fashion-mnist:train', a folder of class sub-folders, nor an .npz file (file.npz, "
                "or file.npz:train for its train split)"
            )
    if input_shape is not None and dataset.image_shape != input_shape:
        raise DatasetError(
            f"{spec}: images have shape {dataset.image_shape} but the models take {input_shape}"
        )
    return dataset if class_names is None else match_classes(dataset, class_names, spec)


def npz_split(spec: str) -> tuple[Path, str | None]:
    """``file.npz:train`` -> (file.npz, "train"); any other spec -> (its path, None)."""
    head, _, tail = spec.rpartition(":")
    if head and tail in NPZ_SPLITS and head.lower().endswith(".npz"):
        return Path(head).expanduser(), tail
    return Path(spec).expanduser(), None


def names_a_dataset(spec: str) -> bool:
    """Whether ``load_dataset`` can find ``spec`` (without reading it): a run stored under a
    description, such as hand-picked seeds, cannot be loaded again by name."""
    if is_named(spec):
        return True
    path, _ = npz_split(spec)
    return path.is_dir() or (path.suffix.lower() == ".npz" and path.is_file())


def match_classes(dataset: ImageDataset, class_names: tuple[str, ...], spec: str) -> ImageDataset:
    """The dataset with labels that index ``class_names``, matching its classes by name."""
    if dataset.class_names == class_names:
        return dataset
    unknown = [name for name in dataset.class_names if name not in class_names]
    if unknown:
        shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
        raise DatasetError(
            f"{spec}: classes {', '.join(unknown[:12])} are not among the models' "
            f"{len(class_names)} classes ({shown}); name each class sub-folder after one of them"
        )
    position = torch.tensor([class_names.index(name) for name in dataset.class_names])
    return ImageDataset(images=dataset.images, labels=position[dataset.labels],
                        class_names=class_names, name=dataset.name, indices=dataset.indices)
