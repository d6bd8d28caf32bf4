"""The boundary probes of ``compd`` on int8 pairs: closer triggers in fewer queries, confirmed by
the served pair, and the same search with look-ahead."""

from __future__ import annotations

import statistics
import threading

import pytest
import torch
from replay_support import assert_strict_replay
from search_support import compd_with_and_without_look_ahead

from compd_core.errors import ConfigError
from compd_core.search.criterion import Criterion, distances
from compd_core.search.events import SeedStarted, Step
from compd_core.search.results import ExitReason
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdParameters, CompdStrategy, SearchContext, get_strategy
from compd_core.search.strategies.boundary import BoundaryProbe, ProbeParameters
from compd_core.search.strategies.compd import PROBE, SquareProposer
from compd_core.search.strategies.engine import Engine
from compd_core.zoo import load_pair

SQUARES_ONLY = CompdParameters(probe=None)  # compd without its probes
PROBED = CompdParameters()  # compd


def _run(pair, seeds, parameters: CompdParameters, settings: SearchSettings, steps=None):
    emit = (lambda e: steps.append(e) if isinstance(e, Step) else None) if steps is not None else None
    context = SearchContext(pair, settings, rng_seed=0, **({"emit": emit} if emit else {}))
    return {r.seed.index: r for r in CompdStrategy(parameters).run(context, seeds)}


def test_probes_find_closer_triggers_in_fewer_queries_on_an_int8_pair(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 10, seed=0, order="balanced")
    settings = SearchSettings(max_queries=2_000)
    probed = _run(int8_pair, seeds, PROBED, settings)
    squares = _run(int8_pair, seeds, SQUARES_ONLY, settings)
    found = [r for r in probed.values() if r.found]
    assert len(found) >= 9
    by_probe = [r for r in found if r.chain[-1].operator == PROBE]
    assert len(by_probe) >= 6  # all 10 on this machine: the stand-ins judge the int8 model well
    assert_strict_replay(int8_pair, settings.criterion, found)  # the served pair's deviations
    assert all(torch.equal(r.trigger.image, (r.trigger.image * 255).round() / 255) for r in found)
    # A probe's trigger is not shrunk: it is the chain's last step, no revert after it.
    assert all(not any(s.operator == "revert_square" for s in r.chain) for r in by_probe)
    both = [i for i, r in probed.items() if r.found and squares[i].found]
    assert len(both) >= 8
    l2 = statistics.median(probed[i].trigger.l2 for i in both)
    l2_squares = statistics.median(squares[i].trigger.l2 for i in both)
    assert l2 < 0.8 * l2_squares  # 1.71 against 3.12 on this machine
    queries = statistics.median(probed[i].queries for i in both)
    assert queries < 0.1 * statistics.median(squares[i].queries for i in both)  # 2 against 175.5


def test_the_candidates_are_the_stand_ins_deviations_closest_first_and_repeatable(int8_pair, mnist_test):
    seed = select_seeds(int8_pair, mnist_test, 1, seed=3, order="balanced")[0]
    criterion = Criterion()
    parameters = ProbeParameters(queries=5)
    modules = int8_pair.white_box()
    probe = BoundaryProbe(modules.original, modules.compressed, parameters, criterion)
    images = probe.candidates(seed.image, seed.label, torch.Generator().manual_seed(7))
    again = probe.candidates(seed.image, seed.label, torch.Generator().manual_seed(7))
    assert torch.equal(images, again)
    assert 1 <= len(images) <= 5
    with torch.no_grad():
        p_o = torch.softmax(modules.original(images), 1)
        p_c = torch.softmax(modules.compressed(images), 1)
    seeds = seed.image[None].expand_as(images)
    labels = torch.full((len(images),), seed.label)
    assert criterion.met(p_o, p_c, labels, images, seeds).all()
    l2, linf = distances(images, seeds)
    assert l2.tolist() == sorted(l2.tolist())
    assert float(linf.max()) <= criterion.max_linf + 1e-6
    assert torch.equal(images, (images * 255).round() / 255)
    assert len(torch.unique(images.flatten(1), dim=0)) == len(images)


def test_a_black_box_is_probed_along_its_originals_boundary_closest_calls_first(mnist_test):
    """No stand-in judges the points for an ONNX int8 model: the original's boundary points it
    still keeps by the smallest margin go first (the next test: they find its deviations)."""
    pair = load_pair("lenet5-onnx-int8")
    seed = select_seeds(pair, mnist_test, 1, seed=3, order="balanced")[0]
    criterion = Criterion()
    probe = BoundaryProbe(pair.original_module(), None, ProbeParameters(unjudged_queries=20), criterion)
    images = probe.candidates(seed.image, seed.label, torch.Generator().manual_seed(7))
    assert torch.equal(images, probe.candidates(seed.image, seed.label, torch.Generator().manual_seed(7)))
    assert len(images) == 20 == probe.cap
    with torch.no_grad():
        p_o = torch.softmax(pair.original_module()(images), 1)
    margins, _ = criterion.strength(p_o, p_o, torch.full((len(images),), seed.label))
    assert (margins > 0).all() and margins.tolist() == sorted(margins.tolist())
    assert float(margins[0]) < 0.01  # next to the original's boundary
    seeds = seed.image[None].expand_as(images)
    assert criterion.within_budget(images, seeds).all()
    assert torch.equal(images, (images * 255).round() / 255)
    assert len(torch.unique(images.flatten(1), dim=0)) == len(images)


def test_probes_find_closer_triggers_in_fewer_queries_on_a_black_box_int8_pair(mnist_test):
    pair = load_pair("lenet5-onnx-int8")
    seeds = select_seeds(pair, mnist_test, 10, seed=0, order="balanced")
    settings = SearchSettings(max_queries=2_000)
    probed = _run(pair, seeds, PROBED, settings)
    squares = _run(pair, seeds, SQUARES_ONLY, settings)
    found = [r for r in probed.values() if r.found]
    by_probe = [r for r in found if r.chain[-1].operator == PROBE]
    assert len(by_probe) >= 7
    assert_strict_replay(pair, settings.criterion, found)
    both = [i for i, r in probed.items() if r.found and squares[i].found]
    assert len(both) >= 7  # 8 on this machine
    l2 = statistics.median(probed[i].trigger.l2 for i in both)
    assert l2 < 0.8 * statistics.median(squares[i].trigger.l2 for i in both)  # 2.38 against 3.55
    queries = statistics.median(probed[i].queries for i in both)
    assert queries < 0.2 * statistics.median(squares[i].queries for i in both)  # 4.5 against 217


def test_looking_ahead_gives_the_same_search_when_probes_and_squares_share_a_pass(int8_pair, mnist_test):
    """Two probes per chain, then squares from the seed: passes mix both moves, and every result
    and event is the one of the step-by-step search."""
    seeds = select_seeds(int8_pair, mnist_test, 8, seed=1, order="balanced")
    settings = SearchSettings(max_queries=300)
    short = CompdParameters(probe=ProbeParameters(starts=2, queries=2))
    runs, events = compd_with_and_without_look_ahead(int8_pair, seeds, short, settings)
    operators = {e.operator for e in events[False]}
    assert {PROBE, "square"} <= operators
    for chain_events in _by_position(events[False]).values():
        probes = [e for e in chain_events if e.operator == PROBE]
        assert len(probes) <= 2 and all(e.iteration <= 2 for e in probes)
    assert runs[True] == runs[False]
    assert events[True] == events[False]


def _by_position(events: list[Step]) -> dict[int, list[Step]]:
    grouped: dict[int, list[Step]] = {}
    for event in events:
        grouped.setdefault(event.position, []).append(event)
    return grouped


def test_after_its_probes_a_chain_searches_with_squares_from_its_seed(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 6, seed=2, order="balanced")
    results = _run(int8_pair, seeds, CompdParameters(probe=ProbeParameters(starts=1, queries=1)),
                   SearchSettings(max_queries=400))
    squares_after = [r for r in results.values() if r.chain and r.chain[0].operator == "square"]
    assert squares_after  # with one start per class, some probes miss
    for r in squares_after:
        assert int((r.chain[0].image != r.seed.image).sum()) <= 7 * 7
        assert all(s.operator != PROBE for s in r.chain)


def test_probes_stay_off_for_dflares_criterion(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 3, seed=0)
    steps: list[Step] = []
    _run(int8_pair, seeds, PROBED, SearchSettings(max_queries=100, criterion="any"), steps)
    assert steps and PROBE not in {e.operator for e in steps}


@pytest.mark.parametrize("bad", [{"classes": -1}, {"starts": -2}, {"queries": -1}, {"spread": -0.5},
                                 {"line_span": 1.0}, {"overshoot": -0.1}])
def test_probe_parameters_that_make_no_sense_are_refused(bad):
    with pytest.raises(ConfigError, match="boundary probe"):
        ProbeParameters(**bad)


def test_zero_of_any_count_turns_the_probes_off():
    assert get_strategy("compd").parameters.probe == ProbeParameters()  # on by default
    assert ProbeParameters().active() and ProbeParameters().active(judged=False)
    assert not ProbeParameters(classes=0).active() and not ProbeParameters(classes=0).active(judged=False)
    assert not ProbeParameters(queries=0).active() and ProbeParameters(queries=0).active(judged=False)
    assert ProbeParameters(unjudged_queries=0).active()
    assert not ProbeParameters(unjudged_queries=0).active(judged=False)


def test_a_stop_while_chains_start_is_heeded_between_seeds(int8_pair, mnist_test):
    """Probes take about a second per seed before a chain's first step: a stop pressed then must
    not wait for every other seed's probes."""
    seeds = select_seeds(int8_pair, mnist_test, 6, seed=0)
    stop = threading.Event()
    started: list[int] = []

    def emit(event) -> None:
        if isinstance(event, SeedStarted):
            started.append(event.index)
            stop.set()

    context = SearchContext(int8_pair, SearchSettings(max_queries=500), rng_seed=0, emit=emit, stop=stop)
    results = list(CompdStrategy(PROBED).run(context, seeds))
    assert started == [seeds[0].index]
    assert [r.seed.index for r in results] == [seeds[0].index]
    assert results[0].exit_reason in (ExitReason.STOPPED, ExitReason.FOUND)


def test_probing_chains_start_a_few_at_a_time_and_their_results_do_not_change(int8_pair, mnist_test):
    """A large run takes its first steps after a couple of probing starts, not after all of
    them; a seed's search is the same as when every chain starts before the first step."""
    seeds = select_seeds(int8_pair, mnist_test, 8, seed=4, order="balanced")
    settings = SearchSettings(max_queries=300)
    parameters = CompdParameters(probe=ProbeParameters(starts=2))

    class AllAtOnce(SquareProposer):
        starts_per_step = None

    runs, orders = {}, {}
    for proposer_class in (SquareProposer, AllAtOnce):
        events: list = []
        context = SearchContext(int8_pair, settings, rng_seed=0, emit=events.append)
        modules = int8_pair.white_box()
        probe = BoundaryProbe(modules.original, modules.compressed, parameters.probe, settings.criterion)
        engine = Engine(proposer_class(parameters, probe=probe), parameters.engine)
        runs[proposer_class] = {r.seed.index: (r.exit_reason, r.queries, r.trace,
                                               None if r.trigger is None else r.trigger.image.tolist())
                                for r in engine.run(context, seeds)}
        first_step = next(i for i, e in enumerate(events) if isinstance(e, Step))
        orders[proposer_class] = sum(isinstance(e, SeedStarted) for e in events[:first_step])
    assert orders[SquareProposer] == SquareProposer(parameters, probe=probe).starts_per_step == 2
    assert orders[AllAtOnce] == len(seeds)
    assert runs[SquareProposer] == runs[AllAtOnce]
    assert sum(r[3] is not None for r in runs[SquareProposer].values()) >= 6
