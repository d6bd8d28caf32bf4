"""The fine-tuning loop: cross-entropy on the original's labels plus KL to its probabilities,
each batch mixing trigger-set images with clean training images."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from compd_core.repair.data import LabelledImages
from compd_core.repair.settings import RepairSettings

_LOG_FLOOR = 1e-30  # probabilities that underflow to 0 still get a finite log

EpochCallback = Callable[[int, float], bool]  # (epoch, mean loss) -> True to end training


def repair_loss(
    logits: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, settings: RepairSettings
) -> torch.Tensor:
    """ce_weight * CE(hard labels) + kl_weight * T^2 * KL(original's softened probs || model's).

    The T^2 factor keeps the KL gradient on the same scale as the cross-entropy whatever T is
    (Hinton et al., 2015).
    """
    t = settings.temperature
    target = torch.softmax(probs.clamp_min(_LOG_FLOOR).log() / t, dim=1)
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), target, reduction="batchmean") * t * t
    return settings.ce_weight * F.cross_entropy(logits, labels) + settings.kl_weight * kl


def batch_split(settings: RepairSettings) -> tuple[int, int]:
    """(trigger-set images, clean images) per batch; at least one trigger-set image."""
    clean = min(round(settings.batch_size * settings.mix_ratio), settings.batch_size - 1)
    return settings.batch_size - clean, clean


def fine_tune(
    model: nn.Module,
    triggers: LabelledImages,
    clean: LabelledImages,
    settings: RepairSettings,
    *,
    on_epoch: EpochCallback | None = None,
    stop: threading.Event | None = None,
) -> bool:
    """Train ``model`` in place; False when ``stop`` ended it, True otherwise (all epochs ran,
    or ``on_epoch`` asked to end early).

    An epoch is one pass over the trigger set; clean images are drawn without replacement from
    a stream of seeded permutations, so every clean image is seen before any repeats.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    per_trigger, per_clean = batch_split(settings)
    if len(clean) == 0:
        per_clean = 0
    steps_per_epoch = math.ceil(len(triggers) / per_trigger)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(settings.epochs * steps_per_epoch, 1)
    )
    clean_stream = _IndexStream(len(clean), generator)
    model.train()
    try:
        for epoch in range(settings.epochs):
            order = torch.randperm(len(triggers), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(triggers), per_trigger):
                if stop is not None and stop.is_set():
                    return False
                rows = order[start : start + per_trigger]
                picks = clean_stream.take(per_clean)
                images = torch.cat([triggers.images[rows], clean.images[picks]])
                labels = torch.cat([triggers.labels[rows], clean.labels[picks]])
                probs = torch.cat([triggers.probs[rows], clean.probs[picks]])
                loss = repair_loss(model(images), labels, probs, settings)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(images)
                count += len(images)
            if on_epoch is not None and on_epoch(epoch, total / max(count, 1)):
                return True
        return True
    finally:
        model.eval()


class _IndexStream:
    """Indices 0..n-1 in a fresh seeded order each pass, handed out in chunks."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self._n, self._generator = n, generator
        self._pending = torch.empty(0, dtype=torch.long)

    def take(self, k: int) -> torch.Tensor:
        if k == 0 or self._n == 0:
            return torch.empty(0, dtype=torch.long)
        while len(self._pending) < k:
            self._pending = torch.cat([self._pending, torch.randperm(self._n, generator=self._generator)])
        chunk, self._pending = self._pending[:k], self._pending[k:]
        return chunk
