"""ModelPair: the one path to the models; validation and exact query counting."""

from __future__ import annotations

import pytest
import torch

from compd_core.errors import (
    IncompatibleModelsError,
    InvalidInputError,
    InvalidOutputError,
    WhiteBoxRequiredError,
)
from compd_core.models.base import ModelInfo
from compd_core.models.pair import ModelPair
from compd_core.zoo import load_pair


class _Fixed:
    """A stand-in classifier returning a fixed output row (for output validation only)."""

    def __init__(self, row, num_classes=10, shape=(1, 28, 28)):
        self.row = torch.tensor(row, dtype=torch.float32)
        self.info = ModelInfo("fixed", shape, num_classes, tuple(map(str, range(num_classes))), "test")

    def predict_proba(self, x):
        return self.row.expand(len(x), -1).clone()


def test_query_count_is_exact_across_batches(mnist_test):
    pair = load_pair("lenet5-int8-static", max_batch=64)
    pair.predict(mnist_test.images[:150])
    pair.predict(mnist_test.images[:1])
    assert pair.queries == 151
    pair.reset_queries()
    assert pair.queries == 0


def test_batched_and_single_predictions_agree(mnist_test):
    pair = load_pair("lenet5-int8-static", max_batch=7)
    whole = pair.predict(mnist_test.images[:20])
    one_by_one = torch.cat([pair.predict(mnist_test.images[i : i + 1]).compressed for i in range(20)])
    assert torch.allclose(whole.compressed, one_by_one, atol=1e-6)


def test_fixed_passes_give_each_row_the_same_probabilities_in_any_batch(mnist_test):
    """The engine's passes of a fixed size: a digit's probabilities (the float original's too)
    are bit-identical whichever digits share its batch, where it sits and how large it is."""
    pair = load_pair("lenet5-prune90")
    images = mnist_test.images[:300]
    generator = torch.Generator().manual_seed(0)
    first: dict[int, torch.Tensor] = {}
    for size in (1, 5, 31, 47, 48, 49, 100, 255, 256):
        rows = torch.randperm(len(images), generator=generator)[:size]
        prediction = pair.predict(images[rows], rows_per_pass=48)
        both = torch.cat([prediction.original, prediction.compressed], 1)
        for at, row in enumerate(rows.tolist()):
            assert torch.equal(first.setdefault(row, both[at]), both[at]), (size, at)
    assert len(first) > 250


def test_padding_rows_are_not_queries(mnist_test):
    pair = load_pair("lenet5-int8-static")
    prediction = pair.predict(mnist_test.images[:50], rows_per_pass=48)
    assert pair.queries == 50 and prediction.original.shape == (50, 10)
    assert torch.equal(prediction.compressed, pair.predict(mnist_test.images[:50]).compressed)
    with pytest.raises(InvalidInputError, match="rows_per_pass must be at least 1"):
        pair.predict(mnist_test.images[:5], rows_per_pass=0)


def test_predictions_are_probabilities(mnist_test):
    prediction = load_pair("lenet5-onnx-int8").predict(mnist_test.images[:32])
    for probs in (prediction.original, prediction.compressed):
        assert probs.shape == (32, 10)
        assert torch.allclose(probs.sum(1), torch.ones(32), atol=1e-4)


@pytest.mark.parametrize("batch, message", [
    (torch.rand(2, 3, 28, 28), "shape"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "divide uint8"),
    (torch.full((2, 1, 28, 28), 1.5), r"\[0, 1\]"),
    (torch.full((2, 1, 28, 28), float("nan")), "finite"),
])
def test_bad_batches_are_refused(batch, message):
    with pytest.raises(InvalidInputError, match=message):
        load_pair("lenet5-int8-static").predict(batch)


def test_models_with_different_classes_are_refused():
    with pytest.raises(IncompatibleModelsError, match="10 classes .* 5"):
        ModelPair(_Fixed([0.1] * 10), _Fixed([0.2] * 5, num_classes=5))


def test_nan_outputs_are_refused(mnist_test):
    pair = ModelPair(_Fixed([0.1] * 10), _Fixed([float("nan")] * 10))
    with pytest.raises(InvalidOutputError, match="NaN"):
        pair.predict(mnist_test.images[:2])


def test_gradient_access_is_refused_for_a_black_box_pair():
    with pytest.raises(WhiteBoxRequiredError, match="black box"):
        load_pair("lenet5-onnx-int8").white_box()


def test_a_black_box_compressed_model_leaves_its_pytorch_originals_gradients(mnist_test):
    from compd_core.models.loading import load_classifier
    from compd_core.paths import sample_models_dir

    original = load_pair("lenet5-onnx-int8").original_module()
    x = mnist_test.images[:4].clone().requires_grad_(True)
    original(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    files = sample_models_dir() / "lenet5"
    both_onnx = ModelPair(load_classifier(files / "onnx-int8.float.onnx", (1, 28, 28)),
                          load_classifier(files / "onnx-int8.onnx", (1, 28, 28)))
    assert both_onnx.original_module() is None


def test_white_box_modules_give_gradients(mnist_test):
    modules = load_pair("lenet5-int8-qat").white_box()
    x = mnist_test.images[:4].clone().requires_grad_(True)
    modules.compressed(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
