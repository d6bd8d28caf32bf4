"""Turning image tensors into pictures a person can see, and drawing rows of them.

A 28x28 digit drawn at its own size is a smudge, and a browser that enlarges it smooths it
into a blur; enlarging by whole pixels here (nearest neighbour) keeps every pixel a crisp block.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
import torch
from PIL import Image

from compd_core.report import diff_heatmap

DISPLAY_SIZE = 168  # pixels on screen for one image in the trigger view
THUMB_SIZE = 84  # gallery thumbnails


def picture(image: torch.Tensor | np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """(C, H, W) floats in [0, 1] (or uint8) -> uint8 (h, w) or (h, w, 3), enlarged by a whole
    factor so the longer side is about ``size`` pixels."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    factor = max(1, size // max(array.shape[1:]))
    enlarged = array.repeat(factor, axis=1).repeat(factor, axis=2)
    return enlarged[0] if enlarged.shape[0] == 1 else enlarged.transpose(1, 2, 0)


def difference_picture(seed: torch.Tensor, trigger: torch.Tensor, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Where the trigger differs from its seed: red brighter, blue darker, amplified."""
    return picture(diff_heatmap(seed, trigger), size)


def image_strip(
    images: Sequence[torch.Tensor], captions: Sequence[str], per_row: int = 8, size: int = THUMB_SIZE
) -> None:
    """A row (wrapping every ``per_row``) of images with a caption under each, all as wide as
    their column, so a row lines up whatever the captions' lengths."""
    for start in range(0, len(images), per_row):
        columns = st.columns(per_row)
        for column, image, caption in zip(columns, images[start:start + per_row],
                                          captions[start:start + per_row]):
            column.image(picture(image, size), caption=caption, width="stretch")


def strip_html(images: Sequence[torch.Tensor], captions: Sequence[str], heading: str,
               size: int = THUMB_SIZE) -> str:
    """One row of images with a caption under each, and a heading (plain text, its part before
    the first " (" in bold), as a single HTML block.

    A live view redraws twice a second and Streamlit sends a page's elements one by one; drawn
    as separate elements, a redraw caught half way showed a new seed over the old chain. One
    element changes all at once.
    """
    title, _, rest = heading.partition(" (")
    head = f"<strong>{html.escape(title)}</strong>" + (f" ({html.escape(rest)}" if rest else "")
    tiles = "".join(
        '<figure style="margin:0;flex:1 1 0;min-width:0;text-align:center">'
        f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(picture(image, size))}" '
        'style="width:100%;image-rendering:pixelated;border-radius:0.5rem">'
        '<figcaption style="font-size:0.875rem;opacity:0.6;margin-top:0.25rem">'
        f"{html.escape(caption)}</figcaption></figure>"
        for image, caption in zip(images, captions, strict=True)
    )
    return f'<div><p>{head}</p><div style="display:flex;gap:0.75rem">{tiles}</div></div>'


def _png(array: np.ndarray) -> str:
    """A picture as base64 PNG, for an HTML block."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
