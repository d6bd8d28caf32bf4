"""DiffChaser (Xie et al., IJCAI 2019): a black-box genetic algorithm, one seed at a time.

The paper publishes no code, so every detail below is this project's choice:

- Population: ``m = 20`` members. Generation 0 is ``m`` mutants of the seed, each made by one
  operator drawn uniformly from the operator set. Every later generation breeds ``m`` children
  and evaluates all of them in ONE ``pair.predict`` call, so a generation costs exactly ``m``
  queries (the last one is cut to what the budget has left, so a seed never overspends).
- Fitness ("k-uncertainty", lower is closer to a deviation), with ``k = 2`` and y the seed's
  reference label: ``(p_c[top1] - p_c[top2]) - (p_o[y] - p_c[y])``. The first term is the
  compressed model's gap between its best and its runner-up class, small on its decision
  boundary (k = 2 because the runner-up is the class a flip goes to). The second term is the
  probability difference between the models, large when the original holds on to y while the
  compressed model lets go, which is the valid kind of deviation.
- Elitism: the 2 fittest members survive unchanged (their evaluations are reused, never paid
  twice). The rest of the next population are the ``m - 2`` fittest children, so each child
  that is evaluated also competes for a place.
- Selection: tournaments of 3 drawn with replacement; the fittest of the three is a parent.
- Crossover: uniform over pixels; each value comes from either parent with probability 1/2.
  Parents on the 8-bit grid give a child on the grid.
- Mutation: each child is mutated with probability 0.3 by one operator drawn uniformly from
  the operator set (the mutation rate is per child because the operators act on whole images).
  Without mutation a population of near-copies of the seed can only reshuffle its pixels.
  "Small" follows the paper's GA; measured on lenet5-int8-static (20 seeds, 2,000 queries),
  rates 0.1 / 0.3 / 0.6 / 1.0 found 17 / 20 / 20 / 20 seeds unbounded, and 1 / 4 / 6 / 12
  inside an L-inf ball of 0.3, so a user who bounds the search may want a higher rate.
- Every child is projected into ``settings.max_linf`` (when set) and snapped to the grid.
- Stop: as soon as any member deviates (the project's criterion from ``settings``); among
  several, the one closest to the seed in L2 is the trigger. Otherwise when the query or time
  budget or the stop signal ends the seed.

Bookkeeping: a ``Step`` per generation with the best member's values, an ``OperatorUsage`` per
generation (a mutation succeeds when its child beats both parents or deviates), and a chain
step whenever a new member becomes the best of its generation, named after the operator that
made it ("crossover" for an unmutated child).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from compd_core.errors import ConfigError
from compd_core.mutations import MutationOperator, get_operators
from compd_core.search.criterion import distances, project_linf, snap
from compd_core.search.events import OperatorUsage, Step
from compd_core.search.results import ExitReason, Seed, SeedResult
from compd_core.search.strategies.base import (
    ChainLog,
    SearchContext,
    SeedBudget,
    SequentialStrategy,
    make_trigger,
)
from compd_core.search.strategies.batched import apply_grouped

CROSSOVER = "crossover"  # the origin of a child that no operator touched


@dataclass(frozen=True)
class DiffChaserParameters:
    """The GA's knobs; the paper fixes none of them, see the module docstring."""

    population: int = 20  # m: members per generation, i.e. queries per generation
    elites: int = 2  # fittest members carried over unchanged
    tournament: int = 3  # members drawn per parent selection
    mutation_rate: float = 0.3  # probability that a child is also mutated by one operator
    k: int = 2  # k-uncertainty: gap between the compressed model's top-1 and top-k

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError(f"diffchaser needs a population of at least 2, got {self.population}")
        if not 0 <= self.elites < self.population:
            raise ConfigError(
                f"elites must lie in [0, population), got {self.elites} for population {self.population}"
            )
        if self.tournament < 1:
            raise ConfigError(f"the tournament size must be >= 1, got {self.tournament}")
        if not 0 <= self.mutation_rate <= 1:
            raise ConfigError(f"the mutation rate must lie in [0, 1], got {self.mutation_rate}")
        if self.k < 2:
            raise ConfigError(f"k-uncertainty needs k >= 2 (top-1 against top-k), got {self.k}")


def k_uncertainty_fitness(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, labels: torch.Tensor, k: int = 2
) -> torch.Tensor:
    """(p_c[top1] - p_c[topk]) - (p_o[y] - p_c[y]) per row; lower is closer to a deviation."""
    top = probs_compressed.topk(k, dim=1).values
    gap = top[:, 0] - top[:, k - 1]
    difference = (probs_original - probs_compressed).gather(1, labels[:, None]).squeeze(1)
    return gap - difference


@dataclass
class _Population:
    """Members, their evaluations, and where each came from (for the chain)."""

    ids: torch.Tensor  # (P,) long: the query number that evaluated the member, unique per seed
    images: torch.Tensor  # (P, C, H, W)
    probs_original: torch.Tensor  # (P, K)
    probs_compressed: torch.Tensor  # (P, K)
    fitness: torch.Tensor  # (P,)
    deviates: torch.Tensor  # (P,) bool
    origins: list[str]
    params: list[dict[str, Any]]

    def take(self, rows: torch.Tensor) -> _Population:
        picked = rows.tolist()
        return _Population(
            self.ids[rows], self.images[rows], self.probs_original[rows],
            self.probs_compressed[rows], self.fitness[rows], self.deviates[rows],
            [self.origins[i] for i in picked], [self.params[i] for i in picked],
        )

    def join(self, other: _Population) -> _Population:
        return _Population(
            torch.cat([self.ids, other.ids]), torch.cat([self.images, other.images]),
            torch.cat([self.probs_original, other.probs_original]),
            torch.cat([self.probs_compressed, other.probs_compressed]),
            torch.cat([self.fitness, other.fitness]), torch.cat([self.deviates, other.deviates]),
            self.origins + other.origins, self.params + other.params,
        )


@dataclass
class _Mutated:
    images: torch.Tensor
    origins: list[str]
    params: list[dict[str, Any]]
    choices: torch.Tensor  # operator index of each mutated row, in row order
    rows: torch.Tensor  # bool (N,): which rows were mutated


class DiffChaserStrategy(SequentialStrategy):
    name = "diffchaser"
    description = "DiffChaser (IJCAI 2019): genetic algorithm on k-uncertainty, m queries per generation"

    def __init__(self, parameters: DiffChaserParameters | None = None) -> None:
        self.parameters = parameters or DiffChaserParameters()

    def search_seed(self, context: SearchContext, seed: Seed) -> SeedResult:
        gen = context.generator_for(seed)
        operators = get_operators(context.settings.operators)
        names = [op.name for op in operators]
        budget = SeedBudget(context.settings, context.stop)
        log = ChainLog()
        size = min(self.parameters.population, budget.remaining)
        starts = seed.image[None].expand(size, -1, -1, -1)
        initial = self._mutate(operators, starts, torch.ones(size, dtype=torch.bool), gen)
        population = self._evaluate(context, budget, seed, initial)
        context.emit(OperatorUsage.count(names, initial.choices, population.deviates))
        generation, best_id = 0, -1
        while True:
            best = self._best_row(population, seed)
            found = bool(population.deviates[best])
            new_best = int(population.ids[best]) != best_id
            best_id = int(population.ids[best])
            self._report(context, log, seed, population, best, generation, new_best, found, budget)
            if found:
                trigger = make_trigger(population.images[best], seed, population.probs_original[best],
                                       population.probs_compressed[best])
                return SeedResult(seed, ExitReason.FOUND, budget.queries, generation + 1,
                                  budget.seconds, trigger, log.steps, log.trace)
            if (reason := budget.exhausted()) is not None:
                return SeedResult(seed, reason, budget.queries, generation + 1, budget.seconds,
                                  None, log.steps, log.trace)
            generation += 1
            population = self._next_generation(context, budget, seed, operators, population, gen)

    def _next_generation(
        self, context: SearchContext, budget: SeedBudget, seed: Seed,
        operators: list[MutationOperator], population: _Population, gen: torch.Generator,
    ) -> _Population:
        """Breed, mutate and evaluate the children; keep the elites and the fittest children."""
        p = self.parameters
        count = min(p.population, budget.remaining)
        mothers = self._tournament(population.fitness, count, gen)
        fathers = self._tournament(population.fitness, count, gen)
        from_mother = torch.rand((count, *seed.image.shape), generator=gen) < 0.5
        children = torch.where(from_mother, population.images[mothers], population.images[fathers])
        mutated = self._mutate(operators, children, torch.rand(count, generator=gen) < p.mutation_rate, gen)
        offspring = self._evaluate(context, budget, seed, mutated)
        parents_best = torch.minimum(population.fitness[mothers], population.fitness[fathers])
        improved = (offspring.fitness < parents_best) | offspring.deviates
        context.emit(OperatorUsage.count([op.name for op in operators], mutated.choices,
                                         improved[mutated.rows]))
        elites = population.take(population.fitness.argsort()[: p.elites])
        keep = p.population - len(elites.ids)
        return elites.join(offspring.take(offspring.fitness.argsort()[:keep]))

    def _tournament(self, fitness: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
        """Row of the fittest of ``tournament`` members drawn with replacement, per parent."""
        entrants = torch.randint(len(fitness), (count, self.parameters.tournament), generator=gen)
        return entrants.gather(1, fitness[entrants].argmin(1, keepdim=True)).squeeze(1)

    @staticmethod
    def _mutate(
        operators: list[MutationOperator], images: torch.Tensor, rows: torch.Tensor,
        gen: torch.Generator,
    ) -> _Mutated:
        """Mutate the flagged rows, each by one operator drawn uniformly."""
        positions = torch.nonzero(rows).flatten()
        choices = torch.randint(len(operators), (len(positions),), generator=gen)
        out = images.clone()
        origins = [CROSSOVER] * len(images)
        params: list[dict[str, Any]] = [{} for _ in range(len(images))]
        if len(positions):
            grouped = apply_grouped(operators, choices, images[positions], gen)
            out[positions] = grouped.images
            for i, (row, choice) in enumerate(zip(positions.tolist(), choices.tolist())):
                origins[row] = operators[choice].name
                params[row] = grouped.params_of(i)
        return _Mutated(out, origins, params, choices, rows)

    def _evaluate(
        self, context: SearchContext, budget: SeedBudget, seed: Seed, batch: _Mutated
    ) -> _Population:
        """Bound, snap and evaluate a batch in one call (one query per image)."""
        settings = context.settings
        images = snap(project_linf(batch.images, seed.image[None].expand_as(batch.images),
                                   settings.max_linf))
        pred = context.pair.predict(images)
        ids = torch.arange(budget.queries, budget.queries + len(images))
        budget.queries += len(images)
        labels = torch.full((len(images),), seed.label)
        fitness = k_uncertainty_fitness(pred.original, pred.compressed, labels, self.parameters.k)
        deviates = settings.criterion.met(pred.original, pred.compressed, labels, images,
                                          seed.image[None].expand_as(images))
        return _Population(ids, images, pred.original, pred.compressed, fitness, deviates,
                           batch.origins, batch.params)

    @staticmethod
    def _best_row(population: _Population, seed: Seed) -> int:
        """The deviating member closest to the seed if any deviates, else the fittest."""
        if bool(population.deviates.any()):
            l2, _ = distances(population.images, seed.image[None].expand_as(population.images))
            return int(torch.where(population.deviates, l2, torch.inf).argmin())
        return int(population.fitness.argmin())

    @staticmethod
    def _report(
        context: SearchContext, log: ChainLog, seed: Seed, population: _Population, best: int,
        generation: int, new_best: bool, found: bool, budget: SeedBudget,
    ) -> None:
        """Trace, chain step (when the best member is new) and Step event of one generation."""
        fitness = float(population.fitness[best])
        label_o = int(population.probs_original[best].argmax())
        label_c = int(population.probs_compressed[best].argmax())
        origin = population.origins[best]
        if new_best:
            log.accept(generation, origin, {"generation": generation, **population.params[best]},
                       fitness, label_o, label_c, population.images[best])
        log.trace.append(fitness)
        context.emit(Step(seed.position, generation, origin, new_best, fitness, label_o, label_c,
                          found, budget.queries))
