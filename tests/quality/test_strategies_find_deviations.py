"""How well each black-box strategy finds strict deviations on a real int8 pair.

Pins the engine's quality: with a fixed seed, on 20 class-balanced seeds, each strategy finds
strict deviations for at least 85-90% of them within its budget (``compd`` inside the default
distance budget, the baselines without one, as published), every trigger it reports meets
the criterion with no tie when replayed, and ``compd``'s triggers are far closer to their
seeds than ``dflare``'s.
"""

from __future__ import annotations

import statistics

import pytest
from replay_support import assert_strict_replay

from compd_core.search.criterion import Criterion
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import STRATEGIES, SearchContext, get_strategy
from compd_core.zoo import load_pair

BLACK_BOX = [name for name, factory in STRATEGIES.items()
             if not factory().needs_white_box and name != "random"]
BUDGET = 10_000
# Seeds of 20 each strategy must solve. Measured with these seeds and rng seed 0: dflare 17/20
# under the strict criterion (within 10,000 queries), the others at least 18.
LEAST_FOUND = {"dflare": 17}


@pytest.fixture(scope="module")
def seeds(mnist_test):
    return select_seeds(load_pair("lenet5-int8-static"), mnist_test, 20, seed=0, order="balanced")


def _criterion(name: str) -> Criterion:
    return Criterion() if name.startswith("compd") else Criterion(max_linf=None)


@pytest.fixture(scope="module")
def results(seeds):
    done = {}
    for name in BLACK_BOX:
        pair = load_pair("lenet5-int8-static")
        context = SearchContext(pair, SearchSettings(max_queries=BUDGET, criterion=_criterion(name)),
                                rng_seed=0)
        done[name] = (list(get_strategy(name).run(context, seeds)), pair.queries)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", BLACK_BOX)
def test_strategy_finds_strict_deviations_for_most_seeds(name, results):
    pair = load_pair("lenet5-int8-static")
    runs, queries = results[name]
    found = [r for r in runs if r.found]
    assert len(found) >= LEAST_FOUND.get(name, 18), f"{name} found {len(found)}/20"
    if name.startswith("compd"):  # its look-ahead fills pass padding: evaluated, never spent
        assert sum(r.queries for r in runs) <= queries
    else:
        assert sum(r.queries for r in runs) == queries
    assert_strict_replay(pair, _criterion(name), found)
    assert all(r.queries <= BUDGET for r in found)


@pytest.mark.slow
def test_compd_triggers_are_far_closer_than_dflares(results):
    def median_l2(name):
        return statistics.median(r.trigger.l2 for r in results[name][0] if r.found)

    assert median_l2("compd") < 0.6 * median_l2("dflare")
    assert max(r.trigger.linf for r in results["compd"][0] if r.found) <= Criterion().max_linf + 1e-6
