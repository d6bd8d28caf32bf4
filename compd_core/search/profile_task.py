"""A deviation profile as a job any executor can run: the pair, data and seeds by description.

``compd profile`` runs it under its progress printer and the dashboard's Models page through the
server's executor (``$COMPD_EXECUTOR``), so both tell the same ``Progress`` events and end with
the same ``Finished`` or ``Stopped``; the task loads its own pair and data, which never travel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError
from compd_core.events import EventSink, JobKind, Progress, ended
from compd_core.executors.base import files_read
from compd_core.pair_spec import PairSpec
from compd_core.search.criterion import Criterion
from compd_core.search.profile import (
    DEFAULT_BUDGETS,
    DeviationProfile,
    ProfileProgress,
    check_budgets,
    deviation_profile,
)
from compd_core.search.seeds import Order, explicit_seeds, select_seeds


@dataclass(frozen=True)
class ProfileTask:
    """The deviation profile of ``pair`` on ``seeds`` images of ``dataset`` (a dataset spec as
    ``load_dataset`` takes it), or on the listed ``seed_indices``."""

    kind: ClassVar[JobKind] = "profile"
    pair: PairSpec
    dataset: str
    seeds: int = 50
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    max_queries: int = 2_000
    strategy: str = "compd"
    rng_seed: int = 0
    seed_order: Order = "random"
    seed_indices: tuple[int, ...] | None = None
    min_margin_original: float = 0.0  # 0: strict only
    min_margin_compressed: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "budgets", check_budgets(self.budgets))
        self.criterion()  # a margin outside [0, 1) is refused here, before any work
        if self.seed_indices is not None:
            object.__setattr__(self, "seed_indices", tuple(self.seed_indices))
        for name in ("seeds", "max_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"a deviation profile's {name.replace('_', ' ')} must be a whole "
                                  f"number >= 1, got {value!r}")

    def criterion(self) -> Criterion:
        """What counts at every budget: strict, with the task's margins (its distance budget
        is replaced by each of the profile's)."""
        return Criterion(min_margin_original=self.min_margin_original,
                         min_margin_compressed=self.min_margin_compressed)

    def local_files(self) -> list[str]:
        return files_read([self.pair], self.dataset)

    def __call__(self, emit: EventSink, stop: threading.Event) -> DeviationProfile:
        pair = self.pair.load()
        data = load_dataset(self.dataset, pair.input_shape, pair.class_names)
        if self.seed_indices is None:
            seeds = select_seeds(pair, data, self.seeds, seed=self.rng_seed, order=self.seed_order)
        else:
            seeds = explicit_seeds(pair, data, self.seed_indices)

        def progress(event: ProfileProgress) -> None:
            emit(Progress("profile", f"budget {event.budget}", event.seeds_done,
                          event.seeds_searched,
                          f"budget {event.budget}/255 ({event.budget_index + 1} of "
                          f"{event.budgets_total}), {event.solved} of {len(seeds)} seeds deviate"))

        profile = deviation_profile(pair, seeds, self.budgets, strategy=self.strategy,
                                    max_queries=self.max_queries, rng_seed=self.rng_seed,
                                    criterion=self.criterion(), stop=stop, emit=progress)
        done = len(profile.points)
        emit(ended("profile", profile.to_dict(), stopped=profile.stopped,
                   line=f"kept the {done} budget{'s' if done != 1 else ''} searched to the end"))
        return profile
