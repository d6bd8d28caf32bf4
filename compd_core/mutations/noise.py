"""DFLARE's four value-level operators: additive, salt-and-pepper, multiplicative, pixel change.

DFLARE states its parameters in 0..255 grey levels; images here are in [0, 1], so additive
amounts are divided by 255 (multiplicative noise is scale-free and needs no conversion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from compd_core.errors import ConfigError
from compd_core.mutations.base import (
    MutationResult,
    check_batch,
    one_image,
    snap_array,
    snap_to_grid,
    uniform,
)

_LEVELS = 256


def _normal(shape: torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@dataclass(frozen=True)
class GaussianNoise:
    """Add N(0, var) to every value; DFLARE's var = 0.1 grey levels squared.

    With a standard deviation of about 0.32 grey levels, roughly one value in nine moves by one
    level once snapped to the 8-bit grid: a faint perturbation that rarely changes a label.
    """

    var: float = 0.1  # in grey levels squared (0..255 scale), as DFLARE
    name: ClassVar[str] = "gaussian_noise"

    def __post_init__(self) -> None:
        if self.var <= 0:
            raise ConfigError(f"{self.name}: var must be positive, got {self.var}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        std = math.sqrt(self.var) / 255.0
        out = _normal(x.shape, generator, x.device)
        image = one_image(x)
        if image is None:
            snap_to_grid(out.mul_(std).add_(x))
        else:
            values = out.numpy()
            snap_array(np.add(np.multiply(values, std, out=values), image, out=values))
        return MutationResult(out, self.name, {"var": self.var})


@dataclass(frozen=True)
class SaltPepper:
    """Set ceil(amount * values / 2) random values to 1 and as many to 0.

    Positions are drawn with replacement, salt first and pepper second, so a position drawn
    for both ends up black, as in the usual NumPy recipe DFLARE follows.
    """

    amount: float = 0.004  # fraction of all values (C*H*W) that are replaced
    name: ClassVar[str] = "salt_pepper"

    def __post_init__(self) -> None:
        if not 0 < self.amount <= 1:
            raise ConfigError(f"{self.name}: amount must be in (0, 1], got {self.amount}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        n = x.shape[0]
        values = x[0].numel()
        count = math.ceil(self.amount * values * 0.5)
        positions = torch.randint(
            values, (n, 2 * count), generator=generator, device=generator.device
        ).to(x.device)
        image = one_image(x)
        if image is None:
            flat = x.reshape(n, values).clone()
            flat.scatter_(1, positions[:, :count], 1.0)
            flat.scatter_(1, positions[:, count:], 0.0)
            out = snap_to_grid(flat.view_as(x))
        else:
            copy, drawn = image.flatten(), positions.numpy()[0]
            copy[drawn[:count]] = 1.0
            copy[drawn[count:]] = 0.0
            out = torch.from_numpy(snap_array(copy).reshape(1, *image.shape))
        columns = {"amount": self.amount, "salt": count, "pepper": count}
        return MutationResult(out, self.name, columns)


@dataclass(frozen=True)
class MultiplicativeNoise:
    """x + x * n with n ~ N(mean, var) per value; mean and var drawn once per image."""

    mean_range: tuple[float, float] = (-0.5, 0.5)
    var_range: tuple[float, float] = (0.0, 0.05)
    name: ClassVar[str] = "multiplicative_noise"

    def __post_init__(self) -> None:
        if self.mean_range[0] > self.mean_range[1] or self.var_range[0] > self.var_range[1]:
            raise ConfigError(f"{self.name}: ranges must be (low, high) with low <= high")
        if self.var_range[0] < 0:
            raise ConfigError(f"{self.name}: var must be non-negative, got {self.var_range}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        n = x.shape[0]
        mean = uniform(n, *self.mean_range, generator, x.device)
        var = uniform(n, *self.var_range, generator, x.device)
        per_image = (-1, 1, 1, 1)
        noise = _normal(x.shape, generator, x.device)
        image = one_image(x)
        if image is None:
            noise.mul_(var.sqrt().view(per_image)).add_(mean.view(per_image))
            snap_to_grid(noise.mul_(x).add_(x))
        else:
            values = noise.numpy()
            np.multiply(values, np.sqrt(var.numpy()[0]), out=values)
            np.add(values, mean.numpy()[0], out=values)
            snap_array(np.add(np.multiply(values, image, out=values), image, out=values))
        return MutationResult(noise, self.name, {"mean": mean, "var": var})


@dataclass(frozen=True)
class PixelChange:
    """Set k ~ U{1..max_values} randomly placed values to random grey levels.

    Every image draws ``max_values`` slots and keeps its first k; positions may repeat, and a
    repeated position takes the largest of its drawn levels so the result never depends on
    scatter order.
    """

    max_values: int = 9
    name: ClassVar[str] = "pixel_change"

    def __post_init__(self) -> None:
        if self.max_values < 1:
            raise ConfigError(f"{self.name}: max_values must be at least 1, got {self.max_values}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        n = x.shape[0]
        values = x[0].numel()
        slots = self.max_values
        draw_device = generator.device
        k = torch.randint(1, slots + 1, (n,), generator=generator, device=draw_device)
        positions = torch.randint(values, (n, slots), generator=generator, device=draw_device)
        levels = torch.randint(_LEVELS, (n, slots), generator=generator, device=draw_device)
        image = one_image(x)
        if image is not None:
            out = snap_array(_write_levels(image, k, positions, levels)).reshape(1, *image.shape)
            return MutationResult(torch.from_numpy(out), self.name, {"k": k.to(x.device)})
        active = torch.arange(slots, device=draw_device).unsqueeze(0) < k.unsqueeze(1)
        new_values = torch.where(active, levels.float() / 255.0, -1.0).to(x.device)
        flat = x.reshape(n, values)
        written = torch.full_like(flat, -1.0)
        written.scatter_reduce_(1, positions.to(x.device), new_values, reduce="amax")
        out = torch.where(written >= 0, written, flat).view_as(x)
        return MutationResult(snap_to_grid(out), self.name, {"k": k.to(x.device)})


def _write_levels(
    image: np.ndarray, k: torch.Tensor, positions: torch.Tensor, levels: torch.Tensor
) -> np.ndarray:
    """``PixelChange`` on one image: a flat copy with its first k slots written."""
    count = k.tolist()[0]
    written: dict[int, int] = {}
    for position, level in zip(positions.tolist()[0][:count], levels.tolist()[0][:count]):
        written[position] = max(level, written.get(position, -1))
    flat = image.flatten()
    flat[list(written)] = np.array(list(written.values()), dtype=np.float32) / np.float32(255.0)
    return flat
