"""Datasets from the user's files: an image folder (one sub-folder per class) or an .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from compd_core.data.dataset import ImageDataset, from_uint8
from compd_core.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_image(source: Path | bytes, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file (path or raw bytes) as uint8 (C, H, W) with the given channels and size.

    Conversion follows what a user expects of a viewer: greyscale by luminance, RGB by
    replication, bilinear resize when the size differs.
    """
    import io

    name = str(source) if isinstance(source, Path) else "uploaded image"
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        # Pillow's message names the file object (a BytesIO repr for uploads): say it plainly.
        raise DatasetError(f"{name} is not a readable image (PNG or JPG expected)") from exc
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(
    root: str | Path, channels: int = 1, size: tuple[int, int] = (28, 28)
) -> ImageDataset:
    """Images under ``root/<class name>/*.png|jpg``; classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory; give a folder with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DatasetError(f"{root} has no class sub-folders (expected e.g. {root}/0/*.png)")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_image(file, channels, size))
                labels.append(label)
    if not images:
        raise DatasetError(f"{root} holds no PNG/JPG images in its class sub-folders")
    return from_uint8(
        np.stack(images), np.asarray(labels), tuple(d.name for d in class_dirs), root.name
    )


def load_npz(path: str | Path, class_names: tuple[str, ...] | None = None) -> ImageDataset:
    """An .npz with arrays ``x`` (images, uint8 0..255 or float 0..1) and ``y`` (labels)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise DatasetError(f"{path} must hold arrays 'x' and 'y'; found {archive.files}")
            x, y = archive["x"], archive["y"]
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path} is not a readable .npz archive: {exc}") from exc
    if np.issubdtype(x.dtype, np.floating) and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise DatasetError(f"{path}: float images must lie in [0, 1]; scale them first")
    names = class_names or tuple(str(c) for c in range(int(y.max()) + 1))
    return from_uint8(x, y, names, path.stem)
