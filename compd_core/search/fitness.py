"""Fitness functions: plain functions of the two probability batches (lower = closer to success
for the project's own; DFLARE's difference is maximised, as published)."""

from __future__ import annotations

import math

import numpy as np
import torch

from compd_core.search.criterion import log_margin

NOVELTY_THRESHOLD = 0.5  # DFLARE: a state is new when its squared L2 to every stored one exceeds this


def dflare_difference(probs_original: torch.Tensor, probs_compressed: torch.Tensor) -> torch.Tensor:
    """DFLARE's diff = p_orig[top1_orig] - p_comp[top1_comp], per row."""
    return probs_original.max(1).values - probs_compressed.max(1).values


def pair_state(probs_original: torch.Tensor, probs_compressed: torch.Tensor) -> torch.Tensor:
    """DFLARE's state of an input: both probability vectors side by side, (N, 2K)."""
    return torch.cat([probs_original, probs_compressed], dim=1)


class NoveltyArchive:
    """The probability states one chain has seen (DFLARE's coverage of model behaviour).

    A chain asks once per query whether a state is new, and its mutants' states lie close to
    each other. So the archive keeps the last state it measured against every stored one (the
    reference) and its distance to the nearest; by the triangle inequality a state closer to
    the reference than the threshold's distance minus that gap has a stored state within the
    threshold: not new, known from 2K subtractions in Python. Otherwise the nearest squared
    distance comes from one matrix-vector product, ``|s|^2 - 2 s.x + |x|^2``, which rounds
    differently from summing squared differences by about 1e-14; within ``_ROUNDING_BAND`` of
    the threshold the answer is recomputed the direct way. Every answer is the direct one.
    """

    def __init__(self, threshold: float = NOVELTY_THRESHOLD) -> None:
        self.threshold = threshold
        self._radius = math.sqrt(threshold) - _ROUNDING_BAND  # in distance, not squared
        self._states: np.ndarray | None = None  # (capacity, 2K), doubled when full
        self._norms: np.ndarray | None = None  # (capacity,) squared norm of each state
        self._count = 0
        self._reference: list[float] = []  # the last state measured against all stored ones
        self._reference_gap = math.inf  # an upper bound of its distance to the nearest one

    def __len__(self) -> int:
        return self._count

    def is_novel(self, probs_original: Probabilities, probs_compressed: Probabilities) -> bool:
        """True when the (single) state is farther than the threshold from every stored one."""
        if self._states is None:
            return True
        state = _state_list(probs_original, probs_compressed)
        if self._reference_gap < self._radius:
            step = math.sqrt(sum([(a - b) * (a - b) for a, b in zip(state, self._reference)]))
            if step + self._reference_gap < self._radius:
                return False
        nearest = self._nearest(np.asarray(state))
        self._reference, self._reference_gap = state, math.sqrt(nearest + _ROUNDING_BAND)
        return nearest > self.threshold

    def _nearest(self, state: np.ndarray) -> float:
        """The squared distance to the nearest stored state, exact where it decides."""
        stored = self._states[: self._count]
        nearest = float((self._norms[: self._count] - 2.0 * (stored @ state)).min() + state @ state)
        if abs(nearest - self.threshold) > _ROUNDING_BAND:
            return nearest
        difference = stored - state
        return float(np.einsum("ij,ij->i", difference, difference).min())

    def add(self, probs_original: Probabilities, probs_compressed: Probabilities) -> None:
        state = _state_list(probs_original, probs_compressed)
        if self._states is None:
            self._states, self._norms = np.empty((16, len(state))), np.empty(16)
        elif self._count == len(self._states):
            self._states = np.concatenate([self._states, np.empty_like(self._states)])
            self._norms = np.concatenate([self._norms, np.empty_like(self._norms)])
        row = self._states[self._count]
        row[:] = state
        self._norms[self._count] = row @ row
        self._count += 1
        self._reference, self._reference_gap = state, 0.0


_ROUNDING_BAND = 1e-9  # far wider than float64 rounding of 2K products of values in [0, 1]


Probabilities = torch.Tensor | list[float]


def _state_list(probs_original: Probabilities, probs_compressed: Probabilities) -> list[float]:
    """One input's state as a flat list: a (1, K) tensor per model, or a plain list of K values."""
    if isinstance(probs_original, torch.Tensor):
        return pair_state(probs_original, probs_compressed)[0].tolist()
    return probs_original + probs_compressed


def deviation_gap(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """max(m_c, -m_o) with m the log-margins of ``labels``: negative exactly on valid deviations.

    A valid deviation needs the compressed model off the label (m_c < 0) while the original
    keeps it (m_o > 0). Far from the boundary both margins are large and equal, so the gap
    measures how far the input is from the thin region where the models part ways; it is
    built on the margin, the signal Hu et al. (CAIN 2023) found most predictive.
    """
    m_o = log_margin(probs_original, labels)
    m_c = log_margin(probs_compressed, labels)
    return torch.maximum(m_c, -m_o)


def any_disagreement_gap(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """For criterion 'any': the compressed model's margin of the original's current label."""
    current = probs_original.argmax(1)
    return log_margin(probs_compressed, current)
