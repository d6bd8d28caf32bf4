"""The compd engine's own parts: the patch_nudge move and batch filling."""

from __future__ import annotations

import torch

from compd_core.mutations.nudge import PatchNudge
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdParameters, CompdStrategy, SearchContext


def test_patch_nudge_changes_one_small_patch_by_its_level(mnist_test):
    x = mnist_test.images[:64]
    result = PatchNudge()(x, torch.Generator().manual_seed(0))
    assert result.images.shape == x.shape
    assert torch.allclose(result.images * 255, (result.images * 255).round(), atol=1e-4)
    for i, params in enumerate(result.params):
        changed = int((result.images[i] != x[i]).sum())
        assert changed <= params["size"] ** 2
        step = (result.images[i] - x[i]).abs().max() * 255
        assert step <= abs(params["delta"]) + 1e-3
    # a darkening nudge on black background is clipped away; the others change the digit
    changed_images = (result.images != x).flatten(1).any(1).float().mean()
    assert changed_images >= 0.5
    again = PatchNudge()(x, torch.Generator().manual_seed(0))
    assert torch.equal(result.images, again.images)


def test_few_chains_get_more_proposals_within_budget(int8_pair, mnist_test):
    strategy = CompdStrategy(CompdParameters(proposals=2, batch_target=256))
    seeds = select_seeds(int8_pair, mnist_test, 4, seed=0)
    context = SearchContext(int8_pair, SearchSettings(max_queries=50), rng_seed=0)
    chains = strategy._start(context, seeds)
    assert strategy._proposals(context, chains) == 49  # 64 wanted, capped by the 49 queries left
    context = SearchContext(int8_pair, SearchSettings(max_queries=10_000), rng_seed=0)
    assert strategy._proposals(context, chains) == 64
    assert strategy._proposals(context, chains * 100) == 2


def test_query_budget_is_never_exceeded_and_all_queries_are_counted(mnist_test):
    from compd_core.zoo import load_pair

    pair = load_pair("lenet5-int8-static")
    seeds = select_seeds(pair, mnist_test, 6, seed=9)
    pair.reset_queries()
    context = SearchContext(pair, SearchSettings(max_queries=37), rng_seed=0)
    results = list(CompdStrategy().run(context, seeds))
    assert all(r.queries <= 37 for r in results)
    assert sum(r.queries for r in results) == pair.queries
