"""The compd engine's own parts: square moves, square reverts, the loop's budgets and shrinking."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from compd_core.mutations.squares import revert_square, square_step
from compd_core.search.strategies.engine import EngineSettings
from compd_core.search.events import Step
from compd_core.search.results import ExitReason
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdParameters, CompdStrategy, SearchContext


def test_square_step_sets_one_square_to_seed_plus_or_minus_eps(mnist_test):
    seeds = mnist_test.images[:64]
    eps = torch.full((64,), 20 / 255)
    result = square_step(seeds.clone(), seeds, eps, torch.Generator().manual_seed(0), max_side=5)
    assert torch.allclose(result.images * 255, (result.images * 255).round(), atol=1e-4)
    assert float((result.images - seeds).abs().max()) <= 20 / 255 + 1e-6
    for i, params in enumerate(result.params):
        changed = (result.images[i] != seeds[i]).flatten().nonzero().flatten()
        assert len(changed) <= params["side"] ** 2
        rows, cols = changed // 28, changed % 28
        if len(changed):
            assert int(rows.min()) >= params["top"] and int(rows.max()) < params["top"] + params["side"]
            assert int(cols.min()) >= params["left"] and int(cols.max()) < params["left"] + params["side"]
    # No move is wasted: where the drawn sign clips back to the seed (minus on black
    # background, plus on white strokes), the square takes the other sign.
    assert (result.images != seeds).flatten(1).any(1).all()
    again = square_step(seeds.clone(), seeds, eps, torch.Generator().manual_seed(0), max_side=5)
    assert torch.equal(result.images, again.images)


def test_revert_square_only_moves_pixels_back_to_the_seed(mnist_test):
    seeds = mnist_test.images[:32]
    far = square_step(seeds.clone(), seeds, torch.full((32,), 60 / 255),
                      torch.Generator().manual_seed(1), max_side=7).images
    back = revert_square(far, seeds, torch.Generator().manual_seed(2), max_side=4).images
    moved = back != far
    assert torch.equal(back[moved], seeds[moved])  # every changed pixel now equals the seed
    had_change = (far != seeds).flatten(1).any(1)
    assert int(had_change.sum()) >= 16
    assert torch.equal(moved.flatten(1).any(1), had_change)  # it reverts around changed pixels
    assert ((back - seeds).flatten(1).norm(dim=1) <= (far - seeds).flatten(1).norm(dim=1) + 1e-6).all()


def test_a_halving_revert_moves_a_square_half_way_back(mnist_test):
    seeds = mnist_test.images[:32]
    far = square_step(seeds.clone(), seeds, torch.full((32,), 64 / 255),
                      torch.Generator().manual_seed(1), max_side=7).images
    result = revert_square(far, seeds, torch.Generator().manual_seed(2), max_side=4, halve=1.0)
    moved = result.images != far
    assert all(bool(p["halved"]) for p in result.params)
    assert moved.any()
    change_before = (far - seeds)[moved].abs()
    change_after = (result.images - seeds)[moved].abs()
    assert torch.allclose(change_after, change_before / 2, atol=1 / 255 + 1e-6)


def test_a_chain_stuck_at_full_eps_restarts_from_its_seed():
    from compd_core.search.results import Seed
    from compd_core.search.strategies.compd import SquareProposer
    from compd_core.search.strategies.engine import Chain

    proposer = SquareProposer(CompdParameters(start_levels=16, growth=2.0, patience=1,
                                              restart_after=3))
    seed = Seed(0, 0, torch.zeros(1, 4, 4), 0)
    chain = Chain(seed, seed.image, 1.0, 0.0)
    context = SearchContext(None, SearchSettings(max_queries=10))  # type: ignore[arg-type]
    proposer.start(chain, context)
    # 16 -> 32 -> 64 (the default budget) in two stalls; then three stalls at full eps.
    answers = [proposer.observe(chain, improved=False) for _ in range(5)]
    assert answers == [False, False, False, False, True]
    assert chain.memory["levels"] == 16  # it starts small again
    assert not proposer.observe(chain, improved=True)


def test_a_seed_finds_the_same_trigger_alone_or_beside_others(int8_pair, mnist_test):
    """Each chain has its own generator: a seed's search does not depend on its neighbours."""
    seeds = select_seeds(int8_pair, mnist_test, 6, seed=0, order="balanced")
    settings = SearchSettings(max_queries=600)
    together = {r.seed.index: r for r in CompdStrategy().run(
        SearchContext(int8_pair, settings, rng_seed=5), seeds)}
    found = [r for r in together.values() if r.found]
    assert found
    for alone_seed in (seeds[-1], found[0].seed):
        alone = next(CompdStrategy().run(SearchContext(int8_pair, settings, rng_seed=5), [alone_seed]))
        beside = together[alone_seed.index]
        assert alone.queries == beside.queries and alone.found == beside.found
        if alone.found:
            assert torch.equal(alone.trigger.image, beside.trigger.image)


def test_query_budget_is_never_exceeded_and_all_queries_are_counted(mnist_test):
    from compd_core.zoo import load_pair

    pair = load_pair("lenet5-int8-static")
    seeds = select_seeds(pair, mnist_test, 6, seed=9)
    settings = SearchSettings(max_queries=37)
    pair.reset_queries()
    plain = CompdStrategy(CompdParameters(engine=EngineSettings(look_ahead=False)))
    results = list(plain.run(SearchContext(pair, settings, rng_seed=0), seeds))
    assert all(r.queries <= 37 for r in results)
    assert sum(r.queries for r in results) == pair.queries
    # Looking ahead evaluates steps that may never happen (in the pass's padding): the pair
    # counts those images, the seeds only the queries their searches used, the same as before.
    pair.reset_queries()
    ahead = list(CompdStrategy().run(SearchContext(pair, settings, rng_seed=0), seeds))
    assert [r.queries for r in ahead] == [r.queries for r in results]
    assert pair.queries > sum(r.queries for r in ahead)


def test_a_candidate_proposed_again_in_the_same_step_is_not_another_query(mnist_test):
    """compd-close proposes its guided point four times a step on a float pair: the pair's
    answer is known once asked, so it pays one query a step, as compd does, for the same
    trigger; the operator usage counts the one candidate too."""
    from compd_core.search.events import OperatorUsage
    from compd_core.search.strategies import get_strategy
    from compd_core.search.strategies.engine import distinct_rows
    from compd_core.zoo import load_pair

    pair = load_pair("lenet5-prune90")
    seeds = select_seeds(pair, mnist_test, 10, seed=0, order="balanced")
    results, tried = {}, {}
    for name in ("compd", "compd-close"):
        usage: list[OperatorUsage] = []
        context = SearchContext(pair, SearchSettings(max_queries=300), rng_seed=0,
                                emit=lambda e: usage.append(e) if isinstance(e, OperatorUsage) else None)
        results[name] = list(get_strategy(name).run(context, seeds))
        tried[name] = sum(e.chosen.get("guided", 0) for e in usage)
    guided = [r for r in results["compd"] if r.found and r.chain[-1].operator == "guided"]
    assert len(guided) >= 4
    close = {r.seed.position: r for r in results["compd-close"]}
    for plain in guided:
        assert close[plain.seed.position].queries == plain.queries == plain.iterations + 1  # + the seed
        assert torch.equal(close[plain.seed.position].trigger.image, plain.trigger.image)
    assert tried["compd-close"] == tried["compd"] > 0
    image = mnist_test.images[:2]
    assert distinct_rows(torch.cat([image, image[:1], image[1:]])) == 2
    assert distinct_rows(image[:1]) == 1


def _outcome(result):
    """Everything a seed's search produced, in comparable form."""
    trigger = result.trigger
    return (result.exit_reason, result.queries, result.iterations, result.trace,
            [(s.iteration, s.operator, s.params, s.fitness, s.label_original,
              s.label_compressed, s.image.tolist()) for s in result.chain],
            None if trigger is None else (trigger.image.tolist(), trigger.probs_original.tolist(),
                                          trigger.probs_compressed.tolist()))


def _restarted(trace: list[float]) -> bool:
    """True when the fitness left the seed's own value and later came back to it."""
    left = False
    for value in trace[1:]:
        if value != trace[0]:
            left = True
        elif left:
            return True
    return False


def test_looking_ahead_gives_every_seed_the_same_search_in_fewer_passes(mnist_test):
    """Look-ahead fills a pass's padding with the steps chains take if their candidates are
    rejected; every result, chain step and event is the one the step-by-step search gives."""
    from compd_core.zoo import load_pair

    pair = load_pair("lenet1-int8-static")
    seeds = select_seeds(pair, mnist_test, 8, seed=0, order="balanced")
    settings = SearchSettings(max_queries=1_500)
    passes: dict[bool, int] = {}
    runs, events = {}, {}
    for look_ahead in (False, True):
        calls = []
        predict = pair.predict
        pair.predict = lambda x, **kw: calls.append(len(x)) or predict(x, **kw)  # type: ignore[method-assign]
        try:
            defaults = CompdParameters()
            strategy = CompdStrategy(replace(defaults, engine=replace(defaults.engine,
                                                                      look_ahead=look_ahead)))
            steps: list[Step] = []
            context = SearchContext(pair, settings, rng_seed=3,
                                    emit=lambda e: steps.append(e) if isinstance(e, Step) else None)
            runs[look_ahead] = {r.seed.index: _outcome(r) for r in strategy.run(context, seeds)}
        finally:
            del pair.predict
        passes[look_ahead] = len(calls)
        events[look_ahead] = sorted(steps, key=lambda e: (e.position, e.iteration))
    outcomes = runs[False].values()
    assert sum(o[5] is not None for o in outcomes) >= 5  # real triggers, shrunk
    # hard seeds too, whose stalled chains went back to their seeds (the trace leaves the
    # seed's own fitness and returns to it): a restart is the one look-ahead step that moves
    # the image
    assert any(o[0] is ExitReason.QUERY_BUDGET and _restarted(o[3]) for o in outcomes)
    assert runs[True] == runs[False]
    assert events[True] == events[False]
    assert passes[True] * 3 < passes[False]


def test_draws_put_back_are_read_again_in_the_generator_order():
    from compd_core.search.strategies.engine import DrawStream

    stream = DrawStream(torch.Generator().manual_seed(4))
    first = stream.take(4)
    stream.remember()
    looked = [stream.take(4) for _ in range(3)]
    assert stream.takes == 3
    stream.keep(1)  # the second and third step never happened
    rest = stream.take(12)
    expected = torch.rand(20, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.cat([first, looked[0], rest]), expected)
    assert torch.equal(torch.cat(looked[1:]), expected[8:16])


def test_a_proposer_that_draws_twice_per_move_is_refused_when_looking_ahead(int8_pair, mnist_test):
    """Look-ahead keeps each step's draws apart by counting one draw per chain and move; a
    proposer that draws more would silently get another random stream, so it is an error."""
    from compd_core.search.strategies.compd import SquareProposer
    from compd_core.search.strategies.engine import Engine, chain_draws

    class DrawsTwice(SquareProposer):
        def propose(self, chains, per_chain):
            chain_draws(chains, per_chain, 1)
            return super().propose(chains, per_chain)

    seeds = select_seeds(int8_pair, mnist_test, 2, seed=0)
    engine = Engine(DrawsTwice(CompdParameters()), EngineSettings())
    with pytest.raises(RuntimeError, match="one chain_draws call per move"):
        list(engine.run(SearchContext(int8_pair, SearchSettings(max_queries=200)), seeds))


def test_triggers_stay_in_the_default_budget_and_shrinking_only_gets_closer(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 8, seed=0, order="balanced")
    settings = SearchSettings(max_queries=3_000)
    assert settings.max_linf is not None and 0 < settings.max_linf < 1
    # Squares only: a boundary probe's trigger is not shrunk.
    shrunk = CompdStrategy(CompdParameters(probe=None, engine=EngineSettings(shrink_rounds=12)))
    results = list(shrunk.run(SearchContext(int8_pair, settings, rng_seed=0), seeds))
    found = [r for r in results if r.found]
    assert len(found) >= 6
    for r in found:
        assert r.trigger.linf <= settings.max_linf + 1e-6
        check = int8_pair.predict(r.trigger.image[None])
        assert bool(settings.criterion.met(check.original, check.compressed,
                                           torch.tensor([r.seed.label]), r.trigger.image[None],
                                           r.seed.image[None])[0])
        # the accepted steps after the first deviation are reverts that only got closer
        distances = [float((s.image - r.seed.image).norm()) for s in r.chain
                     if s.operator == "revert_square"]
        assert distances == sorted(distances, reverse=True)
    assert any(s.operator == "revert_square" for r in found for s in r.chain)


def test_a_stop_keeps_triggers_found_while_shrinking(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 4, seed=0, order="balanced")
    stop = threading.Event()

    def stop_at_first_find(event):
        if isinstance(event, Step) and event.found:
            stop.set()

    # Shrinking would go on for 10,000 rounds: the stop arrives while the trigger is shrunk.
    strategy = CompdStrategy(CompdParameters(probe=None, engine=EngineSettings(shrink_rounds=10_000)))
    context = SearchContext(int8_pair, SearchSettings(max_queries=20_000), rng_seed=0,
                            emit=stop_at_first_find, stop=stop)
    results = list(strategy.run(context, seeds))
    assert len(results) == 4
    found = [r for r in results if r.found]
    assert found and all(r.exit_reason is ExitReason.FOUND for r in found)
    assert all(r.exit_reason is ExitReason.STOPPED for r in results if not r.found)
