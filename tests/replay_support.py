"""Replaying triggers through their pair: the check every search test ends with."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from compd_core.models.pair import ModelPair
from compd_core.search.criterion import Criterion
from compd_core.search.results import SeedResult


def assert_strict_replay(pair: ModelPair, criterion: Criterion, found: Sequence[SeedResult]) -> None:
    """Every trigger meets ``criterion`` when run again, and no tie decides either label."""
    images = torch.stack([r.trigger.image for r in found])
    seeds = torch.stack([r.seed.image for r in found])
    labels = torch.tensor([r.seed.label for r in found])
    replay = pair.predict(images)
    assert criterion.met(replay.original, replay.compressed, labels, images, seeds).all()
    m_o, m_c = criterion.strength(replay.original, replay.compressed, labels)
    assert bool((m_o > 0).all() and (m_c > 0).all())
    for r, probs_o, probs_c in zip(found, replay.original, replay.compressed):
        assert r.trigger.is_strict
        assert torch.allclose(r.trigger.probs_original, probs_o, atol=1e-5)
        assert torch.allclose(r.trigger.probs_compressed, probs_c, atol=1e-5)
