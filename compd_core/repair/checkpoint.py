"""Checkpoint choice on validation data that training never sees (and the held-out part of the
triggers never touches): the epoch whose served model disagrees with the original least."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from compd_core.models.base import Classifier
from compd_core.repair.data import probabilities
from compd_core.repair.evaluate import strictly_agrees


@dataclass(frozen=True)
class ValidationSet:
    """Validation triggers (user-chosen and mined) and teacher images (clean and corrupted),
    each with the original's label."""

    triggers: torch.Tensor
    trigger_labels: torch.Tensor
    images: torch.Tensor
    image_labels: torch.Tensor

    def failures(self, compressed: Classifier) -> tuple[int, int]:
        """(validation triggers still deviating, teacher images the models disagree on)."""
        on_triggers = ~strictly_agrees(probabilities(compressed, self.triggers), self.trigger_labels)
        on_images = probabilities(compressed, self.images).argmax(1) != self.image_labels
        return int(on_triggers.sum()), int(on_images.sum())


@dataclass
class BestCheckpoint:
    """The weights with the fewest validation failures so far; the earlier epoch wins a tie,
    and epoch 0 (the model before any training) is a candidate like every other."""

    epoch: int = -1
    failures: int | None = None
    state: dict[str, torch.Tensor] | None = None

    def offer(self, epoch: int, failures: int, model: nn.Module) -> bool:
        """Keep ``model``'s weights when they beat the best so far; True when they did."""
        if self.failures is not None and failures >= self.failures:
            return False
        self.epoch, self.failures = epoch, failures
        self.state = copy.deepcopy(model.state_dict())
        return True

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
