"""The one in-memory dataset type: float images in [0, 1] with labels and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from compd_core.errors import DatasetError


@dataclass(frozen=True)
class ImageDataset:
    """Images (N, C, H, W) float32 in [0, 1], integer labels (N,), and where they came from.

    ``indices`` are the positions in the source dataset, kept through ``subset`` so that a seed
    picked from a filtered view can still be named by its original index.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str
    indices: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DatasetError(
                f"{self.name}: images must have shape (N, C, H, W), got {tuple(self.images.shape)}"
            )
        if self.images.dtype != torch.float32:
            raise DatasetError(f"{self.name}: images must be float32, got {self.images.dtype}")
        if len(self.labels) != len(self.images):
            raise DatasetError(
                f"{self.name}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if len(self.images) == 0:
            raise DatasetError(f"{self.name}: the dataset holds no images")
        check_labels(self.labels, len(self.class_names), self.name)
        if self.indices is None:
            object.__setattr__(self, "indices", torch.arange(len(self.images)))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, positions: torch.Tensor | np.ndarray | list[int]) -> ImageDataset:
        """A view of some images (positions in this dataset), keeping source indices."""
        pos = torch.as_tensor(positions, dtype=torch.long)
        return ImageDataset(
            images=self.images[pos],
            labels=self.labels[pos],
            class_names=self.class_names,
            name=self.name,
            indices=self.indices[pos],
        )


def check_labels(labels: torch.Tensor | np.ndarray, num_classes: int, name: str) -> None:
    """Labels must be whole numbers, one per image (shape (N,)), each naming one of the classes.

    Checked once, when a dataset is built: a label of shape (N, 1) would broadcast against the
    predictions and a label past the class count would make every accuracy silently wrong.
    """
    values = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if values.ndim != 1:
        raise DatasetError(
            f"{name}: labels must have shape (N,), one whole number per image, got "
            f"{values.shape}; flatten them (e.g. y.reshape(-1)) if there is one label per image"
        )
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
        raise DatasetError(
            f"{name}: labels must be whole numbers (class indices), got dtype {values.dtype}; "
            "store them as integers, e.g. y.astype(np.int64)"
        )
    if len(values) == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_classes:
        raise DatasetError(
            f"{name}: labels must lie in 0..{num_classes - 1} (the {num_classes} classes), "
            f"found labels from {low} to {high}"
        )


def from_uint8(
    images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], name: str
) -> ImageDataset:
    """Build a dataset from uint8 arrays (N, H, W), (N, H, W, C) or (N, C, H, W)."""
    check_labels(np.asarray(labels), len(class_names), name)
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4:
        raise DatasetError(f"{name}: expected images of 3 or 4 dimensions, got shape {arr.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32)
    if np.issubdtype(np.asarray(images).dtype, np.integer):
        tensor = tensor / 255.0
    return ImageDataset(
        images=tensor,
        labels=torch.as_tensor(np.asarray(labels), dtype=torch.long),
        class_names=class_names,
        name=name,
    )
