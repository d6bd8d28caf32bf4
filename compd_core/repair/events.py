"""What a repair tells its listeners while it runs (CLI progress bar, dashboard job).

These are payload events of the job protocol (``compd_core.events``); ``RepairProgress`` turns
them into its common ``Progress``, and the repair ends with its ``Finished`` or ``Stopped``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compd_core.events import Event, Progress

Stage = Literal["mining", "variants", "training", "evaluating", "research-before", "research-after", "saving"]


@dataclass(frozen=True)
class StageStarted(Event):
    """A new phase began; ``detail`` is one line a person can read."""

    stage: Stage
    detail: str


@dataclass(frozen=True)
class EpochFinished(Event):
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
class ResearchProgress(Event):
    """One more seed of a re-search has finished."""

    phase: Literal["before", "after"]
    seeds_done: int
    seeds_total: int
    found: int


RepairEvent = StageStarted | EpochFinished | ResearchProgress

# What each stage counts; a stage not named here is one step without a count.
_STAGE_UNITS = {"training": "epoch", "research-before": "seed", "research-after": "seed"}


class RepairProgress:
    """A repair's events as the common ``Progress``: a stage starts a new count (epochs of
    training, seeds of each re-search); epochs and seeds move it on."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, event: Event) -> Progress | None:
        if isinstance(event, StageStarted):
            unit = _STAGE_UNITS.get(event.stage, event.stage)
            total = self.epochs if unit == "epoch" else None
            return Progress("repair", unit, 0, total, f"{event.stage}: {event.detail}")
        if isinstance(event, EpochFinished) and event.epoch > 0:
            return Progress("repair", "epoch", event.epoch, event.epochs,
                            f"training: loss {event.loss:.3f}, repaired train "
                            f"{event.train_repaired_rate:.0%} / held-out "
                            f"{event.heldout_repaired_rate:.0%}")
        if isinstance(event, ResearchProgress):
            return Progress("repair", "seed", event.seeds_done, event.seeds_total,
                            f"re-search {event.phase}: {event.found} deviations")
        return None
