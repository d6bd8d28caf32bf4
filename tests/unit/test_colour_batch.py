"""The pair's default batch follows the input size: a digit model keeps 256 images per pass, a
224x224 colour model gets as many as fit the same float budget, and a batch is cut to it."""

from __future__ import annotations

import torch

from compd_core.models.base import ModelInfo
from compd_core.models.pair import BATCH_FLOATS, DEFAULT_MAX_BATCH, ModelPair, default_max_batch


class _Pooled:
    """Mean colour per image -> 3 class probabilities; records the batch sizes it is given."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.info = ModelInfo("pooled", shape, 3, ("r", "g", "b"), "callable")
        self.batches: list[int] = []

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        return torch.softmax(x.mean((2, 3)) * 4, 1)


def test_default_batch_keeps_digits_at_256_and_bounds_large_colour_inputs() -> None:
    assert default_max_batch((1, 28, 28)) == DEFAULT_MAX_BATCH == 256
    assert default_max_batch((3, 32, 32)) == 256
    big = default_max_batch((3, 224, 224))
    assert big == 27
    assert big * 3 * 224 * 224 <= BATCH_FLOATS < (big + 1) * 3 * 224 * 224
    assert default_max_batch((3, 4096, 4096)) == 1  # never zero, however large the input


def test_a_224_pair_cuts_its_batches_to_the_default_and_keeps_an_explicit_one() -> None:
    shape = (3, 224, 224)
    original, compressed = _Pooled(shape), _Pooled(shape)
    pair = ModelPair(original, compressed)
    assert pair.max_batch == 27
    images = torch.rand(31, *shape, generator=torch.Generator().manual_seed(0))
    prediction = pair.predict(images)
    assert original.batches == compressed.batches == [27, 4]
    assert prediction.original.shape == (31, 3) and pair.queries == 31
    assert ModelPair(_Pooled(shape), _Pooled(shape), max_batch=500).max_batch == 500
    assert ModelPair(_Pooled((1, 28, 28)), _Pooled((1, 28, 28))).max_batch == 256
