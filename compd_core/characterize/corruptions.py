"""Natural corruptions at five severities, in the spirit of MNIST-C and CIFAR-10-C.

Hu et al. (CAIN 2023) measure disagreement under distribution shift by corrupting the test set;
these are the shifts. Every corruption takes a batch (N, C, H, W) in [0, 1] with C = 1 (grey)
or C = 3 (colour), a severity 1..5 and a ``torch.Generator``, and returns a batch of the same
shape clipped to [0, 1] and snapped to the 8-bit grid, so a corrupted image survives a round
trip through PNG.

The random draws of a corruption have shapes that do not depend on the severity. With the same
generator state, severity s therefore reuses the random choices of severity s - 1 (same noise
field, same line positions, same rotation sign) and only turns up the strength: the shift grows
with severity image by image, not just on average.

Parameters (one column per severity; units in the last column):

| corruption | family | parameter | 1 | 2 | 3 | 4 | 5 | unit |
|---|---|---|---|---|---|---|---|---|
| gaussian_noise | noise | sigma | 0.04 | 0.08 | 0.12 | 0.18 | 0.26 | std of added N(0, sigma) |
| shot_noise | noise | photons | 60 | 30 | 15 | 8 | 4 | Poisson(x * photons) / photons |
| impulse_noise | noise | amount | 0.02 | 0.04 | 0.07 | 0.11 | 0.16 | fraction of values set to 0 or 1 |
| gaussian_blur | blur | sigma | 0.6 | 0.8 | 1.0 | 1.25 | 1.5 | pixels |
| glass_blur | blur | (sigma, max_delta, iterations) | (0.6, 1, 1) | (0.6, 1, 2) | (0.6, 2, 1) | (0.6, 2, 2) | (0.6, 3, 2) | pixels, pixels, count |
| motion_blur | blur | length | 3 | 5 | 7 | 9 | 11 | pixels along a random direction |
| pixelate | blur | factor | 0.85 | 0.7 | 0.6 | 0.45 | 0.3 | side kept before nearest upsampling |
| rotate | affine | angle | 10 | 20 | 30 | 40 | 50 | degrees, random sign |
| shear | affine | shear | 0.2 | 0.4 | 0.6 | 0.8 | 1.0 | horizontal shear factor, random sign |
| scale | affine | scale | 0.9 | 0.8 | 0.7 | 0.6 | 0.5 | zoom-out factor about the centre |
| translate | affine | distance | 1 | 2 | 3 | 4 | 5 | pixels, random direction |
| brightness | photometric | delta | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 | added to every value |
| contrast | photometric | factor | 0.6 | 0.45 | 0.3 | 0.2 | 0.1 | torchvision adjust_contrast factor |
| fog | photometric | strength | 0.2 | 0.4 | 0.6 | 0.8 | 1.0 | weight of a fractal noise layer |
| stripe | overlay | strength | 0.2 | 0.35 | 0.5 | 0.7 | 1.0 | inversion x + s (1 - 2x) of a 3-pixel vertical band |
| zigzag | overlay | lines | 1 | 2 | 3 | 4 | 5 | 1-pixel zigzag lines drawn in white |
| dotted_line | overlay | lines | 1 | 2 | 3 | 4 | 5 | dotted lines drawn in white |
| canny_edges | overlay | alpha | 0.2 | 0.4 | 0.6 | 0.8 | 1.0 | blend weight of the Canny edge map |

Geometric corruptions fill uncovered pixels with black, as MNIST-C does. Colour images are
corrupted channel by channel, except ``canny_edges`` (edges of the luminance) and the overlays
(white on every channel).
"""

from __future__ import annotations

import compd_core._torchvision_compat  # noqa: F401  (must precede torchvision)

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from compd_core.errors import ConfigError, InvalidInputError

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
_LUMA = (0.299, 0.587, 0.114)


def snap_to_grid(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the 8-bit grid (the project's convention for any mutation)."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


class Corruption(ABC):
    """One kind of natural shift. Subclasses set the class attributes and write ``_corrupt``."""

    name: ClassVar[str]
    family: ClassVar[str]
    parameter: ClassVar[str]
    unit: ClassVar[str]
    levels: ClassVar[tuple[Any, ...]]  # one parameter value per severity 1..5

    def apply(self, x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        """Corrupt a batch at ``severity`` (1..5); the result is clipped and 8-bit snapped."""
        _check_batch(x, self.name)
        check_severities([severity])
        if len(x) == 0:
            return x.clone()
        out = self._corrupt(x.to(torch.float32), self.levels[int(severity) - 1], generator)
        return snap_to_grid(out)

    @abstractmethod
    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        """The corruption itself at one parameter value; may leave values outside [0, 1]."""


def _check_batch(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise InvalidInputError(
            f"{name}: expected a float batch (N, C, H, W) in [0, 1], got "
            f"{getattr(x, 'shape', type(x).__name__)}"
        )
    if x.shape[1] not in (1, 3):
        raise InvalidInputError(
            f"{name}: corruptions work on grey (C=1) or colour (C=3) images, got C={x.shape[1]}"
        )


def _uniform(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator)


def _random_sign(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.where(_uniform((n,), generator) < 0.5, -1.0, 1.0)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _depthwise(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve image i (every channel) with its own kernel ``kernels[i]`` (k, k), same size."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels.repeat_interleave(c, dim=0).unsqueeze(1)
    padded = F.pad(x.reshape(1, n * c, h, w), (k // 2,) * 4, mode="replicate")
    return F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur with a kernel of +-3 sigma, capped so that reflect padding fits small images."""
    size = min(2 * math.ceil(3 * sigma) + 1, 2 * min(x.shape[-2:]) - 1)
    return TF.gaussian_blur(x, [size, size], [sigma, sigma])


def _affine(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp image i by the 2x3 matrix ``matrices[i]``, which maps output to input pixels.

    Pixel coordinates are centred on the image. torchvision's ``affine`` takes one set of
    parameters per call; a per-image random sign or direction needs one matrix per image,
    which ``affine_grid`` applies in one vectorised call.
    """
    h, w = x.shape[-2:]
    to_unit = torch.tensor([[2.0 / w, 0.0], [0.0, 2.0 / h]])
    to_pixel = torch.tensor([[w / 2.0, 0.0], [0.0, h / 2.0]])
    linear = to_unit @ matrices[:, :, :2] @ to_pixel
    shift = (to_unit @ matrices[:, :, 2:]).squeeze(-1)
    theta = torch.cat([linear, shift.unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _matrices(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor,
              tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Stack per-image coefficients into (N, 2, 3) matrices [[a, b, tx], [c, d, ty]]."""
    return torch.stack([torch.stack([a, b, tx], 1), torch.stack([c, d, ty], 1)], 1)


def _segment_distance(
    points: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of every pixel to every segment, and the arc position of its closest point.

    points (P, 2); start/end (N, S, 2) -> two (N, S, P) tensors. The squared distance is
    expanded into dot products so that the (N, S, P) work is two matrix products and a few
    element-wise operations.
    """
    d = end - start
    dd = (d * d).sum(-1, keepdim=True).clamp_min(1e-9)
    proj = torch.baddbmm(-(start * d).sum(-1, keepdim=True), d, points.t().expand(len(d), 2, -1))
    t = (proj / dd).clamp_(0.0, 1.0)
    dist2 = torch.baddbmm(
        (start * start).sum(-1, keepdim=True) + (points * points).sum(-1),
        start, points.t().expand(len(d), 2, -1), alpha=-2.0,
    )
    dist2.addcmul_(t, proj, value=-2.0).addcmul_(t * t, dd.expand_as(t)).clamp_min_(0.0)
    return dist2.sqrt_(), t.mul_(dd.sqrt())


def _pixel_centres(h: int, w: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([cols.flatten(), rows.flatten()], dim=-1).to(torch.float32)


def _draw_white(x: torch.Tensor, ink: torch.Tensor) -> torch.Tensor:
    """Lay white ink (N, H*W) in [0, 1] over every channel."""
    n, _, h, w = x.shape
    return torch.maximum(x, ink.view(n, 1, h, w))


# ---------------------------------------------------------------- noise


class GaussianNoise(Corruption):
    name = "gaussian_noise"
    family = "noise"
    parameter = "sigma"
    unit = "std of added N(0, sigma)"
    levels = (0.04, 0.08, 0.12, 0.18, 0.26)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return x + level * torch.randn(x.shape, generator=generator)


class ShotNoise(Corruption):
    """Photon noise: the fewer photons, the noisier; black stays black, as in a real sensor."""

    name = "shot_noise"
    family = "noise"
    parameter = "photons"
    unit = "Poisson(x * photons) / photons"
    levels = (60, 30, 15, 8, 4)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return torch.poisson(x * level, generator=generator) / level


class ImpulseNoise(Corruption):
    name = "impulse_noise"
    family = "noise"
    parameter = "amount"
    unit = "fraction of values set to 0 or 1"
    levels = (0.02, 0.04, 0.07, 0.11, 0.16)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        hit = _uniform(x.shape, generator) < level
        salt = (_uniform(x.shape, generator) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)


# ---------------------------------------------------------------- blur


class GaussianBlur(Corruption):
    name = "gaussian_blur"
    family = "blur"
    parameter = "sigma"
    unit = "pixels"
    levels = (0.6, 0.8, 1.0, 1.25, 1.5)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return _gaussian_blur(x, float(level))


class GlassBlur(Corruption):
    """Frosted glass: blur, let every pixel take a random neighbour's value, blur again.

    MNIST-C swaps pixel pairs in a Python loop; drawing a source offset per pixel gives the
    same local scrambling in one gather.
    """

    name = "glass_blur"
    family = "blur"
    parameter = "(sigma, max_delta, iterations)"
    unit = "pixels, pixels, count"
    levels = ((0.6, 1, 1), (0.6, 1, 2), (0.6, 2, 1), (0.6, 2, 2), (0.6, 3, 2))
    _MAX_ITERATIONS = 2

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        sigma, delta, iterations = level
        n, c, h, w = x.shape
        draws = _uniform((self._MAX_ITERATIONS, n, 2, h, w), generator)
        out = _gaussian_blur(x, sigma)
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        for step in range(iterations):
            offsets = torch.floor(draws[step] * (2 * delta + 1)).long() - delta
            src_r = (rows + offsets[:, 0]).clamp(0, h - 1)
            src_c = (cols + offsets[:, 1]).clamp(0, w - 1)
            index = (src_r * w + src_c).view(n, 1, h * w).expand(n, c, h * w)
            out = out.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
        return _gaussian_blur(out, sigma)


class MotionBlur(Corruption):
    """Camera shake: average along a line of a random direction per image."""

    name = "motion_blur"
    family = "blur"
    parameter = "length"
    unit = "pixels along a random direction"
    levels = (3, 5, 7, 9, 11)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        angle = _uniform((len(x),), generator) * math.pi
        half = level // 2
        offs = torch.arange(-half, half + 1, dtype=torch.float32)
        v, u = torch.meshgrid(offs, offs, indexing="ij")
        cos, sin = angle.cos().view(-1, 1, 1), angle.sin().view(-1, 1, 1)
        along = u * cos + v * sin
        across = (-u * sin + v * cos).abs()
        kernels = (1.0 - across).clamp_min(0.0) * (along.abs() <= half + 1e-6)
        kernels = kernels / kernels.sum((1, 2), keepdim=True)
        return _depthwise(x, kernels)


class Pixelate(Corruption):
    name = "pixelate"
    family = "blur"
    parameter = "factor"
    unit = "side kept before nearest upsampling"
    levels = (0.85, 0.7, 0.6, 0.45, 0.3)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(1, round(h * level)), max(1, round(w * level))),
                              mode="area")
        return F.interpolate(small, size=(h, w), mode="nearest")


# ---------------------------------------------------------------- affine


class Rotate(Corruption):
    name = "rotate"
    family = "affine"
    parameter = "angle"
    unit = "degrees, random sign"
    levels = (10, 20, 30, 40, 50)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        theta = _random_sign(len(x), generator) * math.radians(level)
        cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
        return _affine(x, _matrices(cos, -sin, sin, cos, zero, zero))


class Shear(Corruption):
    name = "shear"
    family = "affine"
    parameter = "shear"
    unit = "horizontal shear factor, random sign"
    levels = (0.2, 0.4, 0.6, 0.8, 1.0)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        s = _random_sign(len(x), generator) * level
        one, zero = torch.ones_like(s), torch.zeros_like(s)
        return _affine(x, _matrices(one, s, zero, one, zero, zero))


class Scale(Corruption):
    """Zoom out about the centre; the digit shrinks and the border fills with black."""

    name = "scale"
    family = "affine"
    parameter = "scale"
    unit = "zoom-out factor about the centre"
    levels = (0.9, 0.8, 0.7, 0.6, 0.5)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return TF.affine(
            x, angle=0.0, translate=[0.0, 0.0], scale=float(level), shear=[0.0, 0.0],
            interpolation=TF.InterpolationMode.BILINEAR, fill=[0.0] * x.shape[1],
        )


class Translate(Corruption):
    name = "translate"
    family = "affine"
    parameter = "distance"
    unit = "pixels, random direction"
    levels = (1, 2, 3, 4, 5)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        direction = _uniform((len(x),), generator) * (2 * math.pi)
        tx, ty = level * direction.cos(), level * direction.sin()
        one, zero = torch.ones_like(tx), torch.zeros_like(tx)
        return _affine(x, _matrices(one, zero, zero, one, tx, ty))


# ---------------------------------------------------------------- photometric


class Brightness(Corruption):
    name = "brightness"
    family = "photometric"
    parameter = "delta"
    unit = "added to every value"
    levels = (0.1, 0.2, 0.3, 0.4, 0.5)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return x + level


class Contrast(Corruption):
    name = "contrast"
    family = "photometric"
    parameter = "factor"
    unit = "torchvision adjust_contrast factor"
    levels = (0.6, 0.45, 0.3, 0.2, 0.1)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        return TF.adjust_contrast(x, float(level))


class Fog(Corruption):
    """A smooth fractal haze over the image, renormalised as MNIST-C's fog does."""

    name = "fog"
    family = "photometric"
    parameter = "strength"
    unit = "weight of a fractal noise layer"
    levels = (0.2, 0.4, 0.6, 0.8, 1.0)
    _ROUGHNESS = 0.6  # amplitude ratio between successive octaves

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        haze = torch.zeros((n, 1, h, w))
        octaves = max(1, math.ceil(math.log2(max(h, w))) - 1)
        for octave in range(octaves):
            cells = 2 ** (octave + 1)
            coarse = _uniform((n, 1, cells, cells), generator)
            haze += self._ROUGHNESS**octave * F.interpolate(
                coarse, size=(h, w), mode="bicubic", align_corners=False
            )
        low = haze.amin((2, 3), keepdim=True)
        high = haze.amax((2, 3), keepdim=True)
        haze = (haze - low) / (high - low).clamp_min(1e-6)
        peak = x.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)
        return (x + level * haze) * peak / (peak + level)


# ---------------------------------------------------------------- overlays


class Stripe(Corruption):
    """Partly invert a 3-pixel vertical band centred on a random column of the middle half."""

    name = "stripe"
    family = "overlay"
    parameter = "strength"
    unit = "inversion x + s (1 - 2x) of a 3-pixel vertical band"
    levels = (0.2, 0.35, 0.5, 0.7, 1.0)
    _WIDTH = 3

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        w = x.shape[-1]
        centre = w / 4 + _uniform((len(x),), generator).view(-1, 1) * (w / 2)
        left = torch.floor(centre - self._WIDTH / 2)
        cols = torch.arange(w).view(1, w)
        band = ((cols >= left) & (cols < left + self._WIDTH)).view(len(x), 1, 1, w)
        return torch.where(band, x + level * (1.0 - 2.0 * x), x)


class _Lines(Corruption):
    """Up to five random polylines, the first ``level`` of them drawn (nested by severity)."""

    family = "overlay"
    parameter = "lines"
    levels = (1, 2, 3, 4, 5)
    _MAX_LINES = 5
    _VERTICES = 2
    _THICKNESS = 0.5  # half-width in pixels of the ink

    def _polylines(self, n: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
        """Vertices (N, lines, vertices, 2) in pixel coordinates (x, y)."""
        raw = _uniform((n, self._MAX_LINES, self._VERTICES, 2), generator)
        return raw * torch.tensor([w - 1.0, h - 1.0])

    def _ink(self, distance: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        return (1.0 - (distance - self._THICKNESS).clamp_min(0.0)).clamp(0.0, 1.0)

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        vertices = self._polylines(n, h, w, generator)
        points = _pixel_centres(h, w)
        ink = torch.zeros((n, h * w))
        for line in range(level):
            v = vertices[:, line]
            distance, position = _segment_distance(points, v[:, :-1], v[:, 1:])
            ink = torch.maximum(ink, self._ink(distance, position).amax(dim=1))
        return _draw_white(x, ink)


class Zigzag(_Lines):
    """Lines across a third to two thirds of the width, turning between two heights."""

    name = "zigzag"
    unit = "1-pixel zigzag lines drawn in white"
    _VERTICES = 5
    _THICKNESS = 0.0

    def _polylines(self, n: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
        raw = _uniform((n, self._MAX_LINES, 4), generator)
        span = (1.0 + raw[..., 3:4]) / 3.0 * (w - 1)
        xs = raw[..., :1] * (w - 1 - span) + torch.linspace(0, 1, self._VERTICES) * span
        base = raw[..., 1:2] * (h - 1)
        peak = (base + (raw[..., 2:3] - 0.5) * (h / 2)).clamp(0, h - 1)
        ys = torch.where(torch.arange(self._VERTICES) % 2 == 0, base, peak)
        return torch.stack([xs, ys], dim=-1)


class DottedLine(_Lines):
    """Straight lines of round dots, one every three pixels."""

    name = "dotted_line"
    unit = "dotted lines drawn in white"
    _PERIOD = 3.0

    def _ink(self, distance: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        along = torch.remainder(position, self._PERIOD)
        along = torch.minimum(along, self._PERIOD - along)
        radius = torch.sqrt(distance**2 + along**2)
        return (1.5 - radius).clamp(0.0, 1.0)


class CannyEdges(Corruption):
    """Blend the image toward its Canny edge map (at severity 5, the edges alone, as MNIST-C).

    Canny as usual: Gaussian smoothing, Sobel gradients, non-maximum suppression along the
    gradient direction, double threshold (relative to each image's strongest edge) and
    hysteresis by repeated 3x3 dilation of strong edges into weak ones.
    """

    name = "canny_edges"
    family = "overlay"
    parameter = "alpha"
    unit = "blend weight of the Canny edge map"
    levels = (0.2, 0.4, 0.6, 0.8, 1.0)
    _SIGMA = 0.8
    _LOW, _HIGH = 0.1, 0.3
    _HYSTERESIS_STEPS = 8

    def _corrupt(self, x: torch.Tensor, level: Any, generator: torch.Generator) -> torch.Tensor:
        edges = canny(_luminance(x), self._SIGMA, self._LOW, self._HIGH, self._HYSTERESIS_STEPS)
        return (1.0 - level) * x + level * edges.expand_as(x)


def canny(
    gray: torch.Tensor, sigma: float, low: float, high: float, hysteresis_steps: int
) -> torch.Tensor:
    """Binary Canny edges of a grey batch (N, 1, H, W); thresholds relative to the max gradient."""
    smooth = _gaussian_blur(gray, sigma)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, sobel.view(1, 1, 3, 3))
    gy = F.conv2d(padded, sobel.t().contiguous().view(1, 1, 3, 3))
    magnitude = torch.hypot(gx, gy)
    # Direction bins 0, 45, 90, 135 degrees; y grows downwards (row index).
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180.0
    bins = torch.round(angle / 45.0).long() % 4
    steps = ((0, 1), (1, 1), (1, 0), (1, -1))  # (dy, dx) along each bin's gradient
    h, w = gray.shape[-2:]
    mp = F.pad(magnitude, (1, 1, 1, 1))
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    for b, (dy, dx) in enumerate(steps):
        forward = mp[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        backward = mp[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (bins == b) & (magnitude >= forward) & (magnitude >= backward)
    thin = magnitude * keep
    peak = thin.amax((2, 3), keepdim=True).clamp_min(1e-6)
    strong = thin >= high * peak
    weak = thin >= low * peak
    for _ in range(hysteresis_steps):
        strong = weak & (F.max_pool2d(strong.float(), 3, stride=1, padding=1) > 0)
    return strong.to(gray.dtype)


# ---------------------------------------------------------------- registry

CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        GaussianNoise(), ShotNoise(), ImpulseNoise(),
        GaussianBlur(), GlassBlur(), MotionBlur(), Pixelate(),
        Rotate(), Shear(), Scale(), Translate(),
        Brightness(), Contrast(), Fog(),
        Stripe(), Zigzag(), DottedLine(), CannyEdges(),
    )
}


def corruption_names() -> tuple[str, ...]:
    return tuple(CORRUPTIONS)


def resolve_corruptions(names: Iterable[str] | None) -> tuple[Corruption, ...]:
    """Look up corruptions by name (None or 'all' for every one), in the order given."""
    wanted = list(names) if names is not None else ["all"]
    if wanted == ["all"]:
        return tuple(CORRUPTIONS.values())
    unknown = [n for n in wanted if n not in CORRUPTIONS]
    if unknown:
        raise ConfigError(
            f"unknown corruption(s) {', '.join(map(repr, unknown))}; valid names: "
            f"{', '.join(CORRUPTIONS)} (or 'all')"
        )
    if not wanted:
        raise ConfigError(f"no corruption named; choose from: {', '.join(CORRUPTIONS)}")
    return tuple(CORRUPTIONS[n] for n in dict.fromkeys(wanted))


def check_severities(severities: Iterable[int]) -> tuple[int, ...]:
    """Severities as a sorted tuple without repeats, or ``ConfigError`` naming the valid range."""
    values = list(severities)
    bad = [
        s for s in values
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or int(s) not in SEVERITIES
    ]
    if bad or not values:
        raise ConfigError(
            f"severities must be whole numbers from 1 to 5 (valid: 1, 2, 3, 4, 5); got "
            f"{', '.join(map(str, bad)) if bad else 'none'}"
        )
    return tuple(sorted({int(s) for s in values}))


def parameter_table() -> list[dict[str, Any]]:
    """The parameter table as rows, for CSV export and the dashboard."""
    return [
        {
            "corruption": c.name,
            "family": c.family,
            "parameter": c.parameter,
            **{f"severity_{s}": c.levels[s - 1] for s in SEVERITIES},
            "unit": c.unit,
        }
        for c in CORRUPTIONS.values()
    ]
