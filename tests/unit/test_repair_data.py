"""Repair's trigger set: operator variants and each trigger's own change, scaled, labelled by the
original and kept only where it still gives the seed's label (real triggers of the pruned pair)."""

from __future__ import annotations

import pytest
import torch

from compd_core.mutations import get_operators
from compd_core.repair.data import along_change, probabilities, trigger_set
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdStrategy, SearchContext
from compd_core.zoo import load_pair


@pytest.fixture(scope="module")
def found(mnist_test):
    pair = load_pair("lenet5-prune90")
    seeds = select_seeds(pair, mnist_test, 8, seed=0, order="balanced")
    context = SearchContext(pair, SearchSettings(max_queries=500), rng_seed=0)
    results = [r for r in CompdStrategy().run(context, seeds) if r.found]
    assert len(results) >= 6
    return pair, results


def test_a_scaled_change_runs_from_the_seed_through_the_trigger_and_beyond(found):
    _, results = found
    seeds = torch.stack([r.seed.image for r in results])
    triggers = torch.stack([r.trigger.image for r in results])
    scaled = along_change(seeds, triggers, (0.5, 1.0, 2.0))
    n = len(results)
    assert scaled.shape == (3 * n, *triggers.shape[1:])
    assert torch.allclose(scaled[n : 2 * n], triggers, atol=1e-6)
    assert torch.allclose(scaled[:n], seeds + 0.5 * (triggers - seeds), atol=1e-6)
    assert scaled.min() >= 0.0 and scaled.max() <= 1.0  # twice the change is clipped to the image range
    far = (scaled[2 * n :] - seeds).flatten(1).norm(dim=1)
    near = (triggers - seeds).flatten(1).norm(dim=1)
    assert bool((far > near).all()) and bool((far <= 2 * near + 1e-5).all())
    assert along_change(seeds, triggers, ()).shape == (0, *triggers.shape[1:])


def test_the_trigger_set_keeps_only_variants_the_original_still_reads_as_the_seed(found):
    pair, results = found
    seeds = torch.stack([r.seed.image for r in results])
    triggers = torch.stack([r.trigger.image for r in results])
    labels = torch.tensor([r.seed.label for r in results])
    scales = (0.5, 0.75, 1.25, 1.5, 3.0)
    made = trigger_set(pair.original, triggers, seeds, labels, 8, 3, get_operators("dflare"),
                       torch.Generator().manual_seed(0), scales)
    assert made.variants_made == len(results) * (8 + len(scales))
    assert torch.equal(made.data.images[: len(results)], triggers)  # the triggers come first
    assert torch.equal(made.data.labels[: len(results)], labels)  # the original reads them as their seeds
    kept = made.data.images[len(results):]
    assert len(kept) == made.variants_kept
    references = probabilities(pair.original, kept).argmax(1)
    assert torch.equal(made.data.labels[len(results):], references)
    # Every kept variant is one of a trigger's neighbours, labelled with that trigger's seed label.
    assert set(references.tolist()) <= set(labels.tolist())
    # Scaled changes are kept where the original keeps the label: all halfway ones on these
    # triggers (the original gives the seed's label at both ends), fewer at three times the change.
    halfway = along_change(seeds, triggers, (0.5,))
    assert bool((probabilities(pair.original, halfway).argmax(1) == labels).all())
    thrice = along_change(seeds, triggers, (3.0,))
    assert int((probabilities(pair.original, thrice).argmax(1) == labels).sum()) < len(results)
    without = trigger_set(pair.original, triggers, seeds, labels, 8, 3, get_operators("dflare"),
                          torch.Generator().manual_seed(0))
    assert without.variants_made == len(results) * 8
    assert torch.equal(without.data.images, made.data.images[: len(without.data)])  # same operator variants
