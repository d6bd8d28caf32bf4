"""What a mutation operator is, and the small helpers every operator shares.

An operator maps a batch (N, C, H, W) in [0, 1] to a mutated batch of the same shape, drawing
its own parameters per image from an injected ``torch.Generator``. Outputs are clipped and
snapped to the 8-bit grid so that a trigger survives a round trip through PNG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from compd_core.errors import ConfigError, InvalidInputError

ParamValue = int | float
ParamColumn = torch.Tensor | ParamValue


@dataclass(frozen=True)
class MutationResult:
    """A mutated batch and the parameters each image was mutated with.

    Parameters are kept as columns (a tensor of shape (N,) or one constant for the whole
    batch) because a search calls operators thousands of times and rarely reads them; the
    per-image dicts are built only when ``params`` is first read.
    """

    images: torch.Tensor
    operator: str
    columns: Mapping[str, ParamColumn]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @cached_property
    def params(self) -> list[dict[str, ParamValue]]:
        """One JSON-serialisable dict per image, e.g. ``{"kernel": 5}``."""
        n = len(self)
        expanded: dict[str, list[ParamValue]] = {}
        for key, column in self.columns.items():
            if isinstance(column, torch.Tensor):
                expanded[key] = column.detach().cpu().tolist()
            else:
                expanded[key] = [column] * n
        return [{key: values[i] for key, values in expanded.items()} for i in range(n)]

    def operator_at(self, row: int) -> str:
        """The move that made ``row``: the same for every row of one operator's batch."""
        return self.operator

    def params_at(self, row: int) -> dict[str, ParamValue]:
        return self.params[row]


@dataclass(frozen=True)
class MixedMutation:
    """A batch whose rows were made by different moves (chains of one search in different
    phases), read row by row like a ``MutationResult``."""

    images: torch.Tensor
    parts: tuple[tuple[torch.Tensor, MutationResult], ...]  # each move's rows, ascending

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _part(self, row: int) -> tuple[int, MutationResult]:
        for rows, result in self.parts:
            at = int(torch.searchsorted(rows, row))
            if at < len(rows) and int(rows[at]) == row:
                return at, result
        raise IndexError(f"row {row} is in no part of this batch")

    def operator_at(self, row: int) -> str:
        return self._part(row)[1].operator

    def params_at(self, row: int) -> dict[str, ParamValue]:
        at, result = self._part(row)
        return result.params[at]


def mix_rows(size: int, parts: Sequence[tuple[torch.Tensor, MutationResult]]) -> MutationResult | MixedMutation:
    """One batch of ``size`` rows from moves that each made some of them (``rows`` ascending);
    a plain ``MutationResult`` when one move made them all."""
    used = [(rows, result) for rows, result in parts if len(rows)]
    if len(used) == 1:
        return used[0][1]
    images = torch.empty((size, *used[0][1].images.shape[1:]), dtype=used[0][1].images.dtype)
    for rows, result in used:
        images[rows] = result.images
    return MixedMutation(images, tuple(used))


@runtime_checkable
class MutationOperator(Protocol):
    """Batch in, batch out; randomness only from the generator it is given."""

    @property
    def name(self) -> str: ...

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult: ...


def check_batch(x: torch.Tensor, operator: str) -> None:
    """Reject what no operator can mutate; cheap enough to run on every call."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInputError(
            f"{operator}: expected a batch of shape (N, C, H, W), got {shape}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if not x.is_floating_point():
        raise InvalidInputError(
            f"{operator}: expected float images in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )


def one_image(x: torch.Tensor) -> np.ndarray | None:
    """The (C, H, W) float32 NumPy view of a batch that is one plain CPU image, else None.

    A DFLARE chain mutates one image per query; on 784 values a NumPy call costs a third of a
    torch call, so operators work on this view. NumPy's float32 arithmetic is IEEE's, as
    torch's, so both routes give the same bits (tests/unit/test_mutation_references.py).
    """
    if (x.shape[0] == 1 and x.dtype is torch.float32 and x.is_cpu and not x.requires_grad
            and x.is_contiguous()):  # an expanded view would let NumPy write one value twice
        return x.numpy()[0]
    return None


def snap_to_grid(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the nearest of the 256 grey levels (in place)."""
    values = one_image(x)
    if values is not None:
        snap_array(values)
        return x
    return x.clamp_(0.0, 1.0).mul_(255.0).round_().div_(255.0)


def snap_array(values: np.ndarray) -> np.ndarray:
    """``snap_to_grid`` of a float32 array, in place, in the same float32 steps."""
    return np.divide(grey_levels(values), 255.0, out=values)


def grey_levels(values: np.ndarray) -> np.ndarray:
    """Clip a float32 array to [0, 1] and scale it to whole grey levels 0..255, in place."""
    np.maximum(values, 0.0, out=values)
    np.minimum(values, 1.0, out=values)
    np.multiply(values, 255.0, out=values)
    return np.rint(values, out=values)


def uniform(
    n: int, low: float, high: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """(n,) float32 draws from U(low, high) on the generator's device, moved to ``device``."""
    draws = torch.rand(n, generator=generator, device=generator.device)
    if n == 1 and draws.is_cpu and device.type == "cpu":  # NumPy: see one_image
        values = draws.numpy()
        np.multiply(values, high - low, out=values)
        np.add(values, low, out=values)
        return draws
    return draws.mul_(high - low).add_(low).to(device)


def draw_index(size: int, generator: torch.Generator) -> int:
    """One uniform index in 0..size-1, drawn as ``pick_kernels`` draws it for one image."""
    return int(torch.randint(size, (1,), generator=generator, device=generator.device))


def pick_kernels(
    kernels: Sequence[int], n: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image positions in ``kernels`` (uniform) and the kernel sizes they name, (n,) each."""
    picks = torch.randint(len(kernels), (n,), generator=generator, device=generator.device)
    sizes = torch.as_tensor(kernels, dtype=torch.long, device=generator.device)[picks]
    return picks.to(device), sizes.to(device)


def check_kernel_sizes(sizes: Sequence[int], operator: str, *, odd: bool) -> tuple[int, ...]:
    """Validate an operator's kernel-size choices once, when it is built."""
    checked = tuple(int(k) for k in sizes)
    if not checked or any(k < 1 for k in checked):
        raise ConfigError(f"{operator}: kernel sizes must be positive integers, got {list(sizes)}")
    if odd and any(k % 2 == 0 for k in checked):
        raise ConfigError(
            f"{operator}: kernel sizes must be odd (the filter needs a centre), got {list(sizes)}"
        )
    return checked


def apply_by_kernel(
    x: torch.Tensor,
    kernels: torch.Tensor,
    filter_fn: Callable[[torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """Filter each image with its own kernel size, one vectorised call per distinct size.

    Size 1 is the identity for every filter here, so those images are copied untouched.
    """
    if len(x) == 1:  # one image: no grouping to do
        size = int(kernels[0])
        return x.clone() if size == 1 else filter_fn(x, size)
    out = x.clone()
    for size in kernels.unique().tolist():
        if size == 1:
            continue
        positions = (kernels == size).nonzero().squeeze(1)
        out[positions] = filter_fn(x[positions], int(size))
    return out
