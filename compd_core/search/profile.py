"""The deviation profile of a pair: how many seeds deviate within each L-inf distance budget.

One number per budget answers "how close to a test input does the compressed model answer
differently while the original keeps its answer?". Budgets are searched from the smallest up,
and each budget searches only the seeds no smaller budget solved: a seed solved within ``b``
counts for every larger budget, so the curve is monotone by construction and no query is spent
twice on a solved seed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from compd_core.errors import ConfigError
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import Criterion
from compd_core.search.events import no_events
from compd_core.search.results import Seed, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy

DEFAULT_BUDGETS: tuple[int, ...] = (2, 4, 8, 16, 32, 64)  # grey levels of 255, doubling
GREY_LEVELS = 255


@dataclass(frozen=True)
class ProfileProgress:
    """One seed of one budget is done: enough for a progress bar and a live chart."""

    budget: int  # grey levels
    budget_index: int  # 0-based position of ``budget`` among the profile's budgets
    budgets_total: int
    seeds_done: int  # seeds of this budget finished so far
    seeds_searched: int  # seeds this budget searches (those no smaller budget solved)
    solved: int  # seeds solved within this budget so far, smaller budgets included


ProfileSink = Callable[[ProfileProgress], None]


def no_profile_events(event: ProfileProgress) -> None:
    """The default sink: ignore everything."""


@dataclass(frozen=True)
class ProfilePoint:
    """The profile at one budget."""

    budget: int  # largest change of any pixel, in grey levels of 255
    solved: int  # seeds with a deviation within this budget (or a smaller one)
    share: float  # solved / seeds of the profile
    searched: int  # seeds searched at this budget: those no smaller budget solved
    queries: int  # queries spent at this budget

    @property
    def max_linf(self) -> float:
        return self.budget / GREY_LEVELS


@dataclass(frozen=True)
class SeedOutcome:
    """Where one seed first deviated: the smallest budget and the trigger found within it."""

    seed: Seed
    budget: int | None  # None: no deviation within the largest budget
    trigger: Trigger | None


@dataclass(frozen=True)
class DeviationProfile:
    """Share of seeds with a strict deviation within each L-inf budget, smallest budget first."""

    pair: str
    strategy: str
    seeds: int
    max_queries: int  # per seed and budget
    rng_seed: int
    criterion: Criterion  # margins of what counted; its distance budget is the profile's
    points: tuple[ProfilePoint, ...]
    outcomes: tuple[SeedOutcome, ...] = field(repr=False)
    stopped: bool  # stopped before the last budget finished: later points are missing

    @property
    def budgets(self) -> tuple[int, ...]:
        return tuple(p.budget for p in self.points)

    def point(self, budget: int) -> ProfilePoint:
        for p in self.points:
            if p.budget == budget:
                return p
        raise ConfigError(f"the profile has no budget {budget}; it has {', '.join(map(str, self.budgets))}")

    def sentence(self, budget: int | None = None) -> str:
        """The profile at one budget in words and numbers (default: 8/255 if measured, else the median budget)."""
        if not self.points:
            return f"no budget of the profile of {self.pair} finished"
        if budget is None:
            budget = 8 if 8 in self.budgets else self.points[len(self.points) // 2].budget
        p = self.point(budget)
        if self.points[-1].solved == 0:
            return (f"None of {self.seeds} test digits deviated{self._margins_asked()} within any "
                    f"budget up to {self.points[-1].budget}/255 per pixel ({self.max_queries:,} "
                    "queries per seed and budget); a larger query budget may still find some.")
        text = (f"With changes of at most {p.budget}/255 per pixel, {p.share:.0%} of {self.seeds} "
                f"test digits ({p.solved}) make the compressed model answer differently"
                f"{_at_least(self.criterion.min_margin_compressed)} while the original keeps its "
                f"answer{_at_least(self.criterion.min_margin_original)}")
        first = next((q for q in self.points if q.solved), None)
        if p.solved == 0 and first is not None:
            text += f"; the smallest budget that finds any is {first.budget}/255 ({first.share:.0%})"
        return text + "."

    def _margins_asked(self) -> str:
        """' (original's margin at least 0.2, ...)' where the profile asked for margins."""
        c = self.criterion
        asked = [f"{who} margin at least {value:g}" for who, value in
                 (("original's", c.min_margin_original), ("compressed model's", c.min_margin_compressed))
                 if value]
        return f" ({', '.join(asked)})" if asked else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "strategy": self.strategy,
            "seeds": self.seeds,
            "max_queries": self.max_queries,
            "rng_seed": self.rng_seed,
            "min_margin_original": self.criterion.min_margin_original,
            "min_margin_compressed": self.criterion.min_margin_compressed,
            "stopped": self.stopped,
            "points": [
                {"budget": p.budget, "max_linf": p.max_linf, "solved": p.solved, "share": p.share,
                 "searched": p.searched, "queries": p.queries}
                for p in self.points
            ],
            "seed_budgets": {str(o.seed.index): o.budget for o in self.outcomes},
            "sentence": self.sentence(),
        }


def _at_least(margin: float) -> str:
    """Words for a margin minimum of the criterion; nothing for strict only."""
    return f" (by a margin of at least {margin:g})" if margin else ""


def check_budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    """Sorted, distinct grey-level budgets in 1..255, or a ``ConfigError`` that says how to fix them."""
    if not budgets:
        raise ConfigError("give at least one distance budget, e.g. --budgets 2,4,8,16")
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= GREY_LEVELS:
            raise ConfigError(
                f"distance budgets are whole grey levels from 1 to 255 (largest pixel change), got {b!r}"
            )
    return tuple(sorted(set(budgets)))


def deviation_profile(
    pair: ModelPair,
    seeds: Sequence[Seed],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    *,
    strategy: str = "compd",
    max_queries: int = 2_000,
    rng_seed: int = 0,
    criterion: Criterion | None = None,
    stop: threading.Event | None = None,
    emit: ProfileSink = no_profile_events,
) -> DeviationProfile:
    """Search ``seeds`` under growing L-inf budgets; each budget only the seeds still unsolved.

    ``criterion`` sets the margins (default: strict only); its distance budget is replaced by
    each of ``budgets`` in turn. ``stop`` is honoured between seeds: the budgets finished by
    then are returned and ``stopped`` is set. Use ``strategy='gradient'`` for white-box pairs.
    """
    ordered = check_budgets(budgets)
    if not seeds:
        raise ConfigError("a deviation profile needs at least one seed")
    base = criterion or Criterion()
    if base.kind != "valid":
        raise ConfigError("a deviation profile asks that the original keep the seed's label: use kind='valid'")
    if len({s.position for s in seeds}) != len(seeds):
        raise ConfigError("each seed of a profile needs its own position; number them 0..N-1")
    if get_strategy(strategy).needs_white_box:
        pair.white_box()  # refuses a black-box pair before any work is done
    stop = stop or threading.Event()
    solved: dict[int, tuple[int, Trigger]] = {}  # seed position -> (budget, trigger)
    points: list[ProfilePoint] = []
    for i, budget in enumerate(ordered):
        todo = [s for s in seeds if s.position not in solved]
        settings = SearchSettings(max_queries=max_queries,
                                  criterion=replace(base, max_linf=budget / GREY_LEVELS, max_l2=None))
        context = SearchContext(pair, settings, rng_seed, no_events, stop)
        queries = done = 0
        for result in get_strategy(strategy).run(context, todo):
            queries += result.queries
            done += 1
            if result.trigger is not None:
                solved[result.seed.position] = (budget, result.trigger)
            emit(ProfileProgress(budget, i, len(ordered), done, len(todo), len(solved)))
        if stop.is_set():
            break
        points.append(ProfilePoint(budget, len(solved), len(solved) / len(seeds), len(todo), queries))
    outcomes = tuple(
        SeedOutcome(s, *solved[s.position]) if s.position in solved else SeedOutcome(s, None, None)
        for s in seeds
    )
    return DeviationProfile(pair.name, strategy, len(seeds), max_queries, rng_seed, base,
                            tuple(points), outcomes, stopped=stop.is_set())


__all__ = [
    "DEFAULT_BUDGETS",
    "DeviationProfile",
    "ProfilePoint",
    "ProfileProgress",
    "SeedOutcome",
    "check_budgets",
    "deviation_profile",
    "no_profile_events",
]
