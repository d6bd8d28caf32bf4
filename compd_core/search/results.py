"""What a search produces, per seed: found or not, why it stopped, the trigger and its chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch


class ExitReason(str, Enum):
    """Why a seed's search ended; the values read as sentences in reports."""

    FOUND = "found a deviation"
    QUERY_BUDGET = "spent its query budget"
    TIME_BUDGET = "spent its time budget"
    STOPPED = "was stopped"


@dataclass(frozen=True)
class ChainStep:
    """One accepted mutation: enough to show and replay how the seed became the trigger."""

    iteration: int
    operator: str
    params: dict[str, Any]
    fitness: float
    label_original: int
    label_compressed: int
    image: torch.Tensor  # (C, H, W) on the 8-bit grid, the input after this step


@dataclass(frozen=True)
class Trigger:
    """An input on which the pair deviates, with both models' views of it."""

    image: torch.Tensor  # (C, H, W) on the 8-bit grid
    probs_original: torch.Tensor  # (K,)
    probs_compressed: torch.Tensor  # (K,)
    l2: float
    linf: float

    @property
    def label_original(self) -> int:
        return int(self.probs_original.argmax())

    @property
    def label_compressed(self) -> int:
        return int(self.probs_compressed.argmax())


@dataclass(frozen=True)
class Seed:
    """One seed image and its provenance."""

    position: int  # position within the run's seed list
    index: int  # index in the source dataset
    image: torch.Tensor  # (C, H, W)
    label: int  # the original model's top-1 on the seed (the reference label)
    true_label: int | None = None


@dataclass
class SeedResult:
    """Everything one seed's search found out."""

    seed: Seed
    exit_reason: ExitReason
    queries: int
    iterations: int
    seconds: float
    trigger: Trigger | None = None
    chain: list[ChainStep] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)  # best fitness after each iteration

    @property
    def found(self) -> bool:
        return self.trigger is not None
