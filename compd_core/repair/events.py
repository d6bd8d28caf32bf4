"""What a repair tells its listeners while it runs (CLI progress bar, dashboard job)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from compd_core.repair.report import RepairReport

Stage = Literal["mining", "variants", "training", "evaluating", "research-before", "research-after", "saving"]


@dataclass(frozen=True)
class StageStarted:
    """A new phase began; ``detail`` is one line a person can read."""

    stage: Stage
    detail: str


@dataclass(frozen=True)
class EpochFinished:
    """One pass over the trigger set (epoch 0: the model before training, loss NaN).

    ``heldout_repaired_rate`` is measured on the served (converted) model for display only:
    nothing in training, checkpoint choice or stopping reads it. ``validation_failures`` is
    what picks the epoch that is kept.
    """

    epoch: int
    epochs: int
    loss: float  # mean training loss over the epoch
    train_repaired_rate: float
    heldout_repaired_rate: float
    validation_failures: int = 0  # validation triggers still deviating + validation disagreements
    best_epoch: int = 0  # the epoch kept so far


@dataclass(frozen=True)
class ResearchProgress:
    """One more seed of a re-search has finished."""

    phase: Literal["before", "after"]
    seeds_done: int
    seeds_total: int
    found: int


@dataclass(frozen=True)
class RepairFinished:
    report: RepairReport


RepairEvent = StageStarted | EpochFinished | ResearchProgress | RepairFinished
RepairSink = Callable[[RepairEvent], None]


def no_repair_events(event: RepairEvent) -> None:
    """The default sink: ignore everything."""
