"""Split a run's triggers into the part repair trains on and the part it is judged by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from compd_core.errors import ConfigError


@dataclass(frozen=True)
class TriggerSplit:
    """Seed positions of the triggers, in two disjoint, sorted parts."""

    train: tuple[int, ...]
    heldout: tuple[int, ...]


def split_triggers(positions: Sequence[int], heldout_fraction: float = 0.5, seed: int = 0) -> TriggerSplit:
    """A seeded random split; the same positions and seed always give the same parts.

    The held-out part is never trained on, so its repair rate says whether the repair
    generalises to deviations it never saw rather than memorising the ones it was shown.
    """
    unique = sorted({int(p) for p in positions})
    if len(unique) != len(positions):
        raise ConfigError("trigger positions must be distinct; each seed has at most one trigger")
    if len(unique) < 2:
        raise ConfigError(
            f"a repair needs at least 2 triggers (one to train on, one to judge by), got "
            f"{len(unique)}; select more triggers or search more seeds"
        )
    if not 0 < heldout_fraction < 1:
        raise ConfigError(f"heldout_fraction must lie strictly between 0 and 1, got {heldout_fraction}")
    heldout_count = min(max(round(len(unique) * heldout_fraction), 1), len(unique) - 1)
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed)).tolist()
    heldout = sorted(unique[i] for i in order[:heldout_count])
    train = sorted(unique[i] for i in order[heldout_count:])
    return TriggerSplit(train=tuple(train), heldout=tuple(heldout))
