"""Operator-choice policies: DFLARE's Metropolis-Hastings rule against its analytic
distributions, random tie-breaking, the uniform baseline, and the per-operator counts."""

from __future__ import annotations

import json

import pytest
import torch

from compd_core.errors import ConfigError, InvalidInputError
from compd_core.mutations import (
    NO_PREVIOUS,
    MetropolisHastingsPolicy,
    OperatorPolicy,
    UniformPolicy,
    get_operators,
    get_policy,
)

NAMES = [op.name for op in get_operators("dflare")]
N_OPS = len(NAMES)  # 7, so p = 1/7
KEEP = 1 - 1 / N_OPS


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ranked_policy(**kwargs: int) -> MetropolisHastingsPolicy:
    """Scores 6/10, 5/10, ..., 0/10 for operators 6..0: operator 6 ranks first, 0 last."""
    policy = MetropolisHastingsPolicy(NAMES, **kwargs)
    indices = torch.arange(N_OPS).repeat_interleave(10)
    successes = torch.arange(10).repeat(N_OPS) < indices
    policy.update_many(indices, successes)
    return policy


def _rank_of(operator: torch.Tensor) -> torch.Tensor:
    return N_OPS - 1 - operator  # the ordering _ranked_policy sets up


def _proposal_weights(k1: int) -> torch.Tensor:
    """min(1, (1 - p) ** (k2 - k1)) for every rank k2."""
    k2 = torch.arange(N_OPS, dtype=torch.float64)
    return torch.clamp(KEEP ** (k2 - k1), max=1.0)


def _transition_matrix() -> torch.Tensor:
    rows = torch.stack([_proposal_weights(k1) for k1 in range(N_OPS)])
    return rows / rows.sum(1, keepdim=True)


def _frequencies(values: torch.Tensor) -> torch.Tensor:
    return torch.bincount(values, minlength=N_OPS).double() / len(values)


@pytest.mark.parametrize("k1", [0, 3, 6])
def test_mh_choice_follows_the_acceptance_rule_from_a_fixed_rank(k1: int) -> None:
    policy = _ranked_policy()
    last = torch.full((40_000,), N_OPS - 1 - k1)  # the operator now at rank k1
    chosen_ranks = _rank_of(policy.choose_for_chains(last, _gen(k1)))
    expected = _proposal_weights(k1) / _proposal_weights(k1).sum()
    assert float((_frequencies(chosen_ranks) - expected).abs().max()) < 0.01


def test_mh_from_the_worst_rank_is_uniform_not_the_published_bug() -> None:
    # From the last rank every proposal is accepted: uniform. The published code (k1 = -1)
    # would instead favour the best rank, P(k2) proportional to (6/7) ** (k2 + 1).
    policy = _ranked_policy()
    chosen_ranks = _rank_of(policy.choose_for_chains(torch.zeros(40_000, dtype=torch.long), _gen()))
    freq = _frequencies(chosen_ranks)
    assert float((freq - 1 / N_OPS).abs().max()) < 0.01
    buggy = KEEP ** torch.arange(1, N_OPS + 1, dtype=torch.float64)
    assert float((freq - buggy / buggy.sum()).abs().max()) > 0.05


def test_mh_rejection_fallback_gives_the_same_distribution() -> None:
    # One proposal per pre-drawn block: most draws from rank 0 fall back to the plain loop.
    policy = _ranked_policy(proposals_per_draw=1)
    chosen_ranks = _rank_of(policy.choose_for_chains(torch.full((20_000,), N_OPS - 1), _gen()))
    expected = _proposal_weights(0) / _proposal_weights(0).sum()
    assert float((_frequencies(chosen_ranks) - expected).abs().max()) < 0.012


def test_mh_chain_moves_and_settles_as_the_markov_chain_it_defines() -> None:
    policy = _ranked_policy()
    ranks = _rank_of(policy.choose_many(30_000, _gen()))
    transitions = _transition_matrix()
    stationary = torch.full((N_OPS,), 1 / N_OPS, dtype=torch.float64)
    for _ in range(500):
        stationary = stationary @ transitions
    # DFLARE's rule favours the best-ranked operator only mildly: 17.3% against 10.4%.
    assert float(stationary[0]) == pytest.approx(0.1727, abs=1e-4)
    assert float(stationary[-1]) == pytest.approx(0.1038, abs=1e-4)
    assert float((_frequencies(ranks) - stationary).abs().max()) < 0.01
    # Each step starts from the previous choice: empirical P(k2 | k1) matches the rule.
    pairs = torch.zeros(N_OPS, N_OPS, dtype=torch.float64)
    pairs.index_put_((ranks[:-1], ranks[1:]), torch.ones(len(ranks) - 1, dtype=torch.float64), True)
    empirical = pairs / pairs.sum(1, keepdim=True)
    assert float((empirical - transitions).abs().max()) < 0.03


def test_mh_single_choices_follow_the_same_rule_and_restart_on_reset() -> None:
    # choose() draws in plain Python for speed; its transitions must still be DFLARE's rule.
    policy = _ranked_policy()
    generator = _gen(4)
    ranks = _rank_of(torch.tensor([policy.choose(generator) for _ in range(30_000)]))
    pairs = torch.zeros(N_OPS, N_OPS, dtype=torch.float64)
    pairs.index_put_((ranks[:-1], ranks[1:]), torch.ones(len(ranks) - 1, dtype=torch.float64), True)
    empirical = pairs / pairs.sum(1, keepdim=True)
    assert float((empirical - _transition_matrix()).abs().max()) < 0.03
    stats = policy.statistics()
    firsts = []
    for _ in range(14_000):
        policy.reset_chain()
        firsts.append(policy.choose(generator))
    assert float((_frequencies(torch.tensor(firsts)) - 1 / N_OPS).abs().max()) < 0.012
    assert policy.statistics() == stats  # a new chain keeps what was learnt


def test_mh_first_choice_of_each_chain_is_uniform() -> None:
    policy = _ranked_policy()
    chosen = policy.choose_for_chains(torch.full((40_000,), NO_PREVIOUS), _gen())
    assert float((_frequencies(chosen) - 1 / N_OPS).abs().max()) < 0.01


def test_mh_breaks_ties_at_random() -> None:
    # All scores 0: each draw reshuffles, so the previous operator's rank k1 is uniform and
    # every other operator is equally likely. Staying put has probability mean_k1 1 / Z(k1).
    policy = MetropolisHastingsPolicy(NAMES)
    chosen = policy.choose_for_chains(torch.zeros(40_000, dtype=torch.long), _gen())
    freq = _frequencies(chosen)
    stay = sum(1 / float(_proposal_weights(k1).sum()) for k1 in range(N_OPS)) / N_OPS
    assert float(freq[0]) == pytest.approx(stay, abs=0.01)
    assert float((freq[1:] - (1 - stay) / (N_OPS - 1)).abs().max()) < 0.01


def test_uniform_policy_is_uniform_everywhere() -> None:
    policy = UniformPolicy(NAMES)
    assert float((_frequencies(policy.choose_many(40_000, _gen())) - 1 / N_OPS).abs().max()) < 0.01
    chains = policy.choose_for_chains(torch.full((40_000,), 3), _gen(1))
    assert float((_frequencies(chains) - 1 / N_OPS).abs().max()) < 0.01
    assert all(0 <= policy.choose(_gen(s)) < N_OPS for s in range(20))


@pytest.mark.parametrize("name", ["uniform", "mh"])
def test_policies_are_reproducible_from_the_seed(name: str) -> None:
    first, second = get_policy(name, NAMES), get_policy(name, NAMES)
    assert isinstance(first, OperatorPolicy)
    draws = [first.choose(_gen(9)), *first.choose_many(20, _gen(10)).tolist()]
    again = [second.choose(_gen(9)), *second.choose_many(20, _gen(10)).tolist()]
    assert draws == again
    assert isinstance(draws[0], int)


@pytest.mark.parametrize("policy_type", [UniformPolicy, MetropolisHastingsPolicy])
def test_statistics_count_uses_and_successes(policy_type: type) -> None:
    policy = policy_type(NAMES)
    policy.update(2, True)
    policy.update(2, False)
    policy.update(5, False)
    policy.update_many(torch.tensor([2, 3, 3]), torch.tensor([True, True, False]))
    stats = policy.statistics()
    assert list(stats) == NAMES
    assert stats["multiplicative_noise"] == {"selections": 3, "successes": 2, "score": 2 / 3}
    assert stats["pixel_change"] == {"selections": 2, "successes": 1, "score": 0.5}
    assert stats["gaussian_blur"] == {"selections": 1, "successes": 0, "score": 0.0}
    assert stats["gaussian_noise"] == {"selections": 0, "successes": 0, "score": 0.0}
    assert json.loads(json.dumps(stats)) == stats


def test_mh_prefers_operators_that_succeed() -> None:
    policy = MetropolisHastingsPolicy(NAMES)
    policy.update_many(torch.tensor([4] * 10 + [1] * 10), torch.tensor([True] * 10 + [False] * 10))
    chosen = policy.choose_many(20_000, _gen())
    freq = _frequencies(chosen)
    assert int(freq.argmax()) == 4  # average_blur: 10/10 successes, always ranked first
    assert float(freq[4]) == pytest.approx(0.1727, abs=0.01)  # the chain's share of rank 0


def test_bad_policy_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least one operator"):
        MetropolisHastingsPolicy([])
    with pytest.raises(ConfigError, match="unique"):
        UniformPolicy(["blur", "blur"])
    with pytest.raises(ConfigError, match="mh, uniform"):
        get_policy("metropolis", NAMES)
    with pytest.raises(ConfigError, match="proposals_per_draw"):
        MetropolisHastingsPolicy(NAMES, proposals_per_draw=0)
    policy = MetropolisHastingsPolicy(NAMES)
    with pytest.raises(InvalidInputError, match="out of range"):
        policy.update(N_OPS, True)
    with pytest.raises(InvalidInputError, match="one outcome per index"):
        policy.update_many(torch.tensor([0, 1]), torch.tensor([True]))
    with pytest.raises(InvalidInputError, match="chain start"):
        policy.choose_for_chains(torch.tensor([0, N_OPS]), _gen())
