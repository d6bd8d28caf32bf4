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
criterion and is closer. Those queries count like any other. A step's candidates that are the
same image count once (``compd-close``'s guided steps propose one image four times).

A pass of fixed size is mostly padding when few chains are left (the hard seeds at the end of
a run, or a small run): 10 chains fill 10 of 48 rows. The engine fills that room by looking
ahead: a chain also proposes the steps it would take next if its current candidates are
rejected (most are), all evaluated in the same pass. Its steps are then taken one by one as
before; at the first that is accepted (or ends the chain) the rest are thrown away and their
random draws are put back, so every seed gets exactly the result it gets without looking
ahead, for a fraction of the passes. Thrown-away rows are evaluated but never counted in a
seed's queries: they took the place of padding.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from compd_core.models.pair import PairPrediction
from compd_core.mutations.base import MixedMutation, MutationResult
from compd_core.search.criterion import distances
from compd_core.search.events import OperatorUsage, SeedFinished, SeedStarted, Step
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult
from compd_core.search.strategies.base import SearchContext, make_trigger


class DrawStream:
    """A chain's uniforms in the order its generator gives them, with a way back: draws taken
    for look-ahead steps that never happen are put back, so the next step reads them again.

    The CPU generator fills a tensor element by element, so ``take(12)`` and three ``take(4)``
    give the same numbers: how draws are grouped does not change the stream.
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        self._ahead = torch.empty(0)  # values put back, taken before fresh ones
        self._taken: list[torch.Tensor] | None = None  # each take since ``remember``

    def take(self, count: int) -> torch.Tensor:
        """The next ``count`` uniforms in [0, 1)."""
        if len(self._ahead) >= count:
            values, self._ahead = self._ahead[:count], self._ahead[count:]
        else:
            fresh = torch.rand(count - len(self._ahead), generator=self.generator)
            values, self._ahead = torch.cat([self._ahead, fresh]), torch.empty(0)
        if self._taken is not None:
            self._taken.append(values)
        return values

    def remember(self) -> None:
        """Keep each take from now on, so ``keep`` can put some back."""
        self._taken = []

    @property
    def takes(self) -> int:
        """Takes since ``remember``."""
        return 0 if self._taken is None else len(self._taken)

    def keep(self, takes: int) -> None:
        """Keep the first ``takes`` takes since ``remember``, put the later ones back in order,
        and stop remembering."""
        later = (self._taken or [])[takes:]
        if later:
            self._ahead = torch.cat([*later, self._ahead])
        self._taken = None


@dataclass
class Chain:
    """One seed's search: where it stands, what it spent, and what it found."""

    seed: Seed
    image: torch.Tensor
    fitness: float
    started: float
    seed_fitness: float = 0.0  # the fitness of the seed itself, where a restart begins
    generator: torch.Generator = field(default_factory=torch.Generator)  # this chain's alone
    draws: DrawStream = field(init=False)  # the generator's uniforms, read through ``chain_draws``
    queries: int = 0
    iterations: int = 0
    steps: list[ChainStep] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)
    found: tuple[torch.Tensor, torch.Tensor] | None = None  # both models' view of the trigger
    l2: float = 0.0  # distance of ``image`` to the seed
    shrink_rounds_left: int = 0
    shrink_stalled: int = 0  # shrinking rounds in a row that found nothing closer
    memory: dict[str, Any] = field(default_factory=dict)  # the proposer's own state

    def __post_init__(self) -> None:
        self.draws = DrawStream(self.generator)


def distinct_rows(images: torch.Tensor) -> int:
    """How many different images a step's candidates are: the pair's answer to an image is
    known once it was asked, so a repeated candidate is not another query."""
    if len(images) < 2:
        return len(images)
    return len(torch.unique(images.flatten(1), dim=0))


def chain_draws(chains: list[Chain], per_chain: int, width: int) -> torch.Tensor:
    """(len(chains) * per_chain, width) uniforms, each chain's rows from its own generator."""
    return torch.cat([c.draws.take(per_chain * width).view(per_chain, width) for c in chains])


@dataclass(frozen=True)
class _Scored:
    """One pass's evaluation: both models' probabilities and, per row, criterion, L2, fitness."""

    prediction: PairPrediction
    met: list[bool]
    l2: list[float]
    fitness: list[float]
    score: list[float]  # lowest is the best candidate of its step
    labels_original: list[int]
    labels_compressed: list[int]


Proposal = MutationResult | MixedMutation  # a batch of candidates, read row by row
_Group = tuple[list[Chain], int, Proposal]  # chains, candidates per step, their proposals


class Proposer(Protocol):
    """What a batched strategy supplies to the engine.

    ``propose`` and ``shrink`` may read only a chain's ``image``, ``seed`` and ``memory`` and
    draw only through ``chain_draws``; ``observe`` may change only ``memory``. The engine relies
    on that to look ahead (it proposes on copies of a chain as it would be after rejections).
    """

    def start(self, chain: Chain, context: SearchContext) -> None:
        """Set up the chain's memory before its first step."""

    def propose(self, chains: list[Chain], per_chain: int) -> Proposal:
        """``per_chain`` candidates for each chain, rows grouped by chain in chain order; each
        chain's randomness comes from one ``chain_draws`` call (its own generator's stream)."""

    def shrink(self, chains: list[Chain], per_chain: int) -> MutationResult:
        """Candidates closer to their seeds than the chains' triggers."""

    def fitness(self, context: SearchContext, probs_original: torch.Tensor,
                probs_compressed: torch.Tensor, labels: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
        """Lower is closer to a deviation."""

    def observe(self, chain: Chain, improved: bool) -> bool:
        """Told after each search step whether the chain moved; True restarts it from its seed."""

    def worth_shrinking(self, operator: str) -> bool:
        """Whether a trigger found by ``operator`` gets the engine's shrinking rounds."""

    @property
    def starts_per_step(self) -> int | None:
        """Chains the engine starts between two steps; None: as many as there is room for.

        A proposer whose ``start`` is slow (boundary probes: about a second per LeNet seed)
        gives a few, so a run of hundreds of seeds takes its first steps, sends its first
        events and finds its first triggers within seconds instead of after every start."""


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
    # Fill a pass's padding with the steps chains would take next if their candidates are
    # rejected; a seed's result is the same either way (see the module docstring).
    look_ahead: bool = True


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
            room = max_chains - len(chains)
            joining = queue[: min(room, self.proposer.starts_per_step or room)]
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
        chains = []
        for seed, value in zip(seeds, fitness.tolist()):
            # A proposer's start may take a while (boundary probes: about a second per LeNet
            # seed), so a stop is heeded between seeds and each seed's clock starts with it.
            if context.stop.is_set():
                break
            context.emit(SeedStarted(seed.position, seed.index))
            chain = Chain(seed, seed.image, value, time.perf_counter(), seed_fitness=value,
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
        """One forward pass for every live chain, with the steps they would take next where the
        pass has room (look-ahead); returns the chains that are done.

        A chain's candidates never exceed its own remaining budget, and what it proposes does
        not depend on the other chains: each seed's search is the same whatever it runs beside.
        """
        plan = self._plan(context, chains)
        groups = self._propose(chains, plan)
        scored = self._score(context, groups, plan)
        done: list[Chain] = []
        tried: dict[str, int] = {}
        won: dict[str, int] = {}
        row = 0  # the first row of the current view, in the pass and in its group's result
        for members, k, result in groups:
            first_of_group = row
            for chain in members:
                steps = plan[id(chain)][1]
                taken = 0
                for _ in range(steps):
                    taken += 1
                    asked = chain.queries
                    accepted, finished = self._advance(context, chain, k, result,
                                                       row - first_of_group, row, scored)
                    operator = result.operator_at(row - first_of_group)
                    tried[operator] = tried.get(operator, 0) + chain.queries - asked
                    won[operator] = won.get(operator, 0) + int(accepted)
                    row += k
                    if finished:
                        done.append(chain)
                    if accepted or finished or self._exhausted(context, chain) is not None:
                        break  # the steps looked at beyond this one never happen
                row += (steps - taken) * k
                if steps > 1:
                    chain.draws.keep(taken)
        context.emit(OperatorUsage(tried, {name: n for name, n in won.items() if n}))
        return done

    def _propose(self, chains: list[Chain], plan: dict[int, tuple[int, int]]) -> list[_Group]:
        """The pass's candidates, one group per move and candidate count: each chain's next
        steps, chain after chain, each proposed on the chain as it will stand if every
        candidate before it is rejected (rows of one step are consecutive)."""
        wanted: dict[tuple[bool, int], list[Chain]] = {}
        for chain in chains:
            k, steps = plan[id(chain)]
            if steps > 1:
                chain.draws.remember()
            wanted.setdefault((chain.found is not None, k), []).append(chain)
        groups: list[_Group] = []
        for (shrinking, k), members in wanted.items():
            views = [v for c in members for v in self._views(c, plan[id(c)][1])]
            move = self.proposer.shrink if shrinking else self.proposer.propose
            groups.append((members, k, move(views, k)))
        for chain in chains:
            steps = plan[id(chain)][1]
            if steps > 1 and chain.draws.takes != steps:
                raise RuntimeError(
                    f"{type(self.proposer).__name__} drew {chain.draws.takes} times for {steps} "
                    "steps of one chain; a proposer draws through one chain_draws call per move")
        return groups

    def _score(self, context: SearchContext, groups: list[_Group],
               plan: dict[int, tuple[int, int]]) -> _Scored:
        """Run the pass and judge every row: criterion, distance, fitness and rank."""
        images = torch.cat([result.images for _, _, result in groups])
        repeats = [torch.tensor([plan[id(c)][1] * k for c in members]) for members, k, _ in groups]
        seeds = torch.cat([torch.stack([c.seed.image for c in members]).repeat_interleave(r, 0)
                           for (members, _, _), r in zip(groups, repeats)])
        labels = torch.cat([torch.tensor([c.seed.label for c in members]).repeat_interleave(r)
                            for (members, _, _), r in zip(groups, repeats)])
        shrinking = torch.cat([torch.full((len(result.images),), members[0].found is not None)
                               for members, _, result in groups])
        pred = context.pair.predict(images, rows_per_pass=self.settings.rows_per_pass)
        met = context.settings.criterion.met(pred.original, pred.compressed, labels, images, seeds)
        l2, _ = distances(images, seeds)
        fitness = self.proposer.fitness(context, pred.original, pred.compressed, labels, l2)
        # A deviating candidate beats every other; among those the closest wins. In float64:
        # in float32, 3.1 - 1e9 and 3.2 - 1e9 are the same number, and the first would win.
        score = torch.where(met, l2.double() - 1e9,
                            torch.where(shrinking, torch.inf, fitness).double())
        return _Scored(pred, met.tolist(), l2.tolist(), fitness.tolist(), score.tolist(),
                       pred.original.argmax(1).tolist(), pred.compressed.argmax(1).tolist())

    def _plan(self, context: SearchContext, chains: list[Chain]) -> dict[int, tuple[int, int]]:
        """(candidates per step, steps this pass) of each chain: one step each, then, while the
        pass's padding has room, one more step per chain in turn."""
        s = self.settings
        plan: dict[int, list[int]] = {}
        limits: dict[int, int] = {}
        for chain in chains:
            shrinking = chain.found is not None
            per_chain = s.shrink_proposals if shrinking else s.proposals
            room = context.settings.max_queries - chain.queries
            k = max(1, min(per_chain, room))
            plan[id(chain)] = [k, 1]
            limit = room // k if k == per_chain else 1  # a cut-down last step is never looked past
            if shrinking:
                limit = min(limit, chain.shrink_rounds_left)
                if s.shrink_patience:
                    limit = min(limit, s.shrink_patience - chain.shrink_stalled)
            limits[id(chain)] = limit
        size = min(s.rows_per_pass or 0, context.pair.max_batch)
        if s.look_ahead and size:
            rows = sum(k for k, _ in plan.values())
            free = math.ceil(rows / size) * size - rows
            grew = True
            while grew:
                grew = False
                for chain in chains:
                    entry = plan[id(chain)]
                    if entry[1] < limits[id(chain)] and entry[0] <= free:
                        entry[1] += 1
                        free -= entry[0]
                        grew = True
        return {key: (k, n) for key, (k, n) in plan.items()}

    def _views(self, chain: Chain, steps: int) -> list[Chain]:
        """The chain as it will stand at each of its next ``steps`` steps if every candidate
        before is rejected: the chain itself, then shallow copies that share its draws."""
        if chain.found is not None:  # a rejected shrinking round changes nothing a proposal reads
            return [chain] * steps
        views = [chain]
        for _ in range(steps - 1):
            view = copy.copy(views[-1])
            view.memory = copy.deepcopy(view.memory)
            if self.proposer.observe(view, False):
                view.image = chain.seed.image
            views.append(view)
        return views

    def _advance(self, context: SearchContext, chain: Chain, k: int, result: Proposal,
                 row: int, at: int, scored: _Scored) -> tuple[bool, bool]:
        """Take one step of ``chain`` from its ``k`` candidates (rows ``row`` on of ``result``,
        ``at`` on of the pass): move it to the best when that is progress, and report it.
        Returns (moved, done)."""
        shrinking = chain.found is not None
        met, l2, score = scored.met[at : at + k], scored.l2[at : at + k], scored.score[at : at + k]
        chain.queries += distinct_rows(result.images[row : row + k])
        pick = score.index(min(score))
        row, at = row + pick, at + pick
        chain.iterations += 1
        found_now = met[pick]
        if shrinking:
            accepted = found_now and l2[pick] < chain.l2
        else:
            accepted = found_now or scored.fitness[at] < chain.fitness
        restart = not shrinking and self.proposer.observe(chain, accepted) and not found_now
        label_o, label_c = scored.labels_original[at], scored.labels_compressed[at]
        if accepted:
            chain.image, chain.l2 = result.images[row], l2[pick]
            if not shrinking:
                chain.fitness = scored.fitness[at]
            if found_now:
                pred = scored.prediction
                chain.found = (pred.original[at], pred.compressed[at])
                if not shrinking:
                    worth = self.proposer.worth_shrinking(result.operator_at(row))
                    chain.shrink_rounds_left = self.settings.shrink_rounds if worth else 0
            chain.steps.append(ChainStep(chain.iterations, result.operator_at(row),
                                         result.params_at(row), chain.fitness, label_o, label_c,
                                         chain.image))
        if restart:  # after the move: a proposer's last step of a phase may have been taken
            self._restart(chain)
        if shrinking:
            chain.shrink_rounds_left -= 1
            chain.shrink_stalled = 0 if accepted else chain.shrink_stalled + 1
            if self.settings.shrink_patience and chain.shrink_stalled >= self.settings.shrink_patience:
                chain.shrink_rounds_left = 0
        chain.trace.append(chain.fitness)
        context.emit(Step(chain.seed.position, chain.iterations, result.operator_at(row),
                          accepted, chain.fitness, label_o, label_c, found_now, chain.queries))
        return accepted, chain.found is not None and chain.shrink_rounds_left <= 0

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
