"""Images as stored: PNG bytes where every pixel lies on the 8-bit grid (lossless there, and
the bytes open in any viewer), an .npy float array otherwise, so a round trip is exact."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from compd_core.errors import StoreError

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"


def encode_image(image: torch.Tensor) -> bytes:
    """(C, H, W) float image -> PNG bytes (exact on the 8-bit grid), else .npy bytes."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise StoreError(f"an image to store must be a float tensor (C, H, W), got {shape}")
    x = image.detach().cpu().to(torch.float32)
    levels = torch.round(x * 255.0)
    on_grid = bool(torch.equal(levels / 255.0, x)) and bool(((x >= 0) & (x <= 1)).all())
    if not on_grid or x.shape[0] not in (1, 3):
        buffer = io.BytesIO()
        np.save(buffer, x.numpy(), allow_pickle=False)
        return buffer.getvalue()
    pixels = levels.to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if x.shape[0] == 1 else pixels)  # L or RGB
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_image(data: bytes) -> torch.Tensor:
    """Bytes from ``encode_image`` -> the same (C, H, W) float32 tensor."""
    if data.startswith(_PNG_MAGIC):
        with Image.open(io.BytesIO(data)) as picture:
            pixels = np.array(picture)  # a writable copy for torch
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        channels_first = np.ascontiguousarray(pixels.transpose(2, 0, 1))
        return torch.from_numpy(channels_first).to(torch.float32) / 255.0
    if data.startswith(_NPY_MAGIC):
        return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False)).to(torch.float32)
    raise StoreError("a stored image is neither PNG nor .npy; the database is damaged")
