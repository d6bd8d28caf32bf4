"""What a search produces, per seed: found or not, why it stopped, the trigger and its chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch

from compd_core.search.criterion import trigger_margins


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

    @property
    def margins(self) -> tuple[float, float]:
        """(margin_original, margin_compressed) in probability units, against the original's label.

        The original's label on a trigger is the seed's (the criterion demands it), so these are
        the ``Criterion.strength`` of the trigger. Triggers that older, non-strict searches stored
        show their ties here: a compressed margin of 0.0 is argmax tie-breaking, not an answer.
        """
        m_o, m_c = trigger_margins(self.probs_original[None], self.probs_compressed[None],
                                   self.probs_original.argmax()[None])
        return float(m_o[0]), float(m_c[0])

    @property
    def margin_original(self) -> float:
        """How much more likely the original finds its label than any other class."""
        return self.margins[0]

    @property
    def margin_compressed(self) -> float:
        """How much more likely the compressed model finds some other class than that label."""
        return self.margins[1]

    @property
    def is_strict(self) -> bool:
        """Both models really answer: no tie decides either label."""
        m_o, m_c = self.margins
        return m_o > 0 and m_c > 0


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
