"""Datasets from the user's files: an image folder (one sub-folder per class) or an .npz.

Both are untrusted input: every limit is checked before the bytes are decoded, so a
decompression bomb, a truncated archive or labels in the billions end in one ``DatasetError``
instead of a traceback or an exhausted memory.
"""

from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from compd_core.data.dataset import ImageDataset, check_labels, from_uint8
from compd_core.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_IMAGE_PIXELS = 4096 * 4096  # a photo is resized to a few thousand model pixels anyway
MAX_ARRAY_BYTES = 2 * 1024**3  # per .npz array, uncompressed: read before any decompression
MAX_INFERRED_CLASSES = 10_000  # class count read from labels when no model names the classes


def read_image(source: Path | bytes, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file (path or raw bytes) as uint8 (C, H, W) with the given channels and size.

    Conversion follows what a user expects of a viewer: greyscale by luminance, RGB by
    replication, bilinear resize when the size differs. The pixel count is checked from the
    header, before decoding.
    """
    name = str(source) if isinstance(source, Path) else "uploaded image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            picture = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        with picture as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DatasetError(
                    f"{name} is {width}x{height} pixels; compd reads images of at most "
                    f"{MAX_IMAGE_PIXELS:,} pixels (e.g. 4096x4096): shrink it first"
                )
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise DatasetError(
            f"{name} declares more pixels than compd reads (at most {MAX_IMAGE_PIXELS:,}, e.g. "
            "4096x4096); it may be a decompression bomb: shrink it or leave it out"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, zlib.error) as exc:
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


_NPZ_HOWTO = ("save one with numpy.savez(path, x=images, y=labels), or with x_train/y_train "
              "and x_test/y_test as the shipped mnist.npz")
NPZ_SPLITS = ("train", "test")


def load_npz(
    path: str | Path, class_names: tuple[str, ...] | None = None, split: str | None = None,
) -> ImageDataset:
    """An .npz with arrays ``x`` (images, uint8 0..255 or float 0..1) and ``y`` (labels), or
    with ``x_test``/``y_test`` and ``x_train``/``y_train`` (``split``; the test split unless
    told otherwise, as for the shipped MNIST).

    ``class_names`` are the models' classes (labels must index them); without them the class
    count is read from the labels, up to ``MAX_INFERRED_CLASSES``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    if split is not None and split not in NPZ_SPLITS:
        raise DatasetError(f"{path}: unknown split {split!r}; add :train or :test to the path")
    x, y = _read_npz_arrays(path, split)
    _check_images(path, x)
    if y.ndim != 1 or y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"{path}: labels 'y' must be whole numbers of shape (N,), got dtype {y.dtype} and "
            f"shape {y.shape}; e.g. y.reshape(-1).astype(np.int64)"
        )
    if len(y) != len(x):
        raise DatasetError(f"{path}: {len(x)} images in 'x' but {len(y)} labels in 'y'")
    if class_names is None:
        high = int(y.max())
        if high >= MAX_INFERRED_CLASSES:
            raise DatasetError(
                f"{path}: labels reach {high}, but compd handles at most "
                f"{MAX_INFERRED_CLASSES:,} classes; labels must be class indices 0, 1, 2, ..."
            )
        class_names = tuple(str(c) for c in range(max(high, 0) + 1))
    check_labels(y, len(class_names), str(path))  # named by its path, not only its stem
    return from_uint8(x, y, class_names, path.stem if split is None else f"{path.stem}-{split}")


def _npz_keys(path: Path, files: list[str], split: str | None) -> tuple[str, str]:
    """Which arrays hold the images and labels: x/y, or the split's x_<split>/y_<split>."""
    if split is None and "x" in files and "y" in files:
        return "x", "y"
    wanted = split or "test"
    if f"x_{wanted}" in files and f"y_{wanted}" in files:
        return f"x_{wanted}", f"y_{wanted}"
    found = ", ".join(files) or "no arrays at all"
    if split is not None:
        raise DatasetError(
            f"{path} has no {split} split (arrays x_{split} and y_{split}), found {found}; "
            "leave the :split out for a file with arrays x and y"
        )
    raise DatasetError(f"{path} must hold arrays 'x' and 'y', found {found}; {_NPZ_HOWTO}")


def _read_npz_arrays(path: Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of an archive, after checking their declared sizes against the
    limits."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path} is not a readable .npz archive (damaged or truncated?); {_NPZ_HOWTO}"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} holds a single array, not an .npz archive; {_NPZ_HOWTO}")
    with archive:
        keys = _npz_keys(path, archive.files, split)
        for key in keys:
            size = archive.zip.getinfo(f"{key}.npy").file_size
            if size > MAX_ARRAY_BYTES:
                raise DatasetError(
                    f"{path}: array '{key}' holds {size / 1024**3:.1f} GiB; compd reads "
                    f"at most {MAX_ARRAY_BYTES / 1024**3:.0f} GiB per array: use fewer images"
                )
        try:
            return archive[keys[0]], archive[keys[1]]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DatasetError(
                f"{path} is not a readable .npz archive (an array is damaged or holds Python "
                f"objects); {_NPZ_HOWTO} from numeric arrays"
            ) from exc


def _check_images(path: Path, x: np.ndarray) -> None:
    """Images must be numbers on one of the two scales the models read, in 3 or 4 dimensions."""
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    ):
        raise DatasetError(
            f"{path}: images 'x' must be numbers (uint8 0..255 or float 0..1), got dtype "
            f"{x.dtype}"
        )
    if x.ndim not in (3, 4) or len(x) == 0:
        raise DatasetError(
            f"{path}: images 'x' must have shape (N, H, W), (N, H, W, C) or (N, C, H, W) with "
            f"N >= 1, got {x.shape}"
        )
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DatasetError(
                f"{path}: float images must be finite and lie in [0, 1]; scale them first"
            )
    elif x.min() < 0 or x.max() > 255:
        raise DatasetError(f"{path}: integer images must lie in 0..255 (8-bit pixels)")
