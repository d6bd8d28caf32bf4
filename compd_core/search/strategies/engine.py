"""The batched search loop: the engine owns it, a ``Proposer`` only proposes.

Budgets, chains, query counting, events, exit reasons, the criterion check, the shrinking of a
found trigger and trigger creation live here once. A proposer turns the live chains into a
batch of candidate images (``per_chain`` rows per chain, in chain order), scores candidates
with its fitness (lower is better) and adapts its per-chain memory from what it is told.

Every chain starts from its seed; all live chains are evaluated together, one step at a time.
Each chain draws its randomness from its own generator (from the run's rng seed and the seed's
dataset index), so a seed's random moves are the same whether it runs alone, beside others, in
a resumed run or on another worker. So is its result: the models run on passes of a fixed
number of rows (``rows_per_pass``), because float kernels pick their summation order by batch
size and a row's probabilities moved by about 1e-7 with the batch it was in, which changed 21 of
1,000 seeds between in-process and Ray runs (bench/executors.py) before passes were fixed.
Once a chain meets the criterion it may spend a few more rounds shrinking: the proposer
suggests moves back toward the seed, and the engine keeps one only when it still meets the
criterion and is closer. Those queries count like any other.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from compd_core.mutations.base import MutationResult
from compd_core.search.criterion import distances
from compd_core.search.events import OperatorUsage, SeedFinished, SeedStarted, Step
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult
from compd_core.search.strategies.base import SearchContext, make_trigger


@dataclass
class Chain:
    """One seed's search: where it stands, what it spent, and what it found."""

    seed: Seed
    image: torch.Tensor
    fitness: float
    started: float
    seed_fitness: float = 0.0  # the fitness of the seed itself, where a restart begins
    generator: torch.Generator = field(default_factory=torch.Generator)  # this chain's alone
    queries: int = 0
    iterations: int = 0
    steps: list[ChainStep] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)
    found: tuple[torch.Tensor, torch.Tensor] | None = None  # both models' view of the trigger
    l2: float = 0.0  # distance of ``image`` to the seed
    shrink_rounds_left: int = 0
    shrink_stalled: int = 0  # shrinking rounds in a row that found nothing closer
    memory: dict[str, Any] = field(default_factory=dict)  # the proposer's own state


def chain_draws(chains: list[Chain], per_chain: int, width: int) -> torch.Tensor:
    """(len(chains) * per_chain, width) uniforms, each chain's rows from its own generator."""
    return torch.cat([torch.rand(per_chain, width, generator=c.generator) for c in chains])


class Proposer(Protocol):
    """What a batched strategy supplies to the engine."""

    def start(self, chain: Chain, context: SearchContext) -> None:
        """Set up the chain's memory before its first step."""

    def propose(self, chains: list[Chain], per_chain: int) -> MutationResult:
        """``per_chain`` candidates for each chain, rows grouped by chain in chain order; each
        chain's randomness comes from its own ``generator``."""

    def shrink(self, chains: list[Chain], per_chain: int) -> MutationResult:
        """Candidates closer to their seeds than the chains' triggers."""

    def fitness(self, context: SearchContext, probs_original: torch.Tensor,
                probs_compressed: torch.Tensor, labels: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
        """Lower is closer to a deviation."""

    def observe(self, chain: Chain, improved: bool) -> bool:
        """Told after each search step whether the chain moved; True restarts it from its seed."""


@dataclass(frozen=True)
class EngineSettings:
    """How wide the engine searches; the defaults of ``compd`` are measured in bench/search.py."""

    proposals: int = 1  # candidates per chain per search step
    shrink_proposals: int = 4  # candidates per chain per shrinking round
    shrink_rounds: int = 4  # most shrinking rounds after a chain first meets the criterion
    shrink_patience: int = 0  # end shrinking after this many rounds without progress (0: never)
    max_chains: int = 256  # seeds searched at once (fewer where the pair's max_batch is smaller)
    # Forward passes of this many rows, so a row's probabilities do not depend on the rows
    # beside it (see ``ModelPair.predict``); None: one pass per step, as fast as it gets.
    rows_per_pass: int | None = 48


class Engine:
    """Runs a proposer over seeds under the context's budgets and criterion."""

    def __init__(self, proposer: Proposer, settings: EngineSettings) -> None:
        self.proposer = proposer
        self.settings = settings

    def run(self, context: SearchContext, seeds: Sequence[Seed]) -> Iterator[SeedResult]:
        queue = list(seeds)
        chains: list[Chain] = []
        # No more chains than the pair evaluates in one pass, so a 224x224 model's steps stay
        # bounded in memory (a seed's search does not depend on how many run beside it).
        max_chains = max(1, min(self.settings.max_chains, context.pair.max_batch))
        while queue or chains:
            if context.stop.is_set():
                for chain in chains:
                    yield self._finish(context, chain, ExitReason.STOPPED)
                return
            joining = queue[: max_chains - len(chains)]
            del queue[: len(joining)]
            if joining:
                chains += self._start(context, joining)
            finished = [(c, r) for c in chains if (r := self._exhausted(context, c)) is not None]
            if chains and len(finished) < len(chains):
                live = [c for c in chains if all(c is not f for f, _ in finished)]
                finished += [(c, ExitReason.FOUND) for c in self._step(context, live)]
            for chain, reason in finished:
                yield self._finish(context, chain, reason)
            done = {id(c) for c, _ in finished}
            chains = [c for c in chains if id(c) not in done]

    def _start(self, context: SearchContext, seeds: list[Seed]) -> list[Chain]:
        images = torch.stack([s.image for s in seeds])
        labels = torch.tensor([s.label for s in seeds])
        pred = context.pair.predict(images, rows_per_pass=self.settings.rows_per_pass)
        fitness = self.proposer.fitness(context, pred.original, pred.compressed, labels,
                                        torch.zeros(len(seeds)))
        now = time.perf_counter()
        chains = []
        for seed, value in zip(seeds, fitness.tolist()):
            context.emit(SeedStarted(seed.position, seed.index))
            chain = Chain(seed, seed.image, value, now, seed_fitness=value,
                          generator=context.generator_for(seed), queries=1, trace=[value])
            self.proposer.start(chain, context)
            chains.append(chain)
        return chains

    @staticmethod
    def _exhausted(context: SearchContext, chain: Chain) -> ExitReason | None:
        settings = context.settings
        over = chain.queries >= settings.max_queries or (
            settings.time_budget is not None and time.perf_counter() - chain.started >= settings.time_budget)
        if not over:
            return None
        if chain.found is not None:
            return ExitReason.FOUND  # the budget ended its shrinking, not its success
        return ExitReason.QUERY_BUDGET if chain.queries >= settings.max_queries else ExitReason.TIME_BUDGET

    def _step(self, context: SearchContext, chains: list[Chain]) -> list[Chain]:
        """One forward pass for every live chain; returns the chains that are done.

        A chain's candidates never exceed its own remaining budget, and how many it gets does
        not depend on the other chains: each seed's search is the same whatever it runs beside.
        """
        wanted: dict[tuple[bool, int], list[Chain]] = {}
        for chain in chains:
            shrinking = chain.found is not None
            per_chain = self.settings.shrink_proposals if shrinking else self.settings.proposals
            room = context.settings.max_queries - chain.queries
            wanted.setdefault((shrinking, max(1, min(per_chain, room))), []).append(chain)
        groups: list[tuple[list[Chain], int, MutationResult]] = []
        for (shrinking, k), members in wanted.items():
            move = self.proposer.shrink if shrinking else self.proposer.propose
            groups.append((members, k, move(members, k)))
        images = torch.cat([g[2].images for g in groups])
        seeds = torch.cat([torch.stack([c.seed.image for c in g[0]]).repeat_interleave(g[1], 0)
                           for g in groups])
        labels = torch.cat([torch.tensor([c.seed.label for c in g[0]]).repeat_interleave(g[1])
                            for g in groups])
        pred = context.pair.predict(images, rows_per_pass=self.settings.rows_per_pass)
        met = context.settings.criterion.met(pred.original, pred.compressed, labels, images, seeds)
        l2, _ = distances(images, seeds)
        fitness = self.proposer.fitness(context, pred.original, pred.compressed, labels, l2)
        done: list[Chain] = []
        offset = 0
        for members, k, result in groups:
            rows = slice(offset, offset + k * len(members))
            done += self._update(context, members, k, result, pred, met[rows], l2[rows],
                                 fitness[rows], offset)
            offset += k * len(members)
        return done

    def _update(self, context, members, k, result, pred, met, l2, fitness, offset) -> list[Chain]:
        """Move each chain to its best candidate when that is progress; report what happened."""
        n = len(members)
        shrinking = members[0].found is not None
        # A deviating candidate beats every other; among those the closest wins.
        score = torch.where(met, l2 - 1e9, fitness if not shrinking else torch.full_like(l2, float("inf")))
        best = score.view(n, k).argmin(1) + torch.arange(n) * k
        won = torch.zeros(n * k, dtype=torch.bool)
        done = []
        for i, chain in enumerate(members):
            row = int(best[i])
            chain.queries += k
            chain.iterations += 1
            found_now = bool(met[row])
            if shrinking:
                accepted = found_now and float(l2[row]) < chain.l2
            else:
                accepted = found_now or float(fitness[row]) < chain.fitness
                if self.proposer.observe(chain, accepted) and not accepted:
                    self._restart(chain)
            if accepted:
                won[row] = True
                at = offset + row
                chain.image, chain.l2 = result.images[row], float(l2[row])
                if not shrinking:
                    chain.fitness = float(fitness[row])
                if found_now:
                    chain.found = (pred.original[at], pred.compressed[at])
                    if not shrinking:
                        chain.shrink_rounds_left = self.settings.shrink_rounds
                chain.steps.append(ChainStep(chain.iterations, result.operator, result.params[row],
                                             chain.fitness, int(pred.original[at].argmax()),
                                             int(pred.compressed[at].argmax()), chain.image))
            if shrinking:
                chain.shrink_rounds_left -= 1
                chain.shrink_stalled = 0 if accepted else chain.shrink_stalled + 1
                if self.settings.shrink_patience and chain.shrink_stalled >= self.settings.shrink_patience:
                    chain.shrink_rounds_left = 0
            chain.trace.append(chain.fitness)
            context.emit(Step(chain.seed.position, chain.iterations, result.operator, accepted,
                              chain.fitness, int(pred.original[offset + row].argmax()),
                              int(pred.compressed[offset + row].argmax()), found_now, chain.queries))
            if chain.found is not None and chain.shrink_rounds_left <= 0:
                done.append(chain)
        context.emit(OperatorUsage({result.operator: n * k}, {result.operator: int(won.sum())}
                                   if won.any() else {}))
        return done

    def _restart(self, chain: Chain) -> None:
        """Back to the seed: a stalled chain tries another path (its queries stay spent)."""
        chain.image, chain.fitness, chain.l2 = chain.seed.image, chain.seed_fitness, 0.0
        chain.steps.clear()

    @staticmethod
    def _finish(context: SearchContext, chain: Chain, reason: ExitReason) -> SeedResult:
        trigger = None
        if chain.found is not None:
            reason = ExitReason.FOUND
            trigger = make_trigger(chain.image, chain.seed, *chain.found)
        result = SeedResult(chain.seed, reason, chain.queries, chain.iterations,
                            time.perf_counter() - chain.started, trigger, chain.steps, chain.trace)
        context.emit(SeedFinished(result))
        return result
