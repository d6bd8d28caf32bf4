"""``compd``: the project's own engine, built to find valid deviations close to their seeds fast.

What it does differently from the published searches (each choice is measured in bench/search.py):
- All seeds advance together: every step makes ``proposals`` mutants of each live chain and
  evaluates all of them in one batched forward pass, so the models run at batch throughput
  instead of one image per call.
- Fitness is the deviation gap max(m_c, -m_o) on log-margins (see ``fitness.deviation_gap``),
  negative exactly on valid deviations, plus a small penalty on the L2 distance to the seed.
  A chain moves to its best proposal only when that improves its fitness.
- Operators are chosen by DFLARE's Metropolis-Hastings rule, with success counts pooled over
  all chains, so what works on this pair is learned in a few steps.
- Besides the chosen operator set it uses its own fine-grained move, ``patch_nudge``. With
  ``operators="nudge"`` (strategy ``compd-close``) it uses that move alone: triggers end up
  far closer to their seeds, for several times the queries (bench/RESULTS.md has both).

Measured and dropped: the operator set without patch_nudge (7% more queries per trigger);
capping the batch-filling proposals at 8 (same queries, up to 3x the seconds per trigger);
applying a fraction (1/2, 1/4) of an operator's change (5% lower L2 for
55% more queries); walking a trigger back towards its seed. Along the line from seed to
trigger the pair deviates only at the trigger itself (11 of 12 int8 LeNet-5 triggers, 41
points each): deviations are thin slivers next to the compressed model's boundary, so any
step back leaves them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from compd_core.mutations import MetropolisHastingsPolicy, get_operators
from compd_core.mutations.nudge import PatchNudge
from compd_core.mutations.policies import NO_PREVIOUS
from compd_core.search.criterion import distances, project_linf
from compd_core.search.events import OperatorUsage, SeedFinished, SeedStarted, Step
from compd_core.search.fitness import any_disagreement_gap, deviation_gap
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult
from compd_core.search.strategies.base import SearchContext, Strategy, make_trigger
from compd_core.search.strategies.batched import apply_grouped, best_per_group


@dataclass(frozen=True)
class CompdParameters:
    """Tuning of the engine; defaults measured on the zoo's LeNet pairs (bench/search.py)."""

    proposals: int = 2  # mutants per chain per step: 2 needed the fewest queries per trigger
    batch_target: int = 256  # when few chains are left, each gets more proposals to fill a batch
    max_chains: int = 256  # seeds searched at once; 256 x 4 = 1,024 images per forward pass
    distance_weight: float = 0.05  # fitness penalty per unit of L2 distance to the seed
    nudge_sizes: tuple[int, ...] = (2, 3, 4)  # patch sides of patch_nudge
    nudge_levels: tuple[int, ...] = (16, 32, 64)  # grey levels patch_nudge adds or removes
    operators: str = "set+nudge"  # "set+nudge": the chosen set plus patch_nudge; "nudge": only it


@dataclass
class _Chain:
    seed: Seed
    image: torch.Tensor
    fitness: float
    queries: int
    iterations: int
    started: float
    steps: list[ChainStep]
    trace: list[float]
    found_probs: tuple[torch.Tensor, torch.Tensor] | None = None  # both models' view of the trigger


class CompdStrategy(Strategy):
    name = "compd"
    description = "batched, margin-guided search of all seeds at once (this project's engine)"

    def __init__(self, parameters: CompdParameters | None = None) -> None:
        self.parameters = parameters or CompdParameters()

    def run(self, context: SearchContext, seeds: Sequence[Seed]) -> Iterator[SeedResult]:
        params, settings = self.parameters, context.settings
        operators = [] if params.operators == "nudge" else get_operators(settings.operators)
        operators.append(PatchNudge(sizes=params.nudge_sizes, levels=params.nudge_levels))
        names = [op.name for op in operators]
        policy = MetropolisHastingsPolicy(tuple(names))
        generator = context.generator()
        queue = list(seeds)
        chains: list[_Chain] = []
        last_choice = torch.empty(0, dtype=torch.long)
        while queue or chains:
            if context.stop.is_set():
                for chain in chains:
                    yield self._finish(context, chain, ExitReason.STOPPED)
                return
            # Refill: new seeds join as others finish, keeping the forward pass full.
            joining = queue[: params.max_chains - len(chains)]
            del queue[: len(joining)]
            if joining:
                chains += self._start(context, joining)
                last_choice = torch.cat([last_choice, torch.full((len(joining),), NO_PREVIOUS)])
            reasons = [self._exhausted(context, chain) for chain in chains]
            spent = [i for i, reason in enumerate(reasons) if reason is not None]
            for i in spent:
                yield self._finish(context, chains[i], reasons[i])
            chains, last_choice = self._drop(chains, last_choice, spent)
            if chains:
                found, last_choice = self._step(context, generator, chains, operators, policy, last_choice)
                for i in found:
                    yield self._finish(context, chains[i], ExitReason.FOUND)
                chains, last_choice = self._drop(chains, last_choice, found)

    @staticmethod
    def _drop(
        chains: list[_Chain], last_choice: torch.Tensor, removed: list[int]
    ) -> tuple[list[_Chain], torch.Tensor]:
        """Remove finished chains and their memory of the last operator they used."""
        if not removed:
            return chains, last_choice
        keep = torch.ones(len(chains), dtype=torch.bool)
        keep[removed] = False
        return [c for c, k in zip(chains, keep.tolist()) if k], last_choice[keep]

    def _proposals(self, context: SearchContext, chains: list[_Chain]) -> int:
        """Proposals per chain this step: at least ``proposals``, more when few chains are left
        (their batch would otherwise be nearly empty), never past any chain's query budget."""
        wanted = max(self.parameters.proposals, self.parameters.batch_target // len(chains))
        room = min(context.settings.max_queries - c.queries for c in chains)
        return max(1, min(wanted, room))

    def _gap(self, context: SearchContext, probs_o, probs_c, labels) -> torch.Tensor:
        if context.settings.criterion.kind == "any":
            return any_disagreement_gap(probs_o, probs_c, labels)
        return deviation_gap(probs_o, probs_c, labels)

    def _start(self, context: SearchContext, seeds: list[Seed]) -> list[_Chain]:
        images = torch.stack([s.image for s in seeds])
        labels = torch.tensor([s.label for s in seeds])
        pred = context.pair.predict(images)
        gap = self._gap(context, pred.original, pred.compressed, labels)
        now = time.perf_counter()
        chains = []
        for seed, g in zip(seeds, gap.tolist()):
            context.emit(SeedStarted(seed.position, seed.index))
            chains.append(_Chain(seed, seed.image, g, 1, 0, now, [], [g]))
        return chains

    def _exhausted(self, context: SearchContext, chain: _Chain) -> ExitReason | None:
        settings = context.settings
        if chain.queries >= settings.max_queries:
            return ExitReason.QUERY_BUDGET
        if settings.time_budget is not None and time.perf_counter() - chain.started >= settings.time_budget:
            return ExitReason.TIME_BUDGET
        return None

    def _step(self, context, generator, chains, operators, policy, last_choice):
        settings = context.settings
        k = self._proposals(context, chains)
        seeds = torch.stack([c.seed.image for c in chains]).repeat_interleave(k, 0)
        parents = torch.stack([c.image for c in chains]).repeat_interleave(k, 0)
        labels = torch.tensor([c.seed.label for c in chains]).repeat_interleave(k)
        choices = policy.choose_for_chains(last_choice.repeat_interleave(k), generator)
        mutation = apply_grouped(operators, choices, parents, generator)
        mutants = project_linf(mutation.images, seeds, settings.max_linf)
        pred = context.pair.predict(mutants)
        gap = self._gap(context, pred.original, pred.compressed, labels)
        l2, _ = distances(mutants, seeds)
        fitness = gap + self.parameters.distance_weight * l2
        deviates = settings.criterion.met(pred.original, pred.compressed, labels, mutants, seeds)
        parent_fitness = torch.tensor([c.fitness for c in chains]).repeat_interleave(k)
        success = deviates | (fitness < parent_fitness)
        policy.update_many(choices, success)
        context.emit(OperatorUsage.count(policy.names, choices, success))
        # Among deviating proposals prefer the closest; otherwise the fittest.
        _, rows = best_per_group(torch.where(deviates, l2 - 1e6, fitness), k)
        names = [op.name for op in operators]
        columns = zip(rows.tolist(), deviates[rows].tolist(), fitness[rows].tolist(),
                      choices[rows].tolist(), pred.labels_original[rows].tolist(),
                      pred.labels_compressed[rows].tolist())
        finished = []
        for i, (chain, (row, found, fit, op, label_o, label_c)) in enumerate(zip(chains, columns)):
            chain.queries += k
            chain.iterations += 1
            accepted = found or fit < chain.fitness
            if accepted:
                chain.image, chain.fitness = mutants[row], fit
                chain.steps.append(ChainStep(chain.iterations, names[op], mutation.params_of(row), fit, label_o,
                                             label_c, mutants[row]))
            chain.trace.append(chain.fitness)
            context.emit(Step(chain.seed.position, chain.iterations, names[op], accepted,
                              chain.fitness, label_o, label_c, found, chain.queries))
            if found:
                chain.found_probs = (pred.original[row], pred.compressed[row])
                finished.append(i)
        return finished, choices[rows]

    def _finish(self, context: SearchContext, chain: _Chain, reason: ExitReason) -> SeedResult:
        trigger = None
        if reason is ExitReason.FOUND and chain.found_probs is not None:
            trigger = make_trigger(chain.image, chain.seed, *chain.found_probs)
        result = SeedResult(chain.seed, reason, chain.queries, chain.iterations,
                            time.perf_counter() - chain.started, trigger, chain.steps, chain.trace)
        context.emit(SeedFinished(result))
        return result


class CompdCloseStrategy(CompdStrategy):
    """``compd`` with only fine-grained nudges: the closest triggers, for more queries."""

    name = "compd-close"
    description = "compd with only small patch nudges: triggers close to their seeds"

    def __init__(self, parameters: CompdParameters | None = None) -> None:
        super().__init__(parameters or CompdParameters(operators="nudge"))
