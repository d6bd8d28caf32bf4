"""How well each black-box strategy finds valid deviations on a real int8 pair.

Pins the engine's quality: with a fixed seed, each strategy finds deviations for at least 90%
of 20 seeds within its budget, and every trigger it reports really deviates.
"""

from __future__ import annotations

import pytest

from compd_core.search.criterion import is_deviation
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import STRATEGIES, SearchContext, get_strategy
from compd_core.zoo import load_pair

BLACK_BOX = [name for name, factory in STRATEGIES.items()
             if not factory().needs_white_box and name != "random"]
BUDGET = 10_000


@pytest.fixture(scope="module")
def seeds(mnist_test):
    return select_seeds(load_pair("lenet5-int8-static"), mnist_test, 20, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", BLACK_BOX)
def test_strategy_finds_valid_deviations_for_most_seeds(name, seeds):
    pair = load_pair("lenet5-int8-static")
    criterion = "valid" if name != "dflare" else "any"  # DFLARE's own criterion, as published
    context = SearchContext(pair, SearchSettings(max_queries=BUDGET, criterion=criterion), rng_seed=0)
    results = list(get_strategy(name).run(context, seeds))
    found = [r for r in results if r.found]
    assert len(found) >= 18, f"{name} found {len(found)}/20"
    assert sum(r.queries for r in results) == pair.queries
    for r in found:
        check = pair.predict(r.trigger.image[None])
        assert bool(is_deviation(check.original, check.compressed,
                                 check.original.new_tensor([r.seed.label]).long(), criterion)[0])
        assert r.queries <= BUDGET
