"""The deviation profile: monotone, deterministic, right on a hand-checked pair and on a zoo pair."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from compd_core.errors import ConfigError, WhiteBoxRequiredError
from compd_core.models.adapters import TorchClassifier
from compd_core.models.base import ModelInfo
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import Criterion, distances
from compd_core.search.profile import ProfileProgress, check_budgets, deviation_profile
from compd_core.search.results import Seed
from compd_core.search.seeds import select_seeds

SHAPE = (1, 12, 12)
THRESHOLD = 128  # the toy compressed model says 1 once any pixel reaches this grey level


class _Constant(nn.Module):
    """The toy original: always class 0, 99% sure."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([5.0, 0.0]).expand(len(x), 2)


class _Bright(nn.Module):
    """The toy compressed model: class 1 exactly when the brightest pixel reaches THRESHOLD/255."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        brightest = x.flatten(1).amax(1)
        return torch.stack([torch.zeros_like(brightest), 100 * (brightest - (THRESHOLD - 0.5) / 255)], 1)


def _toy_pair() -> ModelPair:
    info = ModelInfo("toy", SHAPE, 2, ("0", "1"), "torch")
    return ModelPair(TorchClassifier(_Constant(), info), TorchClassifier(_Bright(), info), name="toy")


def _toy_seeds(gaps: list[int]) -> list[Seed]:
    """Flat images ``gap`` grey levels below the threshold: they deviate within L-inf ``gap``/255 and no less."""
    return [Seed(position=i, index=i, image=torch.full(SHAPE, (THRESHOLD - gap) / 255), label=0)
            for i, gap in enumerate(gaps)]


def test_profile_of_a_hand_checked_pair():
    # Gaps 1, 3, 6, 12 and 40 grey levels: by hand, budgets 2/4/8/16 solve 1/2/3/4 seeds, 40 never.
    profile = deviation_profile(_toy_pair(), _toy_seeds([1, 3, 6, 12, 40]), (2, 4, 8, 16),
                                max_queries=400, rng_seed=0)
    assert [(p.budget, p.solved, p.searched) for p in profile.points] == [
        (2, 1, 5), (4, 2, 4), (8, 3, 3), (16, 4, 2)]
    assert [p.share for p in profile.points] == [0.2, 0.4, 0.6, 0.8]
    assert [o.budget for o in profile.outcomes] == [2, 4, 8, 16, None]
    assert not profile.stopped
    assert profile.sentence(8).startswith("With changes of at most 8/255 per pixel, 60% of 5 test digits (3)")


def test_budgets_are_validated_and_sorted():
    assert check_budgets([16, 2, 8, 2]) == (2, 8, 16)
    for bad in ([], [0], [256], [2.5], [True]):
        with pytest.raises(ConfigError, match="budget"):
            check_budgets(bad)
    with pytest.raises(ConfigError, match="seed"):
        deviation_profile(_toy_pair(), [], (2,))
    with pytest.raises(ConfigError, match="position"):
        deviation_profile(_toy_pair(), _toy_seeds([1]) * 2, (2,))


def test_gradient_profile_refuses_a_black_box_pair():
    from compd_core.zoo import load_pair

    with pytest.raises(WhiteBoxRequiredError):
        deviation_profile(load_pair("lenet5-onnx-int8"), _toy_seeds([1]), (2,), strategy="gradient")


@pytest.fixture(scope="module")
def real_seeds(int8_pair, mnist_test):
    return select_seeds(int8_pair, mnist_test, 8, seed=3)


def test_profile_of_a_zoo_pair_is_monotone_deterministic_and_replays(int8_pair, real_seeds):
    events: list[ProfileProgress] = []
    first = deviation_profile(int8_pair, real_seeds, (16, 64, 128), max_queries=300, rng_seed=1,
                              emit=events.append)
    again = deviation_profile(int8_pair, real_seeds, (16, 64, 128), max_queries=300, rng_seed=1)
    solved = [p.solved for p in first.points]
    assert solved == sorted(solved) and solved[-1] > 0  # monotone, and real deviations exist
    assert first.to_dict()["seed_budgets"] == again.to_dict()["seed_budgets"]
    assert [p.queries for p in first.points] == [p.queries for p in again.points]
    # Each budget searched exactly the seeds the smaller ones left.
    assert [p.searched for p in first.points] == [8, 8 - solved[0], 8 - solved[1]]
    assert sum(1 for e in events if e.budget == 64) == first.points[1].searched
    strict = Criterion()
    for outcome in first.outcomes:
        if outcome.trigger is None:
            continue
        image = outcome.trigger.image[None]
        pred = int8_pair.predict(image)  # replayed through the pair, not read back from the search
        assert bool(strict.met(pred.original, pred.compressed, torch.tensor([outcome.seed.label])))
        _, linf = distances(image, outcome.seed.image[None])
        assert float(linf[0]) <= outcome.budget / 255 + 1e-6


def test_a_stopped_profile_keeps_only_finished_budgets(int8_pair, real_seeds):
    stop = threading.Event()

    def stop_in_second_budget(event: ProfileProgress) -> None:
        if event.budget_index == 1:
            stop.set()

    profile = deviation_profile(int8_pair, real_seeds, (16, 64, 128), max_queries=200, stop=stop,
                                emit=stop_in_second_budget)
    assert profile.stopped
    assert profile.budgets == (16,)


def test_a_profile_that_finds_nothing_says_so():
    profile = deviation_profile(_toy_pair(), _toy_seeds([40, 50]), (2, 8), max_queries=50)
    assert [p.solved for p in profile.points] == [0, 0]
    assert profile.sentence() == ("None of 2 test digits deviated within any budget up to 8/255 per "
                                  "pixel (50 queries per seed and budget); a larger query budget may "
                                  "still find some.")
