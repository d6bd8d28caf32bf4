"""Square moves on the L-inf ball around a seed, and their inverse, for the ``compd`` engine.

``square_step`` sets one random square of each image to ``seed +/- eps`` (one sign per square):
the move of Square Attack (Andriushchenko et al., ECCV 2020), made sparse by starting from the
seed instead of from a full stripe pattern, so the change stays small in L2. A square whose
drawn sign changes nothing (``seed - eps`` on black background clips back to the seed, and
``seed + eps`` on white strokes; or the parent already has that square) takes the other sign:
on MNIST 20-23% of drawn moves were such no-ops, each a query spent on the parent again.
``revert_square`` sets a small square around a changed pixel back to the seed: the shrinker's move.
"""

from __future__ import annotations

import torch

from compd_core.mutations.base import MutationResult, snap_to_grid


def _square_masks(top: torch.Tensor, left: torch.Tensor, side: torch.Tensor, height: int,
                  width: int) -> torch.Tensor:
    """Boolean (N, 1, H, W): the square of each row."""
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    n = len(top)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + side).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + side).view(n, 1, 1)))
    return inside[:, None]


Draws = torch.Tensor | torch.Generator


def _uniforms(draws: Draws, n: int, width: int) -> torch.Tensor:
    """(n, width) uniforms in [0, 1): given (one row per image, so each image's randomness can
    come from its own generator) or drawn here from one generator."""
    if isinstance(draws, torch.Generator):
        return torch.rand(n, width, generator=draws)
    if draws.shape != (n, width):
        raise ValueError(f"expected draws of shape ({n}, {width}), got {tuple(draws.shape)}")
    return draws


def square_step(parents: torch.Tensor, seeds: torch.Tensor, eps: torch.Tensor, draws: Draws,
                max_side: int) -> MutationResult:
    """Each row of ``parents`` with one random square (side 1..max_side) set to seed +/- eps;
    the other sign where the drawn one would leave the row as it was.

    ``draws``: four uniforms per row (side, top, left, sign), or a generator to draw them from.
    """
    n, _, h, w = parents.shape
    u = _uniforms(draws, n, 4)
    side = (u[:, 0] * max_side).long().add(1).clamp_max(min(h, w))
    top = (u[:, 1] * (h - side + 1)).long()
    left = (u[:, 2] * (w - side + 1)).long()
    sign = (u[:, 3] < 0.5).long() * 2 - 1
    square = _square_masks(top, left, side, h, w)
    images = torch.where(square, snap_to_grid(seeds + (sign * eps).view(n, 1, 1, 1)), parents)
    idle = (images == parents).flatten(1).all(1)
    if idle.any():
        sign = torch.where(idle, -sign, sign)
        images = torch.where(square, snap_to_grid(seeds + (sign * eps).view(n, 1, 1, 1)), parents)
    return MutationResult(images, "square", {"top": top, "left": left, "side": side,
                                             "delta": torch.round(sign * eps * 255).long()})


def revert_square(images: torch.Tensor, seeds: torch.Tensor, draws: Draws, max_side: int,
                  halve: float = 0.0) -> MutationResult:
    """Each row with a random square around one of its changed pixels set back to the seed.

    With probability ``halve`` a row's square goes only half way back (its change halved):
    a deviation often needs a pixel changed, but not by the full step that found it.
    ``draws``: three uniforms per row (centre, side, halving), or a generator to draw them from.
    """
    n, _, h, w = images.shape
    u = _uniforms(draws, n, 3)
    changed = (images != seeds).any(1).flatten(1).float()  # (N, H*W)
    has_change = changed.sum(1) > 0
    weights = torch.where(has_change[:, None], changed, torch.ones_like(changed))
    cumulative = weights.cumsum(1)
    # Inverse CDF: the first pixel whose cumulative weight passes u * total.
    centre = (cumulative <= u[:, :1] * cumulative[:, -1:]).sum(1).clamp_max(h * w - 1)
    side = (u[:, 1] * max_side).long().add(1).clamp_max(min(h, w))
    top = (centre // w - side // 2).clamp(0, None).minimum(h - side)
    left = (centre % w - side // 2).clamp(0, None).minimum(w - side)
    halved = u[:, 2] < halve
    target = torch.where(halved.view(n, 1, 1, 1), snap_to_grid((images + seeds) / 2), seeds)
    out = torch.where(_square_masks(top, left, side, h, w), target, images)
    return MutationResult(out, "revert_square", {"top": top, "left": left, "side": side,
                                                 "halved": halved})
