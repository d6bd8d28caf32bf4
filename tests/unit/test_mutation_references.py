"""DFLARE's operators against straightforward references, bit for bit.

The operators take shortcuts for speed (one image in NumPy, cached filter matrices, a median
that partitions only the windows that can be non-zero). Each reference below is the plain
batched torch recipe, drawing from the generator in the same order; for the same input and
generator state the operator must give the same bits and the same parameters, whether it is
given one image or a batch, grey or colour, on the 8-bit grid or off it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from compd_core.data import load_mnist
from compd_core.mutations import (
    AverageBlur,
    GaussianBlur,
    GaussianNoise,
    MedianBlur,
    MultiplicativeNoise,
    MutationOperator,
    PixelChange,
    SaltPepper,
    get_operators,
    snap_to_grid,
)
from compd_core.mutations.filters import filter_matrix, gaussian_kernel1d

Reference = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, list[dict]]]


def _snap(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def _draw_kernels(sizes: tuple[int, ...], n: int, gen: torch.Generator) -> list[int]:
    return [sizes[i] for i in torch.randint(len(sizes), (n,), generator=gen).tolist()]


def gaussian_noise(x, gen):
    std = math.sqrt(0.1) / 255.0
    noise = torch.randn(x.shape, generator=gen)
    return _snap(noise * std + x), [{"var": 0.1}] * len(x)


def salt_pepper(x, gen):
    n, values = x.shape[0], x[0].numel()
    count = math.ceil(0.004 * values * 0.5)
    positions = torch.randint(values, (n, 2 * count), generator=gen)
    flat = x.reshape(n, values).clone()
    for i in range(n):
        flat[i, positions[i, :count]] = 1.0
        flat[i, positions[i, count:]] = 0.0
    return _snap(flat.view_as(x)), [{"amount": 0.004, "salt": count, "pepper": count}] * n


def multiplicative_noise(x, gen):
    n = x.shape[0]
    mean = torch.rand(n, generator=gen) * 1.0 + -0.5
    var = torch.rand(n, generator=gen) * 0.05 + 0.0
    noise = torch.randn(x.shape, generator=gen)
    noise = noise * var.sqrt().view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)
    params = [{"mean": m, "var": v} for m, v in zip(mean.tolist(), var.tolist())]
    return _snap(noise * x + x), params


def pixel_change(x, gen):
    n, values = x.shape[0], x[0].numel()
    k = torch.randint(1, 10, (n,), generator=gen)
    positions = torch.randint(values, (n, 9), generator=gen)
    levels = torch.randint(256, (n, 9), generator=gen)
    flat = x.reshape(n, values).clone()
    for i in range(n):
        written: dict[int, int] = {}
        for slot in range(int(k[i])):
            position, level = int(positions[i, slot]), int(levels[i, slot])
            written[position] = max(level, written.get(position, -1))
        for position, level in written.items():
            flat[i, position] = torch.tensor(float(level)) / 255.0
    return _snap(flat.view_as(x)), [{"k": v} for v in k.tolist()]


def _separable(x: torch.Tensor, taps: tuple[float, ...], before: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = filter_matrix(h, taps, before).float()
    cols = filter_matrix(w, taps, before).float()
    return (rows[None, None] @ x[None] @ cols.T[None, None])[0]


def _blur(x, gen, sizes, taps):
    kernels = _draw_kernels(sizes, len(x), gen)
    out = torch.stack([_separable(image, *taps(k)) for image, k in zip(x, kernels)])
    return _snap(out), [{"kernel": k} for k in kernels]


def average_blur(x, gen):
    return _blur(x, gen, (1, 2, 3, 4, 5), lambda k: ((1.0 / k,) * k, k // 2))


def gaussian_blur(x, gen):
    return _blur(x, gen, (1, 3, 5, 7), lambda k: (gaussian_kernel1d(k), k // 2))


def median_blur(x, gen):
    kernels = _draw_kernels((1, 3, 5, 7), len(x), gen)
    levels = x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    out = []
    for image, k in zip(levels, kernels):
        c, h, w = image.shape
        padded = F.pad(image[None].float(), (k // 2,) * 4, mode="replicate")
        windows = F.unfold(padded, k).view(c, k * k, h * w)
        out.append(windows.median(dim=1).values.view(c, h, w))
    return torch.stack(out).div(255.0), [{"kernel": k} for k in kernels]


REFERENCES: dict[str, tuple[MutationOperator, Reference]] = {
    "gaussian_noise": (GaussianNoise(), gaussian_noise),
    "salt_pepper": (SaltPepper(), salt_pepper),
    "multiplicative_noise": (MultiplicativeNoise(), multiplicative_noise),
    "pixel_change": (PixelChange(), pixel_change),
    "average_blur": (AverageBlur(), average_blur),
    "gaussian_blur": (GaussianBlur(), gaussian_blur),
    "median_blur": (MedianBlur(), median_blur),
}


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_mnist("test").images[:40]


def _inputs(digits: torch.Tensor) -> list[torch.Tensor]:
    """One digit at a time, a batch, off-grid values, colour and an odd size."""
    noise = torch.Generator().manual_seed(7)
    off_grid = torch.rand(3, 1, 28, 28, generator=noise) * 1.4 - 0.2
    colour = torch.rand(2, 3, 13, 17, generator=noise)
    return [*digits[:8].split(1), digits[8:24], *off_grid.split(1), off_grid, *colour.split(1),
            colour]


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.contiguous().view(torch.int32), b.contiguous().view(torch.int32)
    )


def test_every_dflare_operator_has_a_reference() -> None:
    assert [op.name for op in get_operators("dflare")] == list(REFERENCES)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_operator_gives_the_references_bits_and_parameters(name: str, digits: torch.Tensor) -> None:
    op, reference = REFERENCES[name]
    for case, x in enumerate(_inputs(digits)):
        for seed in range(12):
            gen_op = torch.Generator().manual_seed(seed * 100 + case)
            gen_ref = torch.Generator().manual_seed(seed * 100 + case)
            result = op(x, gen_op)
            expected, params = reference(x, gen_ref)
            assert _same_bits(result.images, expected), (name, case, seed)
            assert result.params == params
            # Both consumed the generator alike: the next draw is the same.
            assert torch.equal(torch.rand(1, generator=gen_op), torch.rand(1, generator=gen_ref))


@pytest.mark.parametrize("name", list(REFERENCES))
def test_operator_follows_the_reference_along_a_chain(name: str, digits: torch.Tensor) -> None:
    """Forty steps, each on the last output, as a DFLARE chain applies them."""
    op, reference = REFERENCES[name]
    gen_op, gen_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    mine, theirs = digits[5:6], digits[5:6]
    for _ in range(40):
        mine, theirs = op(mine, gen_op).images, reference(theirs, gen_ref)[0]
        assert _same_bits(mine, theirs)
    assert not torch.equal(mine, digits[5:6])


def test_median_blur_of_a_dense_image_matches_the_reference() -> None:
    """Windows with mostly non-zero values are the slow case the shortcut must still get right."""
    dense = torch.randint(1, 256, (1, 2, 20, 20), generator=torch.Generator().manual_seed(1)) / 255
    half_zero = dense.clone()
    half_zero[..., ::2, :] = 0.0  # every window holds about as many zeros as non-zeros
    for x in (dense, half_zero):
        for seed in range(8):
            result = MedianBlur()(x, torch.Generator().manual_seed(seed))
            expected, params = median_blur(x, torch.Generator().manual_seed(seed))
            assert _same_bits(result.images, expected) and result.params == params


def test_snap_to_grid_of_one_image_or_a_view_matches_the_torch_recipe_in_place() -> None:
    values = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(2)) * 1.4 - 0.2
    for x in (values.clone(), values.clone().transpose(2, 3)):
        expected = _snap(x)
        snapped = snap_to_grid(x)
        assert snapped.data_ptr() == x.data_ptr() and _same_bits(x, expected)
