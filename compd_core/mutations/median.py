"""DFLARE's median blur, computed with a selection network on 8-bit values.

A generic ``torch.median`` over unfolded windows costs about 0.5 us per pixel for a 7x7 window;
a fixed network of min/max operations over the k*k shifted views of the image does the same
job ~8x faster, because every step is one elementwise op over the whole batch. The network is
Batcher's odd-even merge sort, pruned to the comparators that can reach the middle position.
Working on uint8 levels is exact: rounding to the 8-bit grid is monotone, so it commutes with
taking a median, and it quarters the memory traffic.

The border is replicated, as OpenCV's ``medianBlur`` always does (unlike its other filters).

One image (a DFLARE chain's every step) takes another route: levels are never negative, so a
window's median is 0 unless more than half of its values are non-zero. Counting the non-zero
values of every window (two small matrix products) finds the windows that need a partition
at all; on a digit, a black background with a stroke across it, that is a fifth to two
fifths of them, and the filter costs a third to a quarter of partitioning every window.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from compd_core.mutations.base import (
    MutationResult,
    apply_by_kernel,
    check_batch,
    check_kernel_sizes,
    draw_index,
    grey_levels,
    one_image,
    pick_kernels,
)

Comparator = tuple[int, int, bool, bool]  # (low wire, high wire, keep min, keep max)


def batcher_network(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs.

    Applying "put the smaller value on wire i" for each pair, in order, sorts any n values.
    """
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@lru_cache(maxsize=16)
def selection_network(n: int, target: int) -> tuple[Comparator, ...]:
    """The comparators of the sorting network that can influence output wire ``target``.

    Walking the network backwards, a comparator matters when one of its outputs is needed;
    of its two outputs only the needed ones are computed (min, max, or both).
    """
    needed = {target}
    kept: list[Comparator] = []
    for low, high in reversed(batcher_network(n)):
        keep_min, keep_max = low in needed, high in needed
        if keep_min or keep_max:
            kept.append((low, high, keep_min, keep_max))
            needed.update((low, high))
    return tuple(reversed(kept))


def median_filter(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Median over kernel x kernel windows (odd kernel), replicated border, per channel."""
    n, c, h, w = x.shape
    if n == 1 and x.dtype == torch.uint8 and x.device.type == "cpu":
        return torch.from_numpy(median_of_levels(x[0].numpy(), kernel))[None]
    half = kernel // 2
    padded = F.pad(x, (half, half, half, half), mode="replicate")
    if n == 1:  # one image: a partition of its windows beats the network's many calls 3x
        windows = F.unfold(padded.float(), kernel).view(c, kernel * kernel, h * w).numpy()
        middle_values = np.partition(windows, kernel * kernel // 2, axis=1)[:, kernel * kernel // 2]
        return torch.from_numpy(middle_values).view(1, c, h, w).to(x.dtype)
    wires = [padded[:, :, dy : dy + h, dx : dx + w] for dy in range(kernel) for dx in range(kernel)]
    middle = kernel * kernel // 2
    for low, high, keep_min, keep_max in selection_network(kernel * kernel, middle):
        a, b = wires[low], wires[high]
        if keep_min:
            wires[low] = torch.minimum(a, b)
        if keep_max:
            wires[high] = torch.maximum(a, b)
    return wires[middle]


@dataclass(frozen=True)
class _WindowIndex:
    """Flat positions that cut one (C, H, W) image's replicate-padded windows, for a kernel."""

    padding: np.ndarray  # (C * H2 * W2,): where each padded value comes from in the image
    corners: np.ndarray  # (C * H * W,): each window's top-left value in the padded image
    offsets: np.ndarray  # (kernel * kernel,): a window's values relative to its corner
    rows: np.ndarray  # (H, H) float32: counts of a column's window taps, border included
    cols_t: np.ndarray  # (W, W) float32: the same along a row, transposed


def _replicated(size: int, half: int) -> np.ndarray:
    """Source index of each position of a side padded by ``half`` with its edge value."""
    return np.clip(np.arange(-half, size + half), 0, size - 1)


def _box_counts(size: int, half: int) -> np.ndarray:
    """(size, size) float32: how often output i's window of 2 * half + 1 taps reads input j."""
    counts = np.zeros((size, size), dtype=np.float32)
    sources = _replicated(size, half)
    for i in range(size):
        np.add.at(counts[i], sources[i : i + 2 * half + 1], 1.0)
    return counts


@lru_cache(maxsize=16)
def _window_index(c: int, h: int, w: int, kernel: int) -> _WindowIndex:
    half = kernel // 2
    h2, w2 = h + 2 * half, w + 2 * half
    channel = np.arange(c)[:, None, None]
    padding = (channel * h + _replicated(h, half)[:, None]) * w + _replicated(w, half)
    corners = (channel * h2 + np.arange(h)[:, None]) * w2 + np.arange(w)
    offsets = np.arange(kernel)[:, None] * w2 + np.arange(kernel)
    return _WindowIndex(padding.ravel(), corners.ravel(), offsets.ravel(),
                        _box_counts(h, half), np.ascontiguousarray(_box_counts(w, half).T))


def median_of_levels(levels: np.ndarray, kernel: int) -> np.ndarray:
    """Median over kernel x kernel windows (odd kernel) of one (C, H, W) uint8 image,
    replicated border; only windows with more non-zero values than zeros are partitioned.

    The non-zero count of every window is ``rows @ (levels != 0) @ cols.T`` with box-count
    matrices: small integers, exact in float32.
    """
    c, h, w = levels.shape
    middle = kernel * kernel // 2
    index = _window_index(c, h, w, kernel)
    nonzero = index.rows @ (levels != 0).astype(np.float32) @ index.cols_t
    active = np.flatnonzero(nonzero > middle)
    out = np.zeros(c * h * w, dtype=np.uint8)
    if len(active):
        padded = levels.reshape(-1)[index.padding]
        windows = padded[index.corners[active][:, None] + index.offsets]
        out[active] = np.partition(windows, middle, axis=1)[:, middle]
    return out.reshape(c, h, w)


def _to_levels(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)


@dataclass(frozen=True)
class MedianBlur:
    """Median filter with kernel ~ U{1,3,5,7} per image."""

    kernel_sizes: tuple[int, ...] = (1, 3, 5, 7)
    name: ClassVar[str] = "median_blur"

    def __post_init__(self) -> None:
        sizes = check_kernel_sizes(self.kernel_sizes, self.name, odd=True)
        object.__setattr__(self, "kernel_sizes", sizes)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        image = one_image(x)
        if image is not None:
            kernel = self.kernel_sizes[draw_index(len(self.kernel_sizes), generator)]
            levels = grey_levels(image.copy()).astype(np.uint8)
            if kernel > 1:
                levels = median_of_levels(levels, kernel)
            out = np.divide(levels, np.float32(255.0), dtype=np.float32)
            return MutationResult(torch.from_numpy(out[None]), self.name, {"kernel": kernel})
        _, sizes = pick_kernels(self.kernel_sizes, x.shape[0], generator, x.device)
        levels = apply_by_kernel(_to_levels(x), sizes, median_filter)
        out = levels.to(x.dtype).div_(255.0)
        return MutationResult(out, self.name, {"kernel": sizes})
