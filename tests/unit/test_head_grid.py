"""The int8 head's output grid narrowed to where argmax is decided, on the real int8 LeNet
pairs and MNIST digits: the converted model serves the twin's grid, and close classes are no
longer rounded to one level."""

from __future__ import annotations

import pytest
import torch

from compd_core.compress import get_recipe
from compd_core.compress.quantization import decision_range, head_step, narrow_head_grid
from compd_core.models.pair import ModelPair
from compd_core.repair.data import corrupted_copies, every_corruption
from compd_core.repair.run import fine_tunable_source
from compd_core.repair.serving import served_form
from compd_core.zoo import load_pair
from compd_core.zoo.loading import classifier_for


def _twin(pair_id: str):
    source = fine_tunable_source(pair_id)
    recipe = get_recipe(source.entry.compression)
    return recipe, recipe.trainable(recipe.load(source.entry.arch, source.files))


@pytest.mark.parametrize("pair_id", ["lenet5-int8-static", "lenet1-int8-static"])
def test_a_narrowed_head_grid_is_served_and_ties_fewer_close_classes(pair_id, mnist_train, mnist_test):
    recipe, twin = _twin(pair_id)
    digits = mnist_train.images[1600:3600]
    low, high = decision_range(twin, torch.cat([digits, corrupted_copies(digits, (1, 2, 3, 4, 5), 0)]))
    assert low <= 0 <= high < 20  # the top-1 is decided on a few logits, not the -25..63 calibrated
    step_before = head_step(twin)
    step, zero_point = narrow_head_grid(twin, low, high)
    assert step == pytest.approx((high - low) / 255) and step < step_before / 4
    compressed = served_form(recipe, twin, mnist_train.images[:64])
    served = compressed.served
    assert float(served.head.scale) == pytest.approx(step) and int(served.head.zero_point) == zero_point
    twin.eval()
    with torch.no_grad():
        assert torch.equal(twin(mnist_test.images).argmax(1), served(mnist_test.images).argmax(1))
    before = load_pair(pair_id)
    after = ModelPair(before.original, classifier_for(compressed, "narrowed", 0, before.class_names),
                      name="narrowed")
    images = mnist_test.images[:5000]
    corrupted = every_corruption(images, 3, 0)
    for data in (images, corrupted):
        old, new = before.predict(data), after.predict(data)
        assert int(new.disagree.sum()) < int(old.disagree.sum())
    # A grid that fits the logits where the top-1 is decided is no less accurate.
    assert (after.predict(images).labels_compressed == mnist_test.labels[:5000]).sum() >= (
        before.predict(images).labels_compressed == mnist_test.labels[:5000]).sum()


def test_a_model_without_a_quantized_head_has_no_grid_to_narrow(mnist_test):
    _, student = _twin("lenet5-distilled")
    assert decision_range(student, mnist_test.images[:64]) is None and head_step(student) is None
    with pytest.raises(ValueError, match="head output is not quantized"):
        narrow_head_grid(student, -1.0, 5.0)
    _, twin = _twin("lenet5-int8-static")
    with pytest.raises(ValueError, match="must be an interval"):
        narrow_head_grid(twin, 2.0, 2.0)
