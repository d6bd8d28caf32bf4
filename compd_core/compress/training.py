"""A small, deterministic training loop shared by the zoo build, compression and repair."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """How long and how fast to train; defaults suit LeNets on 8,000 MNIST digits."""

    epochs: int = 20  # with the cosine decay, LeNet-5 reaches ~98% test accuracy on 8k digits
    batch_size: int = 64  # small batches generalise better on a small training set
    lr: float = 1e-3  # Adam's usual default
    shift_pixels: int = 2  # random translations; the cheapest augmentation that helps MNIST
    seed: int = 0


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels, filling with black."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    settings: TrainSettings,
    loss_fn: LossFn = cross_entropy_loss,
    optimizer: torch.optim.Optimizer | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    stop: threading.Event | None = None,
) -> nn.Module:
    """Train in place; ``targets`` may be labels or soft targets, as ``loss_fn`` expects.

    Returns the model for chaining. Stops early (between batches) when ``stop`` is set.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=settings.lr)
    steps = settings.epochs * -(-len(images) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(images), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(images), settings.batch_size):
            if stop is not None and stop.is_set():
                model.eval()
                return model
            idx = order[start : start + settings.batch_size]
            x = random_shift(images[idx], settings.shift_pixels, generator)
            loss = loss_fn(model, x, targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if on_epoch is not None:
            on_epoch(epoch, total / max(count, 1))
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode, restoring the module's previous mode afterwards."""
    was_training = model.training
    model.eval()
    preds = torch.cat([model(images[i : i + 512]).argmax(1) for i in range(0, len(images), 512)])
    model.train(was_training)
    return float((preds == labels).float().mean())
