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
    images = []
    for name in PHOTOS:
        array = getattr(data, name)()
        h, w = array.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = Image.fromarray(array[top : top + side, left : left + side])
        if channels == 1:
            square = square.convert("L")
        resized = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))
        pixels = resized[None] if channels == 1 else resized.transpose(2, 0, 1)
        images.append(torch.from_numpy(np.array(pixels)).float() / 255.0)
    return torch.stack(images)
