"""The before/after numbers of a repair, each measured the same way on both pairs."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import Criterion, trigger_margins
from compd_core.search.profile import deviation_profile
from compd_core.search.results import Seed, SeedResult
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy


def strictly_agrees(probs_compressed: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boolean (N,): the compressed model gives ``labels`` and no other class ties with it
    (an argmax tie is not an answer, so a tie is not a repair either)."""
    _, margin_compressed = trigger_margins(probs_compressed, probs_compressed, labels)
    return margin_compressed < 0


def agreement_rate(pair: ModelPair, images: torch.Tensor) -> float:
    """Fraction of images on which the compressed model now strictly gives the original's label.

    On a trigger the original's label is the seed's (the deviation criterion required it),
    and the original is never changed, so agreeing is what "repaired" means.
    """
    if len(images) == 0:
        return 0.0
    prediction = pair.predict(images)
    agrees = strictly_agrees(prediction.compressed, prediction.labels_original)
    return int(agrees.sum()) / len(agrees)  # counts, not a float32 mean: 45 of 50 is 0.9


def unrepaired_margin(pair: ModelPair, images: torch.Tensor) -> float | None:
    """The original's median margin for its own label (0 undecided, 1 certain) at the triggers
    the compressed model still does not strictly agree with; None when it agrees on all. Where
    the original is itself nearly undecided, a repaired model must follow it within a few
    hundredths of probability."""
    if len(images) == 0:
        return None
    prediction = pair.predict(images)
    labels = prediction.labels_original
    margin_original, _ = trigger_margins(prediction.original, prediction.original, labels)
    left = margin_original[~strictly_agrees(prediction.compressed, labels)].tolist()
    return statistics.median(left) if left else None


@dataclass(frozen=True)
class TestNumbers:
    accuracy_original: float
    accuracy_compressed: float
    disagreements: int
    images: int


def test_numbers(pair: ModelPair, dataset: ImageDataset) -> TestNumbers:
    """Both models' accuracy and their top-1 disagreements (as ``characterize`` counts them)."""
    prediction = pair.predict(dataset.images)
    right_o = prediction.labels_original == dataset.labels
    right_c = prediction.labels_compressed == dataset.labels
    return TestNumbers(float(right_o.float().mean()), float(right_c.float().mean()),
                       int(prediction.disagree.sum()), len(dataset))


def disagreements(pair: ModelPair, images: torch.Tensor) -> int:
    """Top-1 disagreements on a batch of any size (predicted in ``pair``'s chunks)."""
    return int(pair.predict(images).disagree.sum())


def deviation_share(
    pair: ModelPair,
    seeds: Sequence[Seed],
    budget: int,
    max_queries: int,
    rng_seed: int,
    stop: threading.Event,
    criterion: Criterion | None = None,
) -> float | None:
    """Share of ``seeds`` with a strict deviation within ``budget`` grey levels (L-inf), with
    ``criterion``'s margins (its distance budget aside; default strict only): one point of the
    deviation profile; None when stopped. A run that asked the original to stay sure is judged
    on the deviations it asked for, not on ones it excluded."""
    margins = Criterion() if criterion is None else Criterion(
        min_margin_original=criterion.min_margin_original,
        min_margin_compressed=criterion.min_margin_compressed)  # kind 'valid': the seed's label
    profile = deviation_profile(pair, seeds, [budget], max_queries=max_queries,
                                rng_seed=rng_seed, criterion=margins, stop=stop)
    if profile.stopped or not profile.points:
        return None
    return profile.points[0].share


@dataclass(frozen=True)
class ResearchNumbers:
    """How hard the search found it to deviate a pair from the same seeds."""

    seeds: int
    found: int
    success_rate: float
    median_queries: float | None  # over the seeds that deviated, as the campaign reports it
    queries_per_trigger: float | None  # all queries spent / deviations found: counts the misses
    stopped: bool


def research(
    pair: ModelPair,
    strategy: str,
    seeds: Sequence[Seed],
    settings: SearchSettings,
    rng_seed: int,
    stop: threading.Event,
    on_seed: Callable[[int, int], None] | None = None,
) -> ResearchNumbers:
    """Search ``seeds`` of ``pair`` with a fresh strategy, nothing stored.

    Giving both pairs the very same Seed objects (not a new seed selection, which depends on
    where the pair agrees) keeps the comparison about the model and nothing else.
    """
    searcher = get_strategy(strategy)
    if searcher.needs_white_box:
        pair.white_box()
    context = SearchContext(pair, settings, rng_seed, stop=stop)
    results: list[SeedResult] = []
    for result in searcher.run(context, seeds):
        results.append(result)
        if on_seed is not None:
            on_seed(len(results), sum(r.found for r in results))
    hits = [r for r in results if r.found]
    queries = sum(r.queries for r in results)
    return ResearchNumbers(
        seeds=len(results),
        found=len(hits),
        success_rate=len(hits) / len(results) if results else 0.0,
        median_queries=float(statistics.median(r.queries for r in hits)) if hits else None,
        queries_per_trigger=queries / len(hits) if hits else None,
        stopped=stop.is_set(),
    )
