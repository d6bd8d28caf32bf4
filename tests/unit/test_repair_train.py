"""The L2-SP penalty of repair's loss keeps the fine-tuned weights near where they started."""

from __future__ import annotations

import torch
from torch import nn

from compd_core.repair import RepairSettings
from compd_core.repair.data import LabelledImages
from compd_core.repair.train import distance_from, fine_tune, starting_point


def _data(count: int, seed: int) -> LabelledImages:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 4, 4, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    return LabelledImages(images, nn.functional.one_hot(labels, 3).float(), labels)


def _moved(anchor_weight: float) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    start = starting_point(model)
    assert float(distance_from(model, start).detach()) == 0.0
    settings = RepairSettings(lr=0.05, epochs=5, batch_size=16, anchor_weight=anchor_weight)
    assert fine_tune(model, _data(64, 1), _data(64, 2), settings)
    return float(distance_from(model, start).detach())


def test_the_anchor_keeps_the_weights_near_their_start():
    free, anchored = _moved(0.0), _moved(10.0)
    assert free > 0.1
    assert anchored < free / 5
