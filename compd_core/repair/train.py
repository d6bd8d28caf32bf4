"""What repair feeds the one training loop: batches that mix trigger-set images with teacher
images, and a loss that asks for agreement with the original (its labels and its probabilities)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from compd_core.compress.training import EpochCallback, distillation_kl, fit
from compd_core.repair.data import LabelledImages
from compd_core.repair.settings import RepairSettings

_LOG_FLOOR = 1e-30  # probabilities that underflow to 0 still get a finite log


def repair_loss(
    logits: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, settings: RepairSettings
) -> torch.Tensor:
    """ce_weight * CE(original's labels) + kl_weight * distillation KL to its probabilities."""
    teacher = probs.clamp_min(_LOG_FLOOR).log()
    kl = distillation_kl(logits, teacher, settings.temperature)
    return settings.ce_weight * F.cross_entropy(logits, labels) + settings.kl_weight * kl


def starting_point(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every trainable weight, the anchor of the L2-SP penalty."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def distance_from(model: nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared L2 distance of the trainable weights from ``anchor`` (L2-SP, Li et al., ICML
    2018): a repair that stays near the weights it started from moves fewer other inputs
    across a boundary."""
    return sum(((p - anchor[name]) ** 2).sum() for name, p in model.named_parameters()
               if name in anchor)  # type: ignore[return-value]


def batch_split(settings: RepairSettings) -> tuple[int, int]:
    """(trigger-set images, teacher images) per batch; at least one trigger-set image."""
    teacher = min(round(settings.batch_size * settings.mix_ratio), settings.batch_size - 1)
    return settings.batch_size - teacher, teacher


class MixedBatches:
    """An epoch is one pass over the trigger set; teacher images are drawn without replacement
    from a stream of seeded permutations, so every one is seen before any repeats."""

    def __init__(self, triggers: LabelledImages, teacher: LabelledImages,
                 settings: RepairSettings) -> None:
        self.triggers, self.teacher = triggers, teacher
        self.per_trigger, self.per_teacher = batch_split(settings)
        if len(teacher) == 0:
            self.per_teacher = 0
        self._pending = torch.empty(0, dtype=torch.long)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.triggers) / self.per_trigger)

    def _teacher_rows(self, k: int, generator: torch.Generator) -> torch.Tensor:
        if k == 0:
            return torch.empty(0, dtype=torch.long)
        while len(self._pending) < k:
            fresh = torch.randperm(len(self.teacher), generator=generator)
            self._pending = torch.cat([self._pending, fresh])
        rows, self._pending = self._pending[:k], self._pending[k:]
        return rows

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, tuple]]:
        order = torch.randperm(len(self.triggers), generator=generator)
        for start in range(0, len(self.triggers), self.per_trigger):
            rows = order[start : start + self.per_trigger]
            picks = self._teacher_rows(self.per_teacher, generator)
            images = torch.cat([self.triggers.images[rows], self.teacher.images[picks]])
            labels = torch.cat([self.triggers.labels[rows], self.teacher.labels[picks]])
            probs = torch.cat([self.triggers.probs[rows], self.teacher.probs[picks]])
            yield images, (labels, probs)


def fine_tune(
    model: nn.Module,
    triggers: LabelledImages,
    teacher: LabelledImages,
    settings: RepairSettings,
    *,
    on_epoch: EpochCallback | None = None,
    stop: threading.Event | None = None,
) -> bool:
    """Train ``model`` in place with the one training loop; False when ``stop`` ended it.

    ``settings.lr`` and ``settings.epochs`` must be set: ``for_compression`` fills in the
    compressed model's own."""
    if settings.lr is None or settings.epochs is None:
        raise ValueError("fine_tune needs a learning rate and a number of epochs; resolve them "
                         "with for_compression first")
    anchor = starting_point(model) if settings.anchor_weight > 0 else None

    def loss_fn(module: nn.Module, x: torch.Tensor, targets: tuple) -> torch.Tensor:
        labels, probs = targets
        loss = repair_loss(module(x), labels, probs, settings)
        if anchor is not None:
            loss = loss + settings.anchor_weight * distance_from(module, anchor)
        return loss

    return fit(model, MixedBatches(triggers, teacher, settings), loss_fn, epochs=settings.epochs,
               lr=settings.lr, seed=settings.seed, on_epoch=on_epoch, stop=stop)
