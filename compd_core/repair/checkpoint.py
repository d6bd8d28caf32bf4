"""Checkpoint choice on validation data that training never sees (and the held-out part of the
triggers never touches): the epoch whose served model disagrees with the original least."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from compd_core.models.base import Classifier
from compd_core.repair.data import PREDICT_BATCH, probabilities
from compd_core.repair.evaluate import strictly_agrees
from compd_core.repair.settings import CheckpointRule, RankRule


@dataclass(frozen=True)
class ValidationCounts:
    """What one epoch's served model gets wrong on the validation data."""

    triggers: int  # validation triggers still deviating
    clean: int  # clean teacher images the models disagree on
    corrupted: int  # corrupted teacher images the models disagree on

    @property
    def total(self) -> int:
        return self.triggers + self.clean + self.corrupted

    def adds_disagreements_to(self, other: ValidationCounts) -> bool:
        """Whether this model disagrees with the original on more clean or more corrupted
        validation images than ``other`` did."""
        return self.clean > other.clean or self.corrupted > other.corrupted


@dataclass(frozen=True)
class ValidationSet:
    """Validation triggers (user-chosen and mined) and teacher images (clean and corrupted),
    each with the original's label."""

    triggers: torch.Tensor
    trigger_labels: torch.Tensor
    clean: torch.Tensor
    clean_labels: torch.Tensor
    corrupted: torch.Tensor
    corrupted_labels: torch.Tensor

    def counts(self, compressed: Classifier) -> ValidationCounts:
        """How many validation triggers still deviate and how many images are disagreed on."""
        return ValidationCounts(self.triggers_left(compressed),
                                self.clean_disagreements(compressed),
                                self.corrupted_disagreements(compressed))

    def triggers_left(self, compressed: Classifier) -> int:
        """Validation triggers on which the compressed model still does not strictly give the
        original's label."""
        return int((~strictly_agrees(probabilities(compressed, self.triggers), self.trigger_labels)).sum())

    def clean_disagreements(self, compressed: Classifier, at_most: int | None = None) -> int:
        """Clean validation images disagreed on; see ``disagreements_up_to`` for ``at_most``."""
        return disagreements_up_to(compressed, self.clean, self.clean_labels, at_most)

    def corrupted_disagreements(self, compressed: Classifier, at_most: int | None = None) -> int:
        """Corrupted validation images disagreed on; see ``disagreements_up_to`` for ``at_most``."""
        return disagreements_up_to(compressed, self.corrupted, self.corrupted_labels, at_most)


def disagreements_up_to(compressed: Classifier, images: torch.Tensor, labels: torch.Tensor,
                        at_most: int | None = None) -> int:
    """How many of ``images`` the compressed model labels otherwise than ``labels``, counted a
    chunk at a time. With ``at_most`` the count stops once it passes it: a result up to
    ``at_most`` is exact, a larger one only says the limit was passed (a candidate already out
    of the running needs no exact count)."""
    if at_most is not None and at_most < 0:
        return 0  # already past a negative limit: nothing to count
    found = 0
    for start in range(0, len(images), PREDICT_BATCH):
        chunk = probabilities(compressed, images[start : start + PREDICT_BATCH])
        found += int((chunk.argmax(1) != labels[start : start + PREDICT_BATCH]).sum())
        if at_most is not None and found > at_most:
            break
    return found


@dataclass
class BestCheckpoint:
    """The best weights offered so far; the earlier offer wins a tie, and epoch 0 (the model
    before any training) is a candidate like every other. Rule ``fewest``: the fewest
    validation failures (triggers, clean and corrupted disagreements together), or with
    ``rank`` "triggers" the fewest validation triggers left, then the fewest failures.

    Rule ``no-rise`` also disqualifies every epoch that disagrees with the original on more
    clean or more corrupted validation images than epoch 0 did: trading new disagreements for
    repaired triggers is then never chosen, and at worst epoch 0 is kept. Rule
    ``last`` keeps the last epoch offered (no choice; what a repair without validation data does).
    """

    rule: CheckpointRule = "fewest"
    rank: RankRule = "failures"  # fewest validation failures, or fewest triggers left first
    epoch: int = -1
    share: float = 1.0  # of the step from the starting weights to the epoch's weights
    counts: ValidationCounts | None = None
    start: ValidationCounts | None = None  # epoch 0's, the model before training
    state: dict[str, torch.Tensor] | None = None

    def _qualifies(self, counts: ValidationCounts) -> bool:
        return self.rule != "no-rise" or self.start is None or not counts.adds_disagreements_to(self.start)

    def offer(self, epoch: int, counts: ValidationCounts, model: nn.Module, share: float = 1.0) -> bool:
        """Keep ``model``'s weights when they qualify and beat the best so far; True when they
        did. ``share`` says how far they are from the starting weights toward the epoch's."""
        if self.start is None:
            self.start = counts
        if not self._qualifies(counts):
            return False
        if self.rule != "last" and self.counts is not None and not self._beats(counts, self.counts):
            return False
        self.epoch, self.counts, self.share = epoch, counts, share
        self.state = copy.deepcopy(model.state_dict())
        return True

    def consider(self, epoch: int, compressed: Classifier, validation: ValidationSet,
                 model: nn.Module, share: float = 1.0) -> bool:
        """``offer`` for ``model``, served as ``compressed``, counted on ``validation`` only as
        far as it can still be kept: its triggers first, then its clean images, then its
        corrupted ones, each count stopped once the candidate can no longer qualify or beat the
        best so far. It keeps exactly what ``offer`` with every count would keep, without the
        counts that cannot change the choice."""
        if self.counts is None or self.start is None or self.rule == "last":
            return self.offer(epoch, validation.counts(compressed), model, share)
        best, triggers = self.counts, validation.triggers_left(compressed)
        if self.rank == "triggers" and triggers > best.triggers:
            return False
        ranked_by_total = self.rank == "failures" or triggers == best.triggers
        room = best.total - 1 - triggers if ranked_by_total else None  # clean + corrupted it may have
        no_rise = self.rule == "no-rise"
        clean_limit = _least(self.start.clean if no_rise else None, room)
        clean = validation.clean_disagreements(compressed, clean_limit)
        if clean_limit is not None and clean > clean_limit:
            return False
        corrupted_limit = _least(self.start.corrupted if no_rise else None,
                                 None if room is None else room - clean)
        corrupted = validation.corrupted_disagreements(compressed, corrupted_limit)
        if corrupted_limit is not None and corrupted > corrupted_limit:
            return False
        return self.offer(epoch, ValidationCounts(triggers, clean, corrupted), model, share)

    def _beats(self, counts: ValidationCounts, best: ValidationCounts) -> bool:
        if self.rank == "triggers":
            return (counts.triggers, counts.total) < (best.triggers, best.total)
        return counts.total < best.total

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def _least(*limits: int | None) -> int | None:
    """The tightest of the limits given (None: no limit)."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def blended(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor],
            share: float) -> dict[str, torch.Tensor]:
    """The weights ``share`` of the way from ``start`` to ``trained`` (whole-number buffers such
    as quantization zero points are taken from ``trained``). A step only part of the way
    repairs fewer triggers but moves fewer other inputs: on int8 pairs, whose every trained
    epoch adds disagreements, some of these candidates repair triggers without adding any."""
    return {name: start[name] + share * (value - start[name]) if value.is_floating_point() else value
            for name, value in trained.items()}
