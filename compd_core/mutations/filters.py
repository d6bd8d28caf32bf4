"""DFLARE's box and Gaussian blurs, as per-image separable filter matrices.

Both filters are separable and linear, so blurring an (H, W) image is ``A @ x @ B.T`` with a
banded H x H matrix A and W x W matrix B whose rows hold the kernel weights, the border
already folded in. Stacking one matrix per image lets a single batched matmul blur every image
with its own kernel size: no grouping, no padding, and on 28x28 digits about 5x faster than a
padded convolution.

The conventions are OpenCV's, which DFLARE calls: BORDER_REFLECT_101 (torch's ``"reflect"``)
and an even box kernel anchored at ``k // 2``, so its window covers ``k // 2`` pixels before
the centre and ``k - 1 - k // 2`` after. Kernel size 1 is the identity, as in DFLARE; a search
treats such an unchanged mutant as nothing new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import torch

from compd_core.errors import InvalidInputError
from compd_core.mutations.base import (
    MutationResult,
    ParamColumn,
    check_batch,
    check_kernel_sizes,
    draw_index,
    one_image,
    pick_kernels,
    snap_array,
    snap_to_grid,
)


def opencv_gaussian_sigma(kernel: int) -> float:
    """The sigma OpenCV derives from a kernel size when none is given."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def gaussian_weights(kernel: int, sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian weights of odd length ``kernel``."""
    offsets = [i - (kernel - 1) / 2 for i in range(kernel)]
    raw = [math.exp(-0.5 * (d / sigma) ** 2) for d in offsets]
    total = sum(raw)
    return tuple(r / total for r in raw)


def gaussian_kernel1d(kernel: int) -> tuple[float, ...]:
    """The 1-D weights GaussianBlur uses for ``kernel``: sigma derived as OpenCV does."""
    return gaussian_weights(kernel, opencv_gaussian_sigma(kernel))


def _reflect101(position: int, size: int) -> int:
    if position < 0:
        position = -position
    if position >= size:
        position = 2 * (size - 1) - position
    return position


@lru_cache(maxsize=256)
def filter_matrix(size: int, weights: tuple[float, ...], before: int) -> torch.Tensor:
    """(size, size) float64 matrix applying a 1-D kernel along one axis, reflect-101 border.

    Output i is the weighted sum of inputs i - before .. i - before + len(weights) - 1, with
    out-of-range positions mirrored back inside (without repeating the edge pixel).
    """
    after = len(weights) - 1 - before
    if max(before, after) >= size:
        raise InvalidInputError(
            f"a kernel of {len(weights)} taps does not fit an image side of {size} pixels; "
            f"use kernels smaller than {2 * size - 1}"
        )
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for i in range(size):
        for tap, weight in enumerate(weights):
            matrix[i, _reflect101(i - before + tap, size)] += weight
    return matrix


def separable_filter(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ image @ cols.T`` for every channel; rows (H, H) or (N, H, H), cols likewise."""
    if rows.ndim == 3:
        rows, cols = rows.unsqueeze(1), cols.unsqueeze(1)
    return rows @ x @ cols.transpose(-1, -2)


def _box_weights(kernel: int) -> tuple[tuple[float, ...], int]:
    return (1.0 / kernel,) * kernel, kernel // 2


def _gaussian_taps(kernel: int) -> tuple[tuple[float, ...], int]:
    return gaussian_kernel1d(kernel), kernel // 2


@lru_cache(maxsize=64)
def _matrix_bank(kind: str, kernels: tuple[int, ...], size: int) -> torch.Tensor:
    """(len(kernels), size, size) float32: one filter matrix per kernel choice."""
    taps = _box_weights if kind == "box" else _gaussian_taps
    return torch.stack([filter_matrix(size, *taps(k)) for k in kernels]).float()


def _blur_per_image(
    x: torch.Tensor, kind: str, kernels: tuple[int, ...], picks: torch.Tensor
) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = _matrix_bank(kind, kernels, h).to(x.device, x.dtype)[picks]
    cols = _matrix_bank(kind, kernels, w).to(x.device, x.dtype)[picks]
    return separable_filter(x, rows, cols)


@lru_cache(maxsize=64)
def _one_image_matrices(kind: str, kernels: tuple[int, ...], size: int) -> tuple[torch.Tensor, ...]:
    """Per kernel choice, the (1, 1, size, size) matrix ``_blur_per_image`` builds for one
    image: the same shape and layout, so the same matmul and the same bits."""
    bank = _matrix_bank(kind, kernels, size)
    return tuple(bank[i : i + 1].unsqueeze(1).clone() for i in range(len(kernels)))


def _blur(
    x: torch.Tensor, kind: str, kernels: tuple[int, ...], generator: torch.Generator
) -> tuple[torch.Tensor, ParamColumn]:
    """Blur each image with a kernel drawn from ``kernels``; returns the snapped batch and the
    kernel sizes (one int for a single CPU image, which skips the per-call matrix gathers)."""
    if one_image(x) is None:
        picks, sizes = pick_kernels(kernels, x.shape[0], generator, x.device)
        return snap_to_grid(_blur_per_image(x, kind, kernels, picks)), sizes
    pick = draw_index(len(kernels), generator)
    h, w = x.shape[-2:]
    rows = _one_image_matrices(kind, kernels, h)[pick]
    cols = _one_image_matrices(kind, kernels, w)[pick]
    out = separable_filter(x, rows, cols)
    snap_array(out.numpy())
    return out, kernels[pick]


@dataclass(frozen=True)
class AverageBlur:
    """Box filter (OpenCV ``blur``) with kernel ~ U{1..5} per image."""

    kernel_sizes: tuple[int, ...] = (1, 2, 3, 4, 5)
    name: ClassVar[str] = "average_blur"

    def __post_init__(self) -> None:
        sizes = check_kernel_sizes(self.kernel_sizes, self.name, odd=False)
        object.__setattr__(self, "kernel_sizes", sizes)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        out, sizes = _blur(x, "box", self.kernel_sizes, generator)
        return MutationResult(out, self.name, {"kernel": sizes})


@dataclass(frozen=True)
class GaussianBlur:
    """Gaussian filter with kernel ~ U{1,3,5,7} per image and OpenCV's derived sigma.

    OpenCV's 8-bit path swaps in fixed binomial weights for kernels up to 7 when no sigma is
    given; the project follows the sigma formula DFLARE's description names (for kernel 3 the
    weights are 0.239/0.522/0.239 instead of 0.25/0.5/0.25).
    """

    kernel_sizes: tuple[int, ...] = (1, 3, 5, 7)
    name: ClassVar[str] = "gaussian_blur"

    def __post_init__(self) -> None:
        sizes = check_kernel_sizes(self.kernel_sizes, self.name, odd=True)
        object.__setattr__(self, "kernel_sizes", sizes)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        out, sizes = _blur(x, "gaussian", self.kernel_sizes, generator)
        return MutationResult(out, self.name, {"kernel": sizes})
