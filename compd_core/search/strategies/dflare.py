"""DFLARE / TriggerFinder (Tian et al., TOSEM 2023, arXiv 2112.02819), faithfully.

One chain per seed, one query per iteration. Operators are chosen by Metropolis-Hastings over
their success-rate ranks; a mutant replaces the current input when the probability difference
of the two models grows by more than 1e-3 or when the pair's probability state is new (squared
L2 distance > 0.5 to every state seen on this chain). Stops at the first deviation.

Faithful to the paper, not to a bug of its released code: MH uses the rank of the last accepted
operator (the code compares an object with a string and always uses -1).
"""

from __future__ import annotations

import torch

from compd_core.mutations import MetropolisHastingsPolicy, get_operators
from compd_core.search.criterion import project_linf
from compd_core.search.events import OperatorUsage, Step
from compd_core.search.fitness import NoveltyArchive, dflare_difference
from compd_core.search.results import ExitReason, Seed, SeedResult
from compd_core.search.strategies.base import (
    ChainLog,
    SearchContext,
    SeedBudget,
    SequentialStrategy,
    make_trigger,
)

DIFF_EPSILON = 1e-3  # |diff| must grow by more than this to count as progress


class DflareStrategy(SequentialStrategy):
    name = "dflare"
    description = "DFLARE (TOSEM 2023): MH-chosen mutations, one query per iteration"

    def policy(self, operator_names: tuple[str, ...]):
        return MetropolisHastingsPolicy(operator_names)

    def accepts(self, diff_gain: float, novel: bool) -> bool:
        return diff_gain > DIFF_EPSILON or novel

    def search_seed(self, context: SearchContext, seed: Seed) -> SeedResult:
        pair, settings, gen = context.pair, context.settings, context.generator_for(seed)
        operators = get_operators(settings.operators)
        policy = self.policy(tuple(op.name for op in operators))
        budget = SeedBudget(settings, context.stop)
        log = ChainLog()
        seed_batch = seed.image[None]
        reference = torch.tensor([seed.label])
        first = pair.predict(seed_batch)
        budget.queries += 1
        archive = NoveltyArchive()
        archive.add(first.original, first.compressed)
        current = seed_batch
        current_diff = float(dflare_difference(first.original, first.compressed).abs()[0])
        iteration = 0
        while (reason := budget.exhausted()) is None:
            iteration += 1
            choice = policy.choose(gen)
            mutation = operators[choice](current, gen)
            mutant = project_linf(mutation.images, seed_batch, settings.max_linf)
            pred = pair.predict(mutant)
            budget.queries += 1
            label_o, label_c = int(pred.labels_original[0]), int(pred.labels_compressed[0])
            found = bool(settings.criterion.met(pred.original, pred.compressed, reference, mutant, seed_batch)[0])
            diff = float(dflare_difference(pred.original, pred.compressed).abs()[0])
            novel = archive.is_novel(pred.original, pred.compressed)
            accepted = found or self.accepts(diff - current_diff, novel)
            policy.update(choice, accepted)
            context.emit(OperatorUsage({operators[choice].name: 1},
                                       {operators[choice].name: 1} if accepted else {}))
            if accepted:
                current, current_diff = mutant, diff
                if novel:
                    archive.add(pred.original, pred.compressed)
                log.accept(iteration, operators[choice].name, mutation.params[0], diff,
                           label_o, label_c, mutant[0])
            log.trace.append(-current_diff)
            context.emit(Step(seed.position, iteration, operators[choice].name, accepted,
                              -current_diff, label_o, label_c, found, budget.queries))
            if found:
                trigger = make_trigger(mutant[0], seed, pred.original[0], pred.compressed[0])
                return SeedResult(seed, ExitReason.FOUND, budget.queries, iteration,
                                  budget.seconds, trigger, log.steps, log.trace)
        return SeedResult(seed, reason, budget.queries, iteration, budget.seconds, None,
                          log.steps, log.trace)
