"""The one deviation criterion every strategy uses, and the margins that steer towards it."""

from __future__ import annotations

import torch

from compd_core.search.settings import Criterion

_LOG_FLOOR = 1e-30  # probabilities that underflow to 0 still get a finite log


def is_deviation(
    probs_original: torch.Tensor,
    probs_compressed: torch.Tensor,
    reference_labels: torch.Tensor,
    criterion: Criterion = "valid",
) -> torch.Tensor:
    """Boolean (N,): the top-1 labels differ (and, for 'valid', the original keeps its label).

    ``reference_labels`` are the original's labels on the seeds: a mutant on which the original
    changed its mind changed the input's meaning, not the compressed model's behaviour.
    """
    label_o = probs_original.argmax(1)
    differ = label_o != probs_compressed.argmax(1)
    if criterion == "any":
        return differ
    return differ & (label_o == reference_labels)


def log_margin(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p[label] - log max_{j != label} p[j]: > 0 while ``label`` is the top-1.

    In log space the margin keeps its slope far from the boundary, where probability margins
    saturate at 1 and give a search nothing to climb.
    """
    logp = probs.clamp_min(_LOG_FLOOR).log()
    own = logp.gather(1, labels[:, None]).squeeze(1)
    others = logp.scatter(1, labels[:, None], float("-inf")).max(1).values
    return own - others


def distances(images: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 and L-inf distance of each image to its seed, pixel values in [0, 1]."""
    delta = (images - seeds).flatten(1)
    return delta.norm(dim=1), delta.abs().amax(dim=1)


def project_linf(images: torch.Tensor, seeds: torch.Tensor, max_linf: float | None) -> torch.Tensor:
    """Clip into the L-inf ball around the seeds, then snap to the 8-bit grid inside it."""
    if max_linf is None:
        return images
    low = (seeds - max_linf).clamp_min(0.0)
    high = (seeds + max_linf).clamp_max(1.0)
    clipped = torch.minimum(torch.maximum(images, low), high)
    snapped = torch.round(clipped * 255.0) / 255.0
    # Rounding can step just outside the ball; step back inside on the grid.
    snapped = torch.where(snapped > high, snapped - 1 / 255.0, snapped)
    return torch.where(snapped < low, snapped + 1 / 255.0, snapped)


def snap(images: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the 8-bit grid, so a trigger survives a PNG round trip."""
    return torch.round(images.clamp(0.0, 1.0) * 255.0) / 255.0
