"""DiffChaser: a genetic algorithm that finds valid, replayable deviations on real zoo pairs."""

from __future__ import annotations

import pytest
import torch

from compd_core.errors import ConfigError
from compd_core.search.criterion import Criterion
from compd_core.search.events import OperatorUsage, Step
from compd_core.search.results import ExitReason
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from search_support import search_settings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.search.strategies.diffchaser import (
    DiffChaserParameters,
    DiffChaserStrategy,
    k_uncertainty_fitness,
)
from compd_core.zoo import load_pair

PAIR = "lenet5-int8-static"


@pytest.fixture(scope="module")
def seeds(mnist_test):
    return select_seeds(load_pair(PAIR), mnist_test, 10, seed=0)


def run(pair, seeds, rng_seed=0, emit=None, **settings):
    context = SearchContext(pair, search_settings(**settings), rng_seed=rng_seed)
    if emit is not None:
        context.emit = emit
    return list(DiffChaserStrategy().run(context, seeds))


def assert_valid_triggers(pair, results, max_linf=None):
    for result in results:
        if not result.found:
            continue
        image = result.trigger.image
        assert torch.equal(image, torch.round(image * 255) / 255), "trigger is off the 8-bit grid"
        again = pair.predict(image[None])
        strict = Criterion(max_linf=None)
        assert bool(strict.met(again.original, again.compressed, torch.tensor([result.seed.label]))[0])
        assert result.trigger.label_original == result.seed.label
        linf = float((image - result.seed.image).abs().max())
        assert linf == pytest.approx(result.trigger.linf, abs=1e-6)
        if max_linf is not None:
            assert linf <= max_linf + 1e-6


def test_registered_under_its_name():
    assert isinstance(get_strategy("diffchaser"), DiffChaserStrategy)
    assert not DiffChaserStrategy.needs_white_box


def test_finds_valid_deviations_on_the_int8_pair(seeds):
    pair = load_pair(PAIR)
    results = run(pair, seeds[:6], max_queries=400)
    found = [r for r in results if r.found]
    # Measured under the strict criterion (an argmax tie is no deviation): 3 of these 6 seeds
    # within 400 queries, and still 3 within 1,000.
    assert len(found) >= 3
    assert all(r.exit_reason is ExitReason.FOUND for r in found)
    assert all(r.exit_reason is ExitReason.QUERY_BUDGET for r in results if not r.found)
    assert_valid_triggers(pair, results)
    for r in found:
        # The chain ends on the trigger; each step is a new best member of its generation.
        assert torch.equal(r.chain[-1].image, r.trigger.image)
        assert [s.iteration for s in r.chain] == sorted({s.iteration for s in r.chain})


def same_outcome(a, b) -> bool:
    return a.queries == b.queries and a.found == b.found and (
        not a.found or torch.equal(a.trigger.image, b.trigger.image)
    )


def test_same_rng_seed_same_triggers_and_other_seed_differs(seeds):
    pair = load_pair(PAIR)
    first = run(pair, seeds[:3], max_queries=300)
    second = run(pair, seeds[:3], max_queries=300)
    other = run(pair, seeds[:3], rng_seed=1, max_queries=300)
    assert any(r.found for r in first)
    assert all(same_outcome(a, b) for a, b in zip(first, second))
    assert not all(same_outcome(a, c) for a, c in zip(first, other))


def test_respects_the_linf_bound(seeds):
    pair = load_pair(PAIR)
    # Seeds 2, 4 and 8 deviate within 400 queries inside a 0.5 ball (measured).
    results = run(pair, [seeds[2], seeds[4], seeds[8]], max_queries=400, max_linf=0.5)
    assert sum(r.found for r in results) >= 2
    assert_valid_triggers(pair, results, max_linf=0.5)
    for r in results:
        for step in r.chain:
            assert float((step.image - r.seed.image).abs().max()) <= 0.5 + 1e-6


def test_one_batch_of_m_queries_per_generation_and_exact_accounting(seeds):
    pair = load_pair(PAIR)
    batch_sizes: list[int] = []
    predict = pair.predict

    def counting_predict(x):
        batch_sizes.append(len(x))
        return predict(x)

    pair.predict = counting_predict  # type: ignore[method-assign]
    events: list = []
    results = run(pair, seeds[:3], emit=events.append, max_queries=50)
    m = DiffChaserParameters().population
    assert sum(r.queries for r in results) == pair.queries == sum(batch_sizes)
    steps = [e for e in events if isinstance(e, Step)]
    assert len(steps) == sum(r.iterations for r in results) == len(batch_sizes)
    expected_sizes = []
    for r in results:
        mine = [s.queries for s in steps if s.position == r.seed.position]
        # 50 = 20 + 20 + 10: the last generation is cut to the budget, never past it.
        assert mine == [min(m * (g + 1), 50) for g in range(len(mine))]
        assert r.queries == mine[-1] <= 50
        assert len(r.trace) == r.iterations
        expected_sizes += [b - a for a, b in zip([0, *mine], mine)]
    assert batch_sizes == expected_sizes
    assert any(r.queries == 50 for r in results)
    usage = [e for e in events if isinstance(e, OperatorUsage)]
    assert sum(sum(u.chosen.values()) for u in usage) >= m * len(results)  # generation 0 mutates all


def test_stop_signal_ends_the_seed(seeds):
    pair = load_pair(PAIR)
    context = SearchContext(pair, SearchSettings(max_queries=2_000))

    def stop_after_first_generation(event):
        if isinstance(event, Step):
            context.stop.set()

    context.emit = stop_after_first_generation
    results = list(DiffChaserStrategy().run(context, seeds[6:7]))
    assert [r.exit_reason for r in results] in ([ExitReason.STOPPED], [ExitReason.FOUND])
    assert results[0].queries == 20


def test_k_uncertainty_fitness_numbers():
    p_o = torch.tensor([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1]])
    p_c = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]])
    labels = torch.tensor([0, 0])
    # Row 0: gap 0.7-0.2 = 0.5, difference 0.9-0.7 = 0.2 -> 0.3.
    # Row 1 (a valid deviation): gap 0.6-0.3 = 0.3, difference 0.6-0.3 = 0.3 -> 0.0.
    fitness = k_uncertainty_fitness(p_o, p_c, labels, k=2)
    assert torch.allclose(fitness, torch.tensor([0.3, 0.0]), atol=1e-6)
    assert float(k_uncertainty_fitness(p_o, p_c, labels, k=3)[0]) == pytest.approx(0.4)


@pytest.mark.parametrize("kwargs", [
    {"population": 1}, {"elites": 20}, {"tournament": 0}, {"mutation_rate": 1.5}, {"k": 1},
])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        DiffChaserParameters(**kwargs)
