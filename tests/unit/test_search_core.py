"""Criterion, fitness and the search plumbing, on the real int8 LeNet-5 pair."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from compd_core.errors import ConfigError
from compd_core.search.criterion import Criterion, log_margin, project_linf
from compd_core.search.events import EventRecorder
from compd_core.search.fitness import NoveltyArchive, deviation_gap, dflare_difference
from compd_core.search.results import ExitReason
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from search_support import search_settings
from compd_core.search.strategies import STRATEGIES, CompdParameters, CompdStrategy, SearchContext, get_strategy


def test_criterion_requires_the_original_to_keep_the_label():
    p_o = torch.tensor([[0.7, 0.3], [0.3, 0.7], [0.6, 0.4]])
    p_c = torch.tensor([[0.4, 0.6], [0.6, 0.4], [0.9, 0.1]])
    labels = torch.tensor([0, 0, 0])
    assert Criterion(max_linf=None).met(p_o, p_c, labels).tolist() == [True, False, False]
    assert Criterion(kind="any", max_linf=None).met(p_o, p_c, labels).tolist() == [True, True, False]


def test_margins_and_gap_by_hand():
    p_o = torch.tensor([[0.6, 0.3, 0.1]])
    p_c = torch.tensor([[0.3, 0.6, 0.1]])
    y = torch.tensor([0])
    assert float(log_margin(p_o, y)) == pytest.approx(np.log(2.0))
    assert float(log_margin(p_c, y)) == pytest.approx(-np.log(2.0))
    # a valid deviation: gap = max(m_c, -m_o) = -log 2 < 0
    assert float(deviation_gap(p_o, p_c, y)) == pytest.approx(-np.log(2.0))
    assert float(dflare_difference(p_o, p_c)) == pytest.approx(0.0)


def test_novelty_threshold_is_dflares():
    archive = NoveltyArchive()
    a = torch.tensor([[1.0, 0.0]])
    archive.add(a, a)
    # squared L2 of the concatenated states: 4 * 0.2^2 = 0.16 (not new), 4 * 0.5^2 = 1.0 (new)
    assert not archive.is_novel(torch.tensor([[0.8, 0.2]]), torch.tensor([[0.8, 0.2]]))
    assert archive.is_novel(torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]))


def test_linf_projection_stays_inside_on_the_grid(mnist_test):
    seeds = mnist_test.images[:8]
    far = torch.rand(seeds.shape, generator=torch.Generator().manual_seed(0))
    projected = project_linf(far, seeds, 10 / 255)
    assert float((projected - seeds).abs().max()) <= 10 / 255 + 1e-6
    assert torch.allclose(projected * 255, (projected * 255).round(), atol=1e-4)



def test_linf_projection_of_one_image_gives_the_batch_bits(mnist_test):
    """One image is projected in NumPy, a batch in torch: the same bits, off the grid too."""
    gen = torch.Generator().manual_seed(1)
    seeds = torch.cat([mnist_test.images[:6], torch.rand(6, 1, 28, 28, generator=gen)])
    images = (seeds + torch.randn(seeds.shape, generator=gen) * 0.3).clamp(0, 1)
    for max_linf in (1 / 255, 10 / 255, 0.1, 64 / 255, 1.0):
        batch = project_linf(images, seeds, max_linf)
        for i in range(len(seeds)):
            one = project_linf(images[i : i + 1], seeds[i : i + 1], max_linf)
            assert torch.equal(one.view(torch.int32), batch[i : i + 1].view(torch.int32))
    assert not torch.equal(batch, images)

@pytest.mark.parametrize("kwargs, message", [
    ({"max_queries": 0}, "query budget"), ({"time_budget": -1.0}, "time budget"),
    ({"max_linf": 2.0}, "max-linf"), ({"criterion": "most"}, "criterion"),
    ({"time_budget": float("inf")}, "time budget"), ({"max_l2": float("nan")}, "max-l2"),
    ({"min_margin_original": 1.5}, "--min-margin-original must lie in"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        search_settings(**kwargs)


def test_a_tie_is_never_a_deviation():
    """An int8 model often gives two classes the same probability; argmax then picks the lower
    index, which is tie-breaking, not an answer."""
    probs_o = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.45, 0.45, 0.1]])
    probs_c = torch.tensor([[0.45, 0.45, 0.1], [0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])
    seed_labels = torch.tensor([1, 1, 1])
    strict = Criterion(max_linf=None)
    assert strict.met(probs_o, probs_c, seed_labels).tolist() == [False, True, False]
    m_o, m_c = strict.strength(probs_o, probs_c, seed_labels)
    assert torch.allclose(m_o, torch.tensor([0.7, 0.7, 0.0]))
    assert torch.allclose(m_c, torch.tensor([0.0, 0.1, 0.85]))
    # 'any' measures against the original's own label: a tie in the original is no answer either.
    assert Criterion(kind="any", max_linf=None).met(probs_o, probs_c, seed_labels).tolist() == [
        False, True, False]
    assert not Criterion(min_margin_compressed=0.2, max_linf=None).met(
        probs_o, probs_c, seed_labels).any()


def test_the_distance_budget_is_part_of_the_criterion():
    seeds = torch.zeros(2, 1, 4, 4)
    images = seeds.clone()
    images[0, 0, 0, 0] = 8 / 255
    images[1, 0, 0, 0] = 9 / 255
    probs_o = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    probs_c = torch.tensor([[0.4, 0.6], [0.4, 0.6]])
    labels = torch.tensor([0, 0])
    budget = Criterion(max_linf=8 / 255)
    assert budget.met(probs_o, probs_c, labels, images, seeds).tolist() == [True, False]
    assert budget.met(probs_o, probs_c, labels).tolist() == [True, True]  # no images: margins only
    assert Criterion.from_dict(budget.to_dict()) == budget


def test_the_single_row_check_agrees_with_the_batch_check():
    """Batch-1 searches check each query with ``met_row`` on plain lists: it must give the batch
    answer for ties, both kinds, margins and the distance budget."""
    probs_o = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.45, 0.45, 0.1], [0.6, 0.3, 0.1]])
    probs_c = torch.tensor([[0.45, 0.45, 0.1], [0.5, 0.4, 0.1], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    labels = torch.tensor([1, 1, 1, 0])
    seeds = torch.zeros(4, 1, 2, 2)
    images = seeds.clone()
    images[1, 0, 0, 0] = 9 / 255
    criteria = [Criterion(max_linf=None), Criterion(kind="any", max_linf=None),
                Criterion(min_margin_compressed=0.2, max_linf=None), Criterion(max_linf=8 / 255),
                Criterion(max_linf=None, max_l2=0.01)]
    for criterion in criteria:
        batch = criterion.met(probs_o, probs_c, labels, images, seeds).tolist()
        rows = [criterion.met_row(probs_o[i].tolist(), probs_c[i].tolist(), int(labels[i]),
                                  images[i], seeds[i]) for i in range(4)]
        assert rows == batch, criterion
    assert Criterion(max_linf=None).met(probs_o, probs_c, labels).tolist() == [False, True, False, True]
    assert Criterion(max_linf=8 / 255).met(probs_o, probs_c, labels, images, seeds).tolist() == [
        False, False, False, True]



def test_the_single_row_check_agrees_with_the_batch_check_on_int8_like_rows():
    """Probabilities on a coarse grid, as an int8 model gives them: ties everywhere."""
    gen = torch.Generator().manual_seed(0)
    probs_o = torch.randint(0, 6, (2000, 4), generator=gen).float() + 1e-3
    probs_c = torch.randint(0, 6, (2000, 4), generator=gen).float() + 1e-3
    probs_o = probs_o / probs_o.sum(1, keepdim=True)
    probs_c = probs_c / probs_c.sum(1, keepdim=True)
    labels = torch.randint(0, 4, (2000,), generator=gen)
    for criterion in (Criterion(max_linf=None), Criterion(kind="any", max_linf=None),
                      Criterion(min_margin_original=0.1, min_margin_compressed=0.1, max_linf=None)):
        batch = criterion.met(probs_o, probs_c, labels).tolist()
        rows = [criterion.met_row(o, c, int(y)) for o, c, y in
                zip(probs_o.tolist(), probs_c.tolist(), labels.tolist())]
        assert rows == batch
        assert 50 < sum(batch) < 1950  # both answers occur


def test_novelty_archive_gives_the_direct_distance_answer():
    """The archive's matrix-vector shortcut must answer as summing squared differences does,
    including for states a rounding error away from the threshold."""
    rng = np.random.default_rng(0)

    def direct(stored: list[np.ndarray], state: np.ndarray) -> bool:
        return min(float(((row - state) ** 2).sum()) for row in stored) > 0.5

    def state() -> list[float]:
        return rng.dirichlet(np.full(10, rng.choice([0.05, 0.5, 5.0]))).tolist()

    archive, stored, answers = NoveltyArchive(), [], []
    for _ in range(600):
        probs_o, probs_c = state(), state()
        novel = archive.is_novel(probs_o, probs_c)
        if stored:
            assert novel == direct(stored, np.array(probs_o + probs_c))
        answers.append(novel)
        if novel or rng.random() < 0.05:
            archive.add(probs_o, probs_c)
            stored.append(np.array(probs_o + probs_c))
    assert len(archive) == len(stored) > 16  # the buffer grew past its first allocation
    assert 0.1 < np.mean(answers) < 0.9
    # A chain's states: small steps from each other (a random walk of both models' logits),
    # where the archive answers from its reference state without measuring every stored one.
    walk, stored, answers = NoveltyArchive(), [], []
    logits = rng.normal(0, 3, (2, 10))
    for _ in range(3000):
        logits += rng.normal(0, 0.3, (2, 10))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs_o, probs_c = (probs / probs.sum(1, keepdims=True)).tolist()
        novel = walk.is_novel(probs_o, probs_c)
        if stored:
            assert novel == direct(stored, np.array(probs_o + probs_c))
        answers.append(novel)
        if novel:
            walk.add(probs_o, probs_c)
            stored.append(np.array(probs_o + probs_c))
    assert 10 < sum(answers) < 100
    edge, base = NoveltyArchive(), [0.5, 0.5] + [0.0] * 8
    edge.add(base, base)
    for squared in np.linspace(0.5 - 1e-12, 0.5 + 1e-12, 201):
        step = float(np.sqrt(squared / 2))
        near = [0.5 + step, 0.5 - step] + [0.0] * 8
        assert edge.is_novel(near, base) == direct([np.array(base + base)], np.array(near + base))

def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="compd, compd-close, dflare"):
        get_strategy("nope")


def _run(pair, seeds, name="compd", **settings):
    recorder = EventRecorder()
    context = SearchContext(pair, search_settings(**settings), rng_seed=7, emit=recorder)
    return list(get_strategy(name).run(context, seeds)), recorder


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_same_seed_same_triggers(name, int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 4, seed=3)
    first, _ = _run(int8_pair, seeds, name, max_queries=400)
    second, _ = _run(int8_pair, seeds, name, max_queries=400)
    assert [r.queries for r in first] == [r.queries for r in second]
    assert [len(r.chain) for r in first] == [len(r.chain) for r in second]
    for a, b in zip(first, second):
        assert (a.trigger is None) == (b.trigger is None)
        if a.trigger is not None:
            assert torch.equal(a.trigger.image, b.trigger.image)


def test_trigger_survives_a_png_round_trip(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 3, seed=1)
    results, _ = _run(int8_pair, seeds, max_queries=3000)
    found = [r for r in results if r.found]
    assert found
    for r in found:
        buffer = io.BytesIO()
        Image.fromarray((r.trigger.image[0].numpy() * 255).round().astype(np.uint8)).save(buffer, "PNG")
        reloaded = torch.from_numpy(np.asarray(Image.open(buffer), dtype=np.float32) / 255.0)[None, None]
        check = int8_pair.predict(reloaded)
        assert bool(Criterion(max_linf=None).met(check.original, check.compressed,
                                                torch.tensor([r.seed.label]))[0])


def test_linf_bound_is_honoured_and_distances_reported(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 4, seed=2)
    results, _ = _run(int8_pair, seeds, max_queries=3000, max_linf=0.3)
    found = [r for r in results if r.found]
    assert len(found) >= 2  # the bound must leave room to find deviations, or this checks nothing
    for r in found:
        assert r.trigger.linf <= 0.3 + 1e-6
        delta = (r.trigger.image - r.seed.image).flatten()
        assert r.trigger.linf == pytest.approx(float(delta.abs().max()), abs=1e-6)
        assert r.trigger.l2 == pytest.approx(float(delta.norm()), abs=1e-5)
        assert r.trigger.is_strict


def test_budget_exhaustion_and_events(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 3, seed=4)
    results, recorder = _run(int8_pair, seeds, "dflare", max_queries=5)
    assert all(r.queries <= 5 for r in results)
    assert {r.exit_reason for r in results if not r.found} <= {ExitReason.QUERY_BUDGET}
    snapshot = recorder.snapshot()
    assert snapshot["seeds_finished"] == 3
    assert snapshot["queries"] == sum(r.queries for r in results)
    assert sum(s["chosen"] for s in snapshot["operators"].values()) == sum(r.iterations for r in results)


@pytest.mark.parametrize("name", ["compd", "dflare"])
def test_stop_signal_ends_the_search_promptly(name, int8_pair, mnist_test):
    """Stop once the first seed is final: no query is spent after it, what was final stays
    final, and the seeds still running end as STOPPED with the queries they really used."""
    seeds = select_seeds(int8_pair, mnist_test, 5, seed=5)
    stop = threading.Event()
    budget = 100_000 if name == "compd" else 2_000  # dflare's first seed ends by itself either way
    context = SearchContext(int8_pair, SearchSettings(max_queries=budget), rng_seed=0, stop=stop)
    results, queries_at_stop = [], None
    # compd without its boundary probes: they solve these int8 seeds in two queries, before a
    # stop could cut any short (a stop during their starts: test_boundary_probe).
    strategy = CompdStrategy(CompdParameters(probe=None)) if name == "compd" else get_strategy(name)
    for result in strategy.run(context, seeds):
        results.append(result)
        if queries_at_stop is None:
            stop.set()
            queries_at_stop = int8_pair.queries
    assert int8_pair.queries == queries_at_stop  # nothing ran after the stop
    first = results[0]
    assert first.exit_reason is not ExitReason.STOPPED and 0 < first.queries <= budget
    stopped = [r for r in results if r.exit_reason is ExitReason.STOPPED]
    if name == "compd":  # all seeds advance together: the ones cut short had really run
        assert len(results) == 5 and stopped
        assert all(r.queries > 0 for r in stopped)
    else:  # one seed after another: the next seeds never started
        assert all(r.queries == 0 for r in stopped)
    assert len({r.seed.position for r in results}) == len(results)


def test_a_stored_tie_shows_as_a_tie():
    from compd_core.search.results import Trigger

    tie = Trigger(torch.zeros(1, 2, 2), torch.tensor([0.1, 0.8, 0.1]), torch.tensor([0.45, 0.45, 0.1]),
                  1.0, 0.1)
    real = Trigger(torch.zeros(1, 2, 2), torch.tensor([0.1, 0.8, 0.1]), torch.tensor([0.5, 0.4, 0.1]),
                   1.0, 0.1)
    assert tie.margin_compressed == 0.0 and not tie.is_strict
    assert real.margin_compressed == pytest.approx(0.1) and real.margin_original == pytest.approx(0.7)
    assert real.is_strict


def test_class_balanced_seeds_take_each_class_in_turn(int8_pair, mnist_test):
    seeds = select_seeds(int8_pair, mnist_test, 30, seed=0, order="balanced")
    assert [s.label for s in seeds] == list(range(10)) * 3
    assert len({s.index for s in seeds}) == 30
    again = select_seeds(int8_pair, mnist_test, 30, seed=0, order="balanced")
    assert [s.index for s in again] == [s.index for s in seeds]
    with pytest.raises(ConfigError, match="per class"):
        select_seeds(int8_pair, mnist_test.subset(list(range(40))), 30, order="balanced")


@pytest.mark.parametrize("count", [0, -1, True, 2.0, "3"])
def test_a_seed_count_that_is_not_a_whole_number_from_1_is_refused(count, int8_pair, mnist_test):
    from compd_core.campaign import CampaignSpec

    with pytest.raises(ConfigError, match="the number of seeds must be a whole number >= 1"):
        select_seeds(int8_pair, mnist_test, count)
    with pytest.raises(ConfigError, match="the number of seeds must be a whole number >= 1"):
        CampaignSpec(pair="lenet5-int8-static", seeds=count)


def test_a_numpy_seed_count_is_a_whole_number(int8_pair, mnist_test):
    assert len(select_seeds(int8_pair, mnist_test, np.int64(3))) == 3
