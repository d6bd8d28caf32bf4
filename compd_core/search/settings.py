"""What a search may spend and what counts as success, checked once at the door."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compd_core.errors import ConfigError
from compd_core.mutations.registry import get_operators

Criterion = Literal["valid", "any"]


@dataclass(frozen=True)
class SearchSettings:
    """Budgets and rules shared by every strategy.

    ``criterion='valid'`` (the default) counts a deviation only when the original still gives
    the seed's label; ``'any'`` accepts any disagreement, as the published DFLARE code does.
    """

    max_queries: int = 10_000  # per seed; DFLARE's median is ~100, 10k leaves room for hard seeds
    time_budget: float | None = None  # seconds per seed; None = unlimited
    max_linf: float | None = None  # L-inf bound around the seed, in [0, 1]; None = unbounded
    criterion: Criterion = "valid"
    operators: str = "dflare"  # operator set name, see compd_core.mutations

    def __post_init__(self) -> None:
        if not isinstance(self.max_queries, int) or self.max_queries < 1:
            raise ConfigError(f"the query budget must be a whole number >= 1, got {self.max_queries}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"the time budget must be > 0 seconds, got {self.time_budget}")
        if self.max_linf is not None and not 0 < self.max_linf <= 1:
            raise ConfigError(
                f"--max-linf must lie in (0, 1] (pixel scale), got {self.max_linf}; "
                "e.g. 0.1 allows about 25 grey levels"
            )
        if self.criterion not in ("valid", "any"):
            raise ConfigError(f"criterion must be 'valid' or 'any', got {self.criterion!r}")
        get_operators(self.operators)  # raises a ConfigError naming the valid sets
