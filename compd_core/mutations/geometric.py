"""Natural geometric changes: small rotations, small shifts, elastic distortion.

All three resample the image through a per-image sampling grid with bilinear interpolation
and black outside the image. The grids follow torchvision's conventions exactly
(``transforms.v2.functional.rotate`` / ``affine`` / ``elastic``: pixel-centred coordinates,
``align_corners=False``) but are built for the whole batch at once, because torchvision takes
one angle or one displacement field per call; the elastic field's Gaussian smoothing is done
as a filter matrix (41 taps in one matmul, ~100x faster than torchvision's 41x41
convolution). The tests compare each image with torchvision's own functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from compd_core.errors import ConfigError
from compd_core.mutations.base import MutationResult, check_batch, snap_to_grid, uniform
from compd_core.mutations.filters import filter_matrix, gaussian_weights, separable_filter


def _resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _pixel_centres(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(H, W, 2) x/y coordinates of pixel centres, relative to the image centre."""
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=device)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=device)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


def affine_warp(x: torch.Tensor, inverse: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Sample each output pixel p at ``inverse @ p - shift`` in centred pixel coordinates.

    ``inverse`` is (N, 2, 2), ``shift`` (N, 2) in pixels: the inverse map torchvision builds
    for rotate/affine, applied per image.
    """
    _, _, h, w = x.shape
    centres = _pixel_centres(h, w, x.device)
    source = torch.einsum("nij,hwj->nhwi", inverse, centres) - shift.view(-1, 1, 1, 2)
    half_size = torch.tensor([w * 0.5, h * 0.5], dtype=x.dtype, device=x.device)
    return _resample(x, source / half_size)


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image counter-clockwise about its centre (torchvision's sign convention)."""
    theta = torch.deg2rad(degrees.to(x.dtype))
    cos, sin = theta.cos(), theta.sin()
    inverse = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    return affine_warp(x, inverse, torch.zeros(len(degrees), 2, dtype=x.dtype, device=x.device))


def translate(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Move each image's content by (dx, dy) pixels, right and down for positive values."""
    n = shifts.shape[0]
    identity = torch.eye(2, dtype=x.dtype, device=x.device).expand(n, 2, 2)
    return affine_warp(x, identity, shifts.to(x.dtype))


def elastic_warp(x: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """torchvision's elastic resampling with one displacement field (N, H, W, 2) per image.

    Displacements are in normalised coordinates (2 / W per pixel horizontally), as torchvision.
    """
    _, _, h, w = x.shape
    half_size = torch.tensor([w * 0.5, h * 0.5], dtype=x.dtype, device=x.device)
    identity = _pixel_centres(h, w, x.device) / half_size
    return _resample(x, identity + displacement.to(x.dtype))


@dataclass(frozen=True)
class Rotation:
    """Rotate by an angle ~ U(-15, 15) degrees per image."""

    max_degrees: float = 15.0
    name: ClassVar[str] = "rotation"

    def __post_init__(self) -> None:
        if not 0 < self.max_degrees <= 180:
            raise ConfigError(
                f"{self.name}: max_degrees must be in (0, 180], got {self.max_degrees}"
            )

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        degrees = uniform(x.shape[0], -self.max_degrees, self.max_degrees, generator, x.device)
        return MutationResult(snap_to_grid(rotate(x, degrees)), self.name, {"degrees": degrees})


@dataclass(frozen=True)
class Translation:
    """Shift by whole pixels, (dx, dy) uniform over [-2, 2]^2 without (0, 0).

    Whole-pixel shifts keep the digit sharp (bilinear sampling at integer offsets is exact), and
    leaving out (0, 0) means no query is spent on an unchanged image.
    """

    max_shift: int = 2
    name: ClassVar[str] = "translation"

    def __post_init__(self) -> None:
        if self.max_shift < 1:
            raise ConfigError(f"{self.name}: max_shift must be at least 1, got {self.max_shift}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        side = 2 * self.max_shift + 1
        centre = side * side // 2
        picks = torch.randint(
            side * side - 1, (x.shape[0],), generator=generator, device=generator.device
        )
        picks = (picks + (picks >= centre).long()).to(x.device)
        shifts = torch.stack([picks % side, picks // side], dim=1) - self.max_shift
        out = snap_to_grid(translate(x, shifts))
        return MutationResult(out, self.name, {"dx": shifts[:, 0], "dy": shifts[:, 1]})


@dataclass(frozen=True)
class Elastic:
    """Elastic distortion as torchvision's ElasticTransform, alpha ~ U(15, 35) per image.

    Uniform noise in [-1, 1] per pixel and axis is smoothed by a Gaussian of ``sigma`` pixels
    and scaled by alpha / size. On 28x28 digits that moves pixels by 0.65 pixel on average,
    and by at most 1.5 pixels in a typical image (3 in one image of a hundred): the wobble of a
    different hand, not a different digit. (torchvision's default alpha of 50 is ~2x stronger.)
    """

    alpha_range: tuple[float, float] = (15.0, 35.0)
    sigma: float = 5.0
    name: ClassVar[str] = "elastic"

    def __post_init__(self) -> None:
        low, high = self.alpha_range
        if not 0 <= low <= high:
            raise ConfigError(
                f"{self.name}: alpha range must be 0 <= low <= high, got {self.alpha_range}"
            )
        if self.sigma <= 0:
            raise ConfigError(f"{self.name}: sigma must be positive, got {self.sigma}")

    def displacement(
        self, n: int, h: int, w: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image alphas (N,) and displacement fields (N, H, W, 2), drawn in that order."""
        alphas = uniform(n, *self.alpha_range, generator, device)
        noise = torch.rand(n, 2, h, w, generator=generator, device=generator.device)
        noise = noise.mul_(2).sub_(1).to(device)
        smooth = separable_filter(noise, self._smoothing(h, device), self._smoothing(w, device))
        scale = torch.stack([alphas / w, alphas / h], dim=1).view(n, 2, 1, 1)
        return alphas, (smooth * scale).permute(0, 2, 3, 1)

    def _smoothing(self, size: int, device: torch.device) -> torch.Tensor:
        """torchvision's Gaussian (kernel 8 sigma + 1, reflect border) as a filter matrix."""
        kernel = min(int(8 * self.sigma + 1) | 1, 2 * size - 1)  # the border must fold inside
        weights = gaussian_weights(kernel, self.sigma)
        return filter_matrix(size, weights, kernel // 2).to(device, torch.float32)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        n, _, h, w = x.shape
        alphas, field = self.displacement(n, h, w, generator, x.device)
        out = snap_to_grid(elastic_warp(x, field))
        return MutationResult(out, self.name, {"alpha": alphas, "sigma": self.sigma})
