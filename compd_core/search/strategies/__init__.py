"""Search strategies behind one interface; look them up by name."""

from __future__ import annotations

from collections.abc import Callable

from compd_core.errors import ConfigError
from compd_core.search.strategies.base import SearchContext, SequentialStrategy, Strategy
from compd_core.search.strategies.compd import (CompdCloseStrategy, CompdParameters,
                                                CompdStrategy)
from compd_core.search.strategies.dflare import DflareStrategy
from compd_core.search.strategies.diffchaser import DiffChaserStrategy
from compd_core.search.strategies.gradient import GradientStrategy
from compd_core.search.strategies.random_walk import RandomStrategy

STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "compd": CompdStrategy,
    "compd-close": CompdCloseStrategy,
    "dflare": DflareStrategy,
    "diffchaser": DiffChaserStrategy,
    "gradient": GradientStrategy,
    "random": RandomStrategy,
}


def get_strategy(name: str) -> Strategy:
    """A fresh strategy object by name, or a ``ConfigError`` naming the valid ones."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()


__all__ = [
    "STRATEGIES",
    "CompdCloseStrategy",
    "CompdParameters",
    "CompdStrategy",
    "DiffChaserStrategy",
    "DflareStrategy",
    "GradientStrategy",
    "RandomStrategy",
    "SearchContext",
    "SequentialStrategy",
    "Strategy",
    "get_strategy",
]
