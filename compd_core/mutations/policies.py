"""Which operator to try next: uniformly, or DFLARE's Metropolis-Hastings over score ranks.

Both policies count, per operator, how often it was used and how often its mutant was a
success (it became the chain's new input or triggered a deviation); the dashboard charts
those counts. Counting happens in ``update``, so only operators actually applied are counted.

A policy serves one chain through ``choose``/``choose_many`` (it remembers the last choice),
and many independent chains at once through ``choose_for_chains`` (the caller holds each
chain's last choice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

from compd_core.errors import ConfigError, InvalidInputError

NO_PREVIOUS = -1  # in ``choose_for_chains``: this chain has made no choice yet


@runtime_checkable
class OperatorPolicy(Protocol):
    """Chooses operator indices and learns from their outcomes."""

    names: tuple[str, ...]

    def choose(self, generator: torch.Generator) -> int: ...

    def choose_many(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def choose_for_chains(self, last: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def update(self, index: int, success: bool) -> None: ...

    def update_many(self, indices: torch.Tensor, successes: torch.Tensor) -> None: ...

    def reset_chain(self) -> None: ...

    def statistics(self) -> dict[str, dict[str, float]]: ...


class _CountingPolicy:
    """Per-operator selection and success counts, shared by every policy."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(str(name) for name in names)
        if not self.names:
            raise ConfigError("a policy needs at least one operator; pass the operators' names")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"operator names must be unique, got {list(self.names)}")
        # Plain lists: a batch-1 search updates them every iteration, faster than tensors.
        self._selections = [0] * len(self.names)
        self._successes = [0] * len(self.names)
        self._stream = _UniformStream(None)

    def _uniform(self, generator: torch.Generator) -> Callable[[], float]:
        """A source of uniform numbers from ``generator``, buffered for single choices."""
        if not self._stream.serves(generator):
            self._stream = _UniformStream(generator)
        return self._stream.next

    @property
    def selections(self) -> torch.Tensor:
        """How often each operator was applied, (n_ops,) long."""
        return torch.tensor(self._selections, dtype=torch.long)

    @property
    def successes(self) -> torch.Tensor:
        """How often each operator's mutant was a success, (n_ops,) long."""
        return torch.tensor(self._successes, dtype=torch.long)

    @property
    def n_ops(self) -> int:
        return len(self.names)

    def update(self, index: int, success: bool) -> None:
        """Record one use of operator ``index`` and whether its mutant was a success."""
        if not 0 <= int(index) < self.n_ops:
            raise InvalidInputError(
                f"operator index {index} is out of range 0..{self.n_ops - 1}; "
                "pass an index returned by choose()"
            )
        self._selections[index] += 1
        self._successes[index] += int(bool(success))

    def update_many(self, indices: torch.Tensor, successes: torch.Tensor) -> None:
        """Record a batch of uses at once: indices (N,) long, successes (N,) bool."""
        indices = torch.as_tensor(indices, dtype=torch.long).flatten().cpu()
        successes = torch.as_tensor(successes, dtype=torch.bool).flatten().cpu()
        if indices.shape != successes.shape:
            raise InvalidInputError(
                f"got {indices.numel()} operator indices but {successes.numel()} outcomes; "
                "pass one outcome per index"
            )
        if indices.numel() and not (0 <= int(indices.min()) and int(indices.max()) < self.n_ops):
            raise InvalidInputError(
                f"operator indices must be in 0..{self.n_ops - 1}; pass indices from choose_many()"
            )
        for i, (used, won) in enumerate(zip(torch.bincount(indices, minlength=self.n_ops).tolist(),
                                            torch.bincount(indices[successes], minlength=self.n_ops).tolist())):
            self._selections[i] += used
            self._successes[i] += won

    def score_list(self) -> list[float]:
        """successes / selections per operator, 0 for an operator never used."""
        return [won / max(used, 1) for used, won in zip(self._selections, self._successes)]

    def scores(self) -> torch.Tensor:
        """``score_list`` as a float64 tensor."""
        return torch.tensor(self.score_list(), dtype=torch.float64)

    def statistics(self) -> dict[str, dict[str, float]]:
        """{name: {"selections", "successes", "score"}}: JSON-ready, for the dashboard."""
        scores = self.score_list()
        return {
            name: {
                "selections": self._selections[i],
                "successes": self._successes[i],
                "score": scores[i],
            }
            for i, name in enumerate(self.names)
        }


class UniformPolicy(_CountingPolicy):
    """Every operator equally likely at every step; the baseline MH is measured against."""

    def choose(self, generator: torch.Generator) -> int:
        return int(self._uniform(generator)() * self.n_ops)

    def choose_many(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(self.n_ops, (n,), generator=generator, device=generator.device).cpu()

    def choose_for_chains(self, last: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.choose_many(int(torch.as_tensor(last).numel()), generator)

    def reset_chain(self) -> None:
        """Nothing to forget: uniform choices have no memory."""


class MetropolisHastingsPolicy(_CountingPolicy):
    """DFLARE's operator choice: a Metropolis-Hastings walk over operators ranked by score.

    Before each choice the operators are shuffled and then stably sorted by score, best first,
    so ties are broken at random. With p = 1 / n_ops, a rank k2 is proposed uniformly and
    accepted with probability min(1, (1 - p) ** (k2 - k1)), where k1 is the current rank of
    the previously chosen operator; proposals repeat until one is accepted. The first choice
    of a chain is uniform. (DFLARE's released code always uses k1 = -1 through a comparison
    bug; this is the rule its paper describes.)

    For speed each draw takes a block of proposals with their acceptance coins in one tensor
    call and keeps the first accepted; the rare block with none accepted continues one
    proposal at a time, so the outcome is exactly that of the sequential loop.
    """

    def __init__(self, names: Sequence[str], proposals_per_draw: int = 32) -> None:
        super().__init__(names)
        if proposals_per_draw < 1:
            raise ConfigError(f"proposals_per_draw must be at least 1, got {proposals_per_draw}")
        self.proposals_per_draw = proposals_per_draw
        self._keep = 1.0 - 1.0 / self.n_ops  # 1 - p
        self._last: int | None = None

    def reset_chain(self) -> None:
        """Start a new chain (a new seed): its next choice is uniform again."""
        self._last = None

    def choose(self, generator: torch.Generator) -> int:
        """The chain's next choice, drawn in plain Python from a buffered uniform stream.

        A batch-1 search calls this every iteration; tensor calls on seven numbers cost more
        than the models' forward pass (measured: a fifth of DFLARE's iteration time).
        """
        draw = self._uniform(generator)
        n_ops = self.n_ops
        keys = self._stream.take(n_ops)
        # Shuffle, then stable sort by score, best first: sorting by (-score, random key, index).
        ranked = sorted(zip([-score for score in self.score_list()], keys, range(n_ops)))
        order = [op for _, _, op in ranked]
        if self._last is None:
            chosen = order[int(draw() * n_ops)]
        else:
            k1 = order.index(self._last)
            while True:
                k2 = int(draw() * n_ops)
                if k2 <= k1 or draw() < self._keep ** (k2 - k1):
                    break
            chosen = order[k2]
        self._last = chosen
        return chosen

    def choose_many(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n successive choices of this policy's chain, each from the previous one."""
        order, ranks, table = (t.tolist() for t in self._draw(n, generator))
        start = self.n_ops
        last = self._last
        chosen: list[int] = []
        for i in range(n):
            column = start if last is None else ranks[i][last]
            op = table[i][column]
            if op < 0:
                op = order[i][self._reject(column, generator)]
            chosen.append(op)
            last = op
        self._last = last
        return torch.tensor(chosen, dtype=torch.long)

    def choose_for_chains(self, last: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One choice for each of many independent chains; ``last`` holds each chain's previous
        operator index, or ``NO_PREVIOUS`` (-1) for a chain that has not chosen yet."""
        last = torch.as_tensor(last, dtype=torch.long).flatten().cpu()
        if last.numel() and not (
            int(last.min()) >= NO_PREVIOUS and int(last.max()) < self.n_ops
        ):
            raise InvalidInputError(
                f"previous operators must be in -1..{self.n_ops - 1} (-1: chain start)"
            )
        order, ranks, table = self._draw(last.numel(), generator)
        k1 = ranks.gather(1, last.clamp(min=0).unsqueeze(1)).squeeze(1)
        column = torch.where(last >= 0, k1, self.n_ops)
        chosen = table.gather(1, column.unsqueeze(1)).squeeze(1)
        for i in (chosen < 0).nonzero().flatten().tolist():
            chosen[i] = order[i, self._reject(int(column[i]), generator)]
        return chosen

    def _draw(
        self, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Orderings and outcomes for n draws, for every possible k1.

        Returns ``order`` (n, n_ops): operator at each rank; ``ranks`` (n, n_ops): rank of each
        operator; ``table`` (n, n_ops + 1): the operator chosen when the previous one sits at
        rank k1 (column k1), or at a chain's start (last column); -1 where the block of
        proposals held no accepted one.
        """
        n_ops, device = self.n_ops, generator.device
        shuffled = torch.rand(n, n_ops, generator=generator, device=device).argsort(dim=1).cpu()
        by_score = self.scores()[shuffled].sort(dim=1, descending=True, stable=True).indices
        order = shuffled.gather(1, by_score)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(n_ops).expand(n, n_ops).contiguous())

        block = (n, self.proposals_per_draw)
        proposals = torch.randint(n_ops, block, generator=generator, device=device).cpu()
        coins = torch.rand(block, generator=generator, device=device, dtype=torch.float64).cpu()
        powers = self._keep ** torch.arange(n_ops, dtype=torch.float64)
        columns = []
        for k1 in range(n_ops):
            accepted = coins < powers[(proposals - k1).clamp(min=0)]
            first = accepted.to(torch.uint8).argmax(dim=1, keepdim=True)
            rank = proposals.gather(1, first).squeeze(1)
            columns.append(torch.where(accepted.gather(1, first).squeeze(1), rank, -1))
        columns.append(proposals[:, 0])  # a chain's first choice: one uniform proposal
        rank_table = torch.stack(columns, dim=1)
        table = torch.where(rank_table >= 0, order.gather(1, rank_table.clamp(min=0)), -1)
        return order, ranks, table

    def _reject(self, k1: int, generator: torch.Generator) -> int:
        """The plain rejection loop, for a draw whose block of proposals was all rejected."""
        device = generator.device
        while True:
            k2 = int(torch.randint(self.n_ops, (1,), generator=generator, device=device))
            if k2 <= k1:
                return k2
            coin = float(torch.rand(1, generator=generator, device=device, dtype=torch.float64))
            if coin < self._keep ** (k2 - k1):
                return k2


class _UniformStream:
    """Uniform [0, 1) numbers from one generator, drawn a block at a time."""

    BLOCK = 1024

    def __init__(self, generator: torch.Generator | None) -> None:
        self._generator = generator
        self._buffer: list[float] = []
        self._position = 0

    def serves(self, generator: torch.Generator) -> bool:
        return generator is self._generator

    def next(self) -> float:
        if self._position == len(self._buffer):
            self._refill()
        self._position += 1
        return self._buffer[self._position - 1]

    def take(self, n: int) -> list[float]:
        """The next n numbers, as n calls of ``next`` would give them."""
        start, end = self._position, self._position + n
        if end > len(self._buffer):
            return [self.next() for _ in range(n)]
        self._position = end
        return self._buffer[start:end]

    def _refill(self) -> None:
        self._buffer = torch.rand(self.BLOCK, generator=self._generator, dtype=torch.float64,
                                  device=self._generator.device).tolist()
        self._position = 0


POLICIES: dict[str, type[UniformPolicy] | type[MetropolisHastingsPolicy]] = {
    "uniform": UniformPolicy,
    "mh": MetropolisHastingsPolicy,
}


def get_policy(name: str, operator_names: Sequence[str]) -> OperatorPolicy:
    """A fresh policy by name ("uniform" or "mh") over the given operators."""
    try:
        policy_type = POLICIES[name]
    except KeyError:
        valid = ", ".join(sorted(POLICIES))
        raise ConfigError(f"unknown operator policy {name!r}; choose one of: {valid}") from None
    return policy_type(operator_names)
