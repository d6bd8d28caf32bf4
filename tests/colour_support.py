"""Real colour photographs at any size, from the ones scikit-image ships.

The three photos and their licences, as their docstrings in ``skimage.data`` state them:
``astronaut`` (Eileen Collins, NASA Great Images database: no known copyright restrictions,
public domain), ``chelsea`` (Chelsea the cat, CC0 by Stefan van der Walt) and ``coffee`` (a
coffee cup, courtesy of Pikolo Espresso Bar, CC0 by Rachel Michetti).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee")


def photos(size: int, channels: int = 3) -> torch.Tensor:
    """The three photos as a float batch (3, channels, size, size) on the 8-bit grid: the
    centre square of each, resized by Pillow (bicubic); ``channels`` 1 gives them in grey."""
    data = pytest.importorskip("skimage.data", reason="the colour tests use scikit-image's photos")
    colour = torch.stack([_square(getattr(data, name)(), size) for name in PHOTOS])
    if channels == 3:
        return colour
    # Pillow's grey conversion (ITU-R 601-2 luma), rounded to the 8-bit grid as Pillow does.
    levels = [np.asarray(Image.fromarray(_uint8(image)).convert("L")) for image in colour]
    return torch.from_numpy(np.stack(levels)[:, None].copy()).float() / 255.0


PATCH_CLASSES = ("astronaut", "cat", "coffee", "china", "flower")


def photo_patches(side: int = 32, photo_size: int = 96, stride: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping colour patches of five real photos, labelled by the photo they come from.

    The photos: scikit-image's three (above) and scikit-learn's ``china`` and ``flower``
    (CC BY 2.0, as ``sklearn.datasets.load_sample_images`` states). Each photo's centre square
    is resized to ``photo_size`` pixels and cut into ``side``-pixel patches every ``stride``
    pixels: 81 patches per photo with the defaults, 405 in all. Images (N, 3, side, side) on
    the 8-bit grid, labels (N,) in 0..4 (``PATCH_CLASSES``).
    """
    data = pytest.importorskip("skimage.data", reason="the colour tests use scikit-image's photos")
    from sklearn.datasets import load_sample_images

    arrays = [getattr(data, name)() for name in PHOTOS] + list(load_sample_images().images)
    images, labels = [], []
    for label, array in enumerate(arrays):
        photo = _square(array, photo_size)
        for top in range(0, photo_size - side + 1, stride):
            for left in range(0, photo_size - side + 1, stride):
                images.append(photo[:, top : top + side, left : left + side])
                labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def _uint8(image: torch.Tensor) -> np.ndarray:
    return torch.round(image * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _square(array: np.ndarray, size: int) -> torch.Tensor:
    """The centre square of an (H, W, 3) uint8 photo, resized: float (3, size, size)."""
    h, w = array.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(array[top : top + side, left : left + side])
    resized = np.array(square.resize((size, size), Image.Resampling.BICUBIC))
    return torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0
