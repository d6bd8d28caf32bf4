"""The trigger split: disjoint, complete, seeded, and refusing what cannot be split."""

from __future__ import annotations

import pytest
import torch

from compd_core.errors import ConfigError
from compd_core.repair import split_triggers

POSITIONS = [3, 8, 11, 19, 20, 27, 31, 40, 42, 57, 63, 70, 88, 91, 99]


def test_parts_are_disjoint_and_cover_every_trigger():
    split = split_triggers(POSITIONS, 0.5, seed=0)
    assert set(split.train).isdisjoint(split.heldout)
    assert sorted(split.train + split.heldout) == POSITIONS
    assert list(split.train) == sorted(split.train) and list(split.heldout) == sorted(split.heldout)


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    first = split_triggers(POSITIONS, 0.5, seed=7)
    assert split_triggers(list(reversed(POSITIONS)), 0.5, seed=7) == first
    others = {split_triggers(POSITIONS, 0.5, seed=s).heldout for s in range(8)}
    assert len(others) > 1


@pytest.mark.parametrize("fraction, heldout", [(0.5, 8), (0.2, 3), (0.01, 1), (0.99, 14)])
def test_heldout_size_follows_the_fraction_but_both_parts_keep_one(fraction, heldout):
    split = split_triggers(POSITIONS, fraction, seed=1)
    assert len(split.heldout) == heldout
    assert len(split.train) == len(POSITIONS) - heldout


def test_two_triggers_split_one_and_one():
    split = split_triggers([5, 9], 0.5, seed=0)
    assert len(split.train) == 1 and len(split.heldout) == 1


@pytest.mark.parametrize("positions, fraction, message", [
    ([4], 0.5, "at least 2 triggers"),
    ([], 0.5, "at least 2 triggers"),
    ([1, 1, 2], 0.5, "distinct"),
    ([1, 2, 3], 0.0, "strictly between 0 and 1"),
    ([1, 2, 3], 1.0, "strictly between 0 and 1"),
])
def test_refuses_what_cannot_be_split(positions, fraction, message):
    with pytest.raises(ConfigError, match=message):
        split_triggers(positions, fraction, seed=0)


def test_the_validation_part_is_seeded_disjoint_and_absent_below_four_items():
    from compd_core.repair.run import _validation_split

    fit, val = _validation_split(20, 0.25, seed=3)
    assert len(val) == 5 and len(fit) == 15
    assert sorted(fit.tolist() + val.tolist()) == list(range(20))
    again_fit, again_val = _validation_split(20, 0.25, seed=3)
    assert torch.equal(val, again_val) and torch.equal(fit, again_fit)
    assert not torch.equal(val, _validation_split(20, 0.25, seed=4)[1])
    fit, val = _validation_split(3, 0.25, seed=0)
    assert len(val) == 0 and fit.tolist() == [0, 1, 2]


def _offer_all(best, counts):
    from torch import nn

    model, weights = nn.Linear(2, 1), {}
    for epoch, count in enumerate(counts):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights[epoch] = model.weight.clone()
        best.offer(epoch, count, model)
    return model, weights


def test_the_checkpoint_kept_is_the_one_with_fewest_failures_and_the_earlier_on_a_tie():
    from compd_core.repair.checkpoint import BestCheckpoint, ValidationCounts

    best = BestCheckpoint()
    model, weights = _offer_all(best, [ValidationCounts(t, 0, 0) for t in [9, 5, 7, 5, 6]])
    assert best.epoch == 1 and best.counts.total == 5
    best.restore(model)
    assert torch.equal(model.weight, weights[1])


def test_no_rise_never_keeps_an_epoch_that_adds_validation_disagreements():
    from compd_core.repair.checkpoint import BestCheckpoint, ValidationCounts

    counts = [ValidationCounts(20, 1, 30), ValidationCounts(2, 2, 30),  # fewest, but one more clean
              ValidationCounts(5, 1, 31), ValidationCounts(9, 1, 29), ValidationCounts(12, 0, 30),
              ValidationCounts(8, 1, 30)]  # as many failures as epoch 3: the earlier one stays
    fewest, no_rise = BestCheckpoint(), BestCheckpoint("no-rise")
    _offer_all(fewest, counts)
    model, weights = _offer_all(no_rise, counts)
    assert fewest.epoch == 1
    assert no_rise.epoch == 3 and no_rise.counts == counts[3]
    no_rise.restore(model)
    assert torch.equal(model.weight, weights[3])
    last = BestCheckpoint("last")
    _offer_all(last, counts)
    assert last.epoch == 5
    kept = BestCheckpoint("no-rise")
    _offer_all(kept, [ValidationCounts(20, 1, 30), ValidationCounts(0, 2, 0), ValidationCounts(0, 0, 31)])
    assert kept.epoch == 0


def test_ranking_by_triggers_keeps_the_candidate_with_the_fewest_triggers_left_within_the_bound():
    """No-rise bounds every candidate by epoch 0's clean and corrupted disagreements; ranked by
    triggers, the candidate repairing most validation triggers wins within that bound, and of
    equal ones the fewer failures."""
    from compd_core.repair.checkpoint import BestCheckpoint, ValidationCounts

    counts = [ValidationCounts(40, 1, 30),  # before training
              ValidationCounts(10, 0, 10),  # fewest failures
              ValidationCounts(4, 1, 30),  # fewest triggers left, within the bound
              ValidationCounts(4, 0, 29),  # as few triggers left, fewer failures
              ValidationCounts(3, 1, 31),  # fewer still, but a corrupted disagreement more
              ValidationCounts(1, 2, 20)]  # fewer still, but a clean disagreement more
    by_failures, by_triggers = (BestCheckpoint("no-rise", rank) for rank in ("failures", "triggers"))
    for best in (by_failures, by_triggers):
        _offer_all(best, counts)
        assert best.start == counts[0]
    assert by_failures.epoch == 1
    assert by_triggers.epoch == 3 and by_triggers.counts == counts[3]


def test_a_blend_lies_the_given_share_of_the_way_and_keeps_whole_number_buffers():
    from compd_core.repair.checkpoint import blended

    start = {"w": torch.tensor([0.0, 2.0]), "zero_point": torch.tensor([3], dtype=torch.int32)}
    trained = {"w": torch.tensor([1.0, 0.0]), "zero_point": torch.tensor([5], dtype=torch.int32)}
    mixed = blended(start, trained, 0.25)
    assert torch.allclose(mixed["w"], torch.tensor([0.25, 1.5]))
    assert torch.equal(mixed["zero_point"], trained["zero_point"])
    assert torch.equal(blended(start, trained, 1.0)["w"], trained["w"])


class _CountingClassifier:
    """A real classifier that counts the images it is asked about."""

    def __init__(self, inner):
        self.inner, self.info, self.images = inner, inner.info, 0

    def predict_proba(self, images):
        self.images += len(images)
        return self.inner.predict_proba(images)


@pytest.mark.parametrize("rule, rank", [("no-rise", "triggers"), ("no-rise", "failures"),
                                        ("fewest", "triggers"), ("fewest", "failures")])
def test_counting_a_candidate_only_as_far_as_it_can_win_keeps_what_full_counts_keep(mnist_test, rule, rank):
    """Blends from lenet5-prune90's pruned weights toward its original's, seeded noise added to
    the original's so that some candidates repair triggers and add disagreements, judged on real
    digits: ``consider`` (each count stopped once a candidate is out) keeps the same candidate as
    ``offer`` with every count, and asks the models about fewer images."""
    import copy

    from compd_core.models.adapters import TorchClassifier
    from compd_core.repair.checkpoint import BestCheckpoint, ValidationSet, blended
    from compd_core.repair.data import every_corruption
    from compd_core.zoo import load_pair

    pair = load_pair("lenet5-prune90")
    original, pruned = pair.original.module, pair.compressed.module
    digits = mnist_test.images[:400]
    corrupted = every_corruption(digits[100:200], 3, seed=0)  # every corruption of characterize
    labels, corrupted_labels = (pair.original.predict_proba(x).argmax(1) for x in (digits, corrupted))
    validation = ValidationSet(digits[:100], labels[:100], digits[100:], labels[100:],
                               corrupted, corrupted_labels)
    kept = pruned.state_dict()  # a pruned weight is its weight_orig times its weight_mask
    start = {name: kept[f"{name}_orig"] * kept[f"{name}_mask"] if f"{name}_orig" in kept else kept[name]
             for name in original.state_dict()}
    noise = torch.Generator().manual_seed(0)
    targets = [start] + [{name: weight + sigma * torch.randn(weight.shape, generator=noise)
                          for name, weight in original.state_dict().items()} for sigma in (0.02, 0.05, 0.01)]
    model = copy.deepcopy(original)
    full, lazy = BestCheckpoint(rule, rank), BestCheckpoint(rule, rank)
    counted_full = counted_lazy = 0
    for epoch, target in enumerate(targets):
        for share in (1.0,) if epoch == 0 else (0.1, 0.3, 0.6, 1.0):
            model.load_state_dict(blended(start, target, share))
            served = _CountingClassifier(TorchClassifier(copy.deepcopy(model), pair.compressed.info))
            full.offer(epoch, validation.counts(served), model, share)
            counted_full, served.images = counted_full + served.images, 0
            lazy.consider(epoch, served, validation, model, share)
            counted_lazy += served.images
    assert (lazy.epoch, lazy.share, lazy.counts) == (full.epoch, full.share, full.counts)
    assert full.epoch > 0 and full.counts.triggers < full.start.triggers  # a trained candidate won
    assert counted_lazy < counted_full
