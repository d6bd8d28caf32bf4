"""``random``: the unguided baseline. Each iteration applies a uniformly chosen operator to the
current input and always keeps the result (a random walk), one query per iteration."""

from __future__ import annotations

from compd_core.mutations import UniformPolicy
from compd_core.search.strategies.dflare import DflareStrategy


class RandomStrategy(DflareStrategy):
    name = "random"
    description = "random walk: uniform operator choice, every mutant kept"

    def policy(self, operator_names: tuple[str, ...]):
        return UniformPolicy(operator_names)

    def accepts(self, diff_gain: float, novel: bool) -> bool:
        return True
