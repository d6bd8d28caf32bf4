"""The one deviation criterion every strategy uses, and the margins that steer towards it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch

from compd_core.errors import ConfigError
from compd_core.mutations.base import one_image

_LOG_FLOOR = 1e-30  # probabilities that underflow to 0 still get a finite log
_GRID_SLACK = 1e-6  # snapping to the 8-bit grid may land a hair outside an L-inf budget


# Distance budget of the default criterion, in [0, 1] pixel units: 64 grey levels. Measured
# with ``compd`` on 20 class-balanced seeds of lenet5-int8-static and lenet5-distilled: 48
# levels solved 80-95% of seeds, 64 levels 95-100% (median L2 about 3), 96 raised L2 to 3.9-4.4.
# On 100 seeds of six pairs 64 levels solved 80-100% (bench/RESULTS.md). ``max_linf=None``
# (CLI: ``--max-linf 1``) lifts it.
DEFAULT_MAX_LINF: float | None = 64 / 255

CriterionKind = Literal["valid", "any"]


@dataclass(frozen=True)
class Criterion:
    """What counts as a deviation: strict by construction, so an argmax tie never counts.

    Margins are in probability units and measured against a reference label ``y``:
    ``margin_original = p_o[y] - max_{j != y} p_o[j]`` (the original still clearly says ``y``)
    and ``margin_compressed = max_{j != y} p_c[j] - p_c[y]`` (the compressed model really says
    something else). A deviation needs both strictly above their minimums and, when images are
    given, the input within the distance budget of its seed. For ``kind='valid'`` ``y`` is the
    original's label on the seed; for ``'any'`` (DFLARE's own definition) it is the original's
    label on the input itself, so only the compressed model's answer must change.
    """

    kind: CriterionKind = "valid"
    min_margin_original: float = 0.0  # 0 = strict only; 0.2 asks for a clearly sure original
    min_margin_compressed: float = 0.0  # 0 = strict only; 0.2 asks for a clearly different answer
    max_linf: float | None = DEFAULT_MAX_LINF  # largest pixel change allowed, in [0, 1]
    max_l2: float | None = None  # L2 budget on [0, 1] pixels; None = unbounded

    def __post_init__(self) -> None:
        if self.kind not in ("valid", "any"):
            raise ConfigError(f"criterion must be 'valid' or 'any', got {self.kind!r}")
        for name in ("min_margin_original", "min_margin_compressed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must lie in [0, 1) (a difference of "
                                  f"probabilities), got {value!r}; e.g. 0.2 asks for a clear answer")
        if self.max_linf is not None and not (
            isinstance(self.max_linf, (int, float)) and 0 < self.max_linf <= 1
        ):
            raise ConfigError(
                f"--max-linf must lie in (0, 1] (pixel scale), got {self.max_linf}; "
                "e.g. 0.1 allows about 25 grey levels"
            )
        if self.max_l2 is not None and not (
            isinstance(self.max_l2, (int, float)) and math.isfinite(self.max_l2) and self.max_l2 > 0
        ):
            raise ConfigError(f"--max-l2 must be a finite number > 0, got {self.max_l2}")

    def reference(self, probs_original: torch.Tensor, seed_labels: torch.Tensor) -> torch.Tensor:
        """The label each margin is measured against (see the class docstring)."""
        return probs_original.argmax(1) if self.kind == "any" else seed_labels

    def strength(
        self, probs_original: torch.Tensor, probs_compressed: torch.Tensor, seed_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(margin_original, margin_compressed) per row, in probability units."""
        return trigger_margins(probs_original, probs_compressed,
                               self.reference(probs_original, seed_labels))

    def met(
        self,
        probs_original: torch.Tensor,
        probs_compressed: torch.Tensor,
        seed_labels: torch.Tensor,
        images: torch.Tensor | None = None,
        seeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Boolean (N,): which inputs are deviations under this criterion."""
        if len(probs_original) == 1:
            image = None if images is None else images[0]
            seed = None if seeds is None else seeds[0]
            return torch.tensor([self.met_row(probs_original[0].tolist(), probs_compressed[0].tolist(),
                                              int(seed_labels[0]), image, seed)])
        m_o, m_c = self.strength(probs_original, probs_compressed, seed_labels)
        ok = (m_o > self.min_margin_original) & (m_c > self.min_margin_compressed)
        if images is not None and seeds is not None and (self.max_linf or self.max_l2):
            ok &= self.within_budget(images, seeds)
        return ok

    def met_row(self, probs_original: list[float], probs_compressed: list[float], seed_label: int,
                image: torch.Tensor | None = None, seed: torch.Tensor | None = None) -> bool:
        """``met`` for one input given as plain lists: a batch-1 search checks every query, and
        tensor reductions on ten numbers cost more than the arithmetic. ``image`` and ``seed``
        are one image each, (C, H, W) or a batch of one; they are read only when the margins
        pass."""
        label = _top_label(probs_original) if self.kind == "any" else seed_label
        if probs_compressed[label] >= max(probs_compressed):
            return False  # the compressed model still gives the label (or ties it): m_c <= 0
        m_o, m_c = _row_margins(probs_original, probs_compressed, label)
        if not (m_o > self.min_margin_original and m_c > self.min_margin_compressed):
            return False
        if image is None or seed is None or not (self.max_linf or self.max_l2):
            return True
        return bool(self.within_budget(image.reshape(1, -1), seed.reshape(1, -1))[0])

    def within_budget(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """Boolean (N,): which images lie within the distance budget of their seeds."""
        l2, linf = distances(images, seeds)
        ok = torch.ones(len(images), dtype=torch.bool)
        if self.max_linf is not None:
            ok &= linf <= self.max_linf + _GRID_SLACK
        if self.max_l2 is not None:
            ok &= l2 <= self.max_l2
        return ok

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Criterion:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def trigger_margins(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, reference: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """margin_original = p_o[y] - max_{j!=y} p_o[j]; margin_compressed = max_{j!=y} p_c[j] - p_c[y]."""
    index = reference.long()[:, None]
    own_o = probs_original.gather(1, index).squeeze(1)
    other_o = probs_original.scatter(1, index, float("-inf")).max(1).values
    own_c = probs_compressed.gather(1, index).squeeze(1)
    other_c = probs_compressed.scatter(1, index, float("-inf")).max(1).values
    return own_o - other_o, other_c - own_c


def _top_label(probs: list[float]) -> int:
    """The first class with the highest probability, as ``argmax`` picks it."""
    return probs.index(max(probs))


def _row_margins(original: list[float], compressed: list[float], label: int) -> tuple[float, float]:
    """``trigger_margins`` of one row in plain Python (a batch-1 search checks every query)."""
    other_o = max(original[:label] + original[label + 1 :])
    other_c = max(compressed[:label] + compressed[label + 1 :])
    return original[label] - other_o, other_c - compressed[label]


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
    image, seed = one_image(images), one_image(seeds)
    if image is not None and seed is not None:
        return torch.from_numpy(_project_one(image, seed, max_linf)[None])
    low = (seeds - max_linf).clamp_min(0.0)
    high = (seeds + max_linf).clamp_max(1.0)
    clipped = torch.minimum(torch.maximum(images, low), high)
    snapped = torch.round(clipped * 255.0) / 255.0
    # Rounding can step just outside the ball; step back inside on the grid.
    snapped = torch.where(snapped > high, snapped - 1 / 255.0, snapped)
    return torch.where(snapped < low, snapped + 1 / 255.0, snapped)


def _project_one(image: np.ndarray, seed: np.ndarray, max_linf: float) -> np.ndarray:
    """``project_linf`` of one float32 image in NumPy, step for step (a batch-1 search
    projects every mutant; see ``compd_core.mutations.base.one_image``)."""
    low = np.maximum(seed - max_linf, 0.0)
    high = np.minimum(seed + max_linf, 1.0)
    snapped = np.minimum(np.maximum(image, low), high)
    np.divide(np.rint(np.multiply(snapped, 255.0, out=snapped), out=snapped), 255.0, out=snapped)
    snapped = np.where(snapped > high, snapped - 1 / 255.0, snapped)
    return np.where(snapped < low, snapped + 1 / 255.0, snapped)


def snap(images: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the 8-bit grid, so a trigger survives a PNG round trip."""
    return torch.round(images.clamp(0.0, 1.0) * 255.0) / 255.0
