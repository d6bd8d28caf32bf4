"""Natural photometric changes: brightness, contrast and JPEG re-encoding.

Brightness and contrast use torchvision's definitions (``transforms.v2.functional``
``adjust_brightness`` / ``adjust_contrast``) but with one factor per image: torchvision's
functions take a single factor per call, and a per-image Python loop would dominate a
search's time. The tests check each image against torchvision's own function.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from compd_core.errors import ConfigError, InvalidInputError
from compd_core.mutations.base import MutationResult, check_batch, snap_to_grid, uniform

_PER_IMAGE = (-1, 1, 1, 1)


def _check_factor_range(factor_range: tuple[float, float], operator: str) -> None:
    low, high = factor_range
    if not 0 <= low <= high:
        raise ConfigError(
            f"{operator}: factor range must be (low, high) with 0 <= low <= high, "
            f"got {factor_range}"
        )


_LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


def _luminance(x: torch.Tensor) -> torch.Tensor:
    """Grey level of RGB images (N, 3, H, W) -> (N, 1, H, W), without importing torchvision."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _check_channels(x: torch.Tensor, operator: str) -> None:
    if x.shape[1] not in (1, 3):
        raise InvalidInputError(
            f"{operator}: works on grey (1 channel) or RGB (3 channel) images, "
            f"got {x.shape[1]} channels; use the 'dflare' operator set for other images"
        )


def adjust_brightness(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """torchvision's brightness (blend with black) with one factor per image, unclipped."""
    return x * factors.view(_PER_IMAGE)


def adjust_contrast(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """torchvision's contrast (blend with the mean grey level) with one factor per image."""
    grey = _luminance(x) if x.shape[1] == 3 else x
    mean = grey.mean(dim=(1, 2, 3), keepdim=True)
    f = factors.view(_PER_IMAGE)
    return f * x + (1 - f) * mean


@dataclass(frozen=True)
class Brightness:
    """Scale every value by a factor ~ U(0.7, 1.3) per image."""

    factor_range: tuple[float, float] = (0.7, 1.3)
    name: ClassVar[str] = "brightness"

    def __post_init__(self) -> None:
        _check_factor_range(self.factor_range, self.name)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        factors = uniform(x.shape[0], *self.factor_range, generator, x.device)
        out = adjust_brightness(x, factors)
        return MutationResult(snap_to_grid(out), self.name, {"factor": factors})


@dataclass(frozen=True)
class Contrast:
    """Move values toward (factor < 1) or away from the image's mean grey, factor ~ U(0.7, 1.3)."""

    factor_range: tuple[float, float] = (0.7, 1.3)
    name: ClassVar[str] = "contrast"

    def __post_init__(self) -> None:
        _check_factor_range(self.factor_range, self.name)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        _check_channels(x, self.name)
        factors = uniform(x.shape[0], *self.factor_range, generator, x.device)
        out = adjust_contrast(x, factors)
        return MutationResult(snap_to_grid(out), self.name, {"factor": factors})


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode one uint8 (H, W) or (H, W, 3) image as JPEG with Pillow and decode it again."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("L" if image.ndim == 2 else "RGB"))


@dataclass(frozen=True)
class JpegReencode:
    """Save as JPEG with quality ~ U{20..90} and load again: real compression artefacts.

    Pillow encodes one image at a time, so this operator loops over the batch (about 0.1 ms
    per 28x28 digit); torchvision's own JPEG codec is unavailable on this platform.
    """

    quality_range: tuple[int, int] = (20, 90)
    name: ClassVar[str] = "jpeg"

    def __post_init__(self) -> None:
        low, high = self.quality_range
        if not 1 <= low <= high <= 95:
            raise ConfigError(
                f"{self.name}: quality range must satisfy 1 <= low <= high <= 95, "
                f"got {self.quality_range}"
            )

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        _check_channels(x, self.name)
        low, high = self.quality_range
        qualities = torch.randint(
            low, high + 1, (x.shape[0],), generator=generator, device=generator.device
        )
        pixels = x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        pixels = pixels[:, 0] if x.shape[1] == 1 else pixels.transpose(0, 2, 3, 1)
        decoded = np.stack(
            [jpeg_roundtrip(image, q) for image, q in zip(pixels, qualities.tolist(), strict=True)]
        )
        decoded = decoded[:, None] if x.shape[1] == 1 else decoded.transpose(0, 3, 1, 2)
        out = torch.from_numpy(np.ascontiguousarray(decoded)).to(x.device, x.dtype).div_(255.0)
        return MutationResult(out, self.name, {"quality": qualities})
