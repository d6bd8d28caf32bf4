"""What a search may spend and what counts as success, checked once at the door."""

from __future__ import annotations

import math
from dataclasses import dataclass

from compd_core.errors import ConfigError
from compd_core.mutations.registry import get_operators
from compd_core.search.criterion import Criterion


@dataclass(frozen=True)
class SearchSettings:
    """Budgets shared by every strategy, and the one ``Criterion`` that decides what counts.

    ``criterion`` may be given as a kind name ('valid' or 'any') for the default margins and
    distance budget of that kind.
    """

    max_queries: int = 10_000  # per seed; DFLARE's median is ~100, 10k leaves room for hard seeds
    time_budget: float | None = None  # seconds per seed; None = unlimited
    criterion: Criterion = Criterion()
    operators: str = "dflare"  # operator set name, see compd_core.mutations

    def __post_init__(self) -> None:
        if isinstance(self.criterion, str):
            object.__setattr__(self, "criterion", Criterion(kind=self.criterion))  # type: ignore[arg-type]
        if not isinstance(self.criterion, Criterion):
            raise ConfigError(f"criterion must be a Criterion, got {type(self.criterion).__name__}")
        if isinstance(self.max_queries, bool) or not isinstance(self.max_queries, int) or self.max_queries < 1:
            raise ConfigError(f"the query budget must be a whole number >= 1, got {self.max_queries}")
        if self.time_budget is not None and not (
            isinstance(self.time_budget, (int, float)) and math.isfinite(self.time_budget)
            and self.time_budget > 0
        ):
            raise ConfigError(f"the time budget must be a finite number of seconds > 0, got {self.time_budget}")
        get_operators(self.operators)  # raises a ConfigError naming the valid sets

    @property
    def max_linf(self) -> float | None:
        """The criterion's L-inf budget: strategies keep every mutant inside it."""
        return self.criterion.max_linf
