"""DFLARE / TriggerFinder (Tian et al., TOSEM 2023, arXiv 2112.02819), faithfully.

One chain per seed, one query per iteration. Operators are chosen by Metropolis-Hastings over
their success-rate ranks; a mutant replaces the current input when the probability difference
of the two models grows by more than 1e-3 or when the pair's probability state is new (squared
L2 distance > 0.5 to every state seen on this chain). Stops at the first deviation.

Faithful to the paper, not to a bug of its released code: MH uses the rank of the last accepted
operator (the code compares an object with a string and always uses -1).
"""

from __future__ import annotations

from compd_core.mutations import MetropolisHastingsPolicy, get_operators
from compd_core.search.criterion import project_linf
from compd_core.search.events import OperatorUsage, Step, no_events
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
        names = tuple(op.name for op in operators)
        policy = self.policy(names)
        budget = SeedBudget(settings, context.stop)
        log = ChainLog()
        seed_batch = seed.image[None]
        first = pair.predict(seed_batch)
        budget.queries += 1
        archive = NoveltyArchive()
        archive.add(first.original, first.compressed)
        current = seed_batch
        current_diff = float(dflare_difference(first.original, first.compressed).abs()[0])
        criterion, max_linf, emit = settings.criterion, settings.max_linf, context.emit
        listening = emit is not no_events  # events cost a tenth of a forward pass to build
        iteration = 0
        while (reason := budget.exhausted()) is None:
            iteration += 1
            choice = policy.choose(gen)
            mutation = operators[choice](current, gen)
            mutant = project_linf(mutation.images, seed_batch, max_linf)
            pred = pair.predict(mutant)
            budget.queries += 1
            # One row, read once as plain lists: every check below is arithmetic on 2x10 numbers.
            probs_o, probs_c = pred.original.tolist()[0], pred.compressed.tolist()[0]
            top_o, top_c = max(probs_o), max(probs_c)
            label_o, label_c = probs_o.index(top_o), probs_c.index(top_c)
            found = criterion.met_row(probs_o, probs_c, seed.label, mutant, seed_batch)
            diff = abs(top_o - top_c)
            novel = archive.is_novel(probs_o, probs_c)
            accepted = found or self.accepts(diff - current_diff, novel)
            policy.update(choice, accepted)
            name = names[choice]
            if listening:
                emit(OperatorUsage({name: 1}, {name: 1} if accepted else {}))
            if accepted:
                current, current_diff = mutant, diff
                if novel:
                    archive.add(probs_o, probs_c)
                log.accept(iteration, name, mutation.params[0], diff, label_o, label_c, mutant[0])
            log.trace.append(-current_diff)
            if listening:
                emit(Step(seed.position, iteration, name, accepted, -current_diff, label_o,
                          label_c, found, budget.queries))
            if found:
                trigger = make_trigger(mutant[0], seed, pred.original[0], pred.compressed[0])
                return SeedResult(seed, ExitReason.FOUND, budget.queries, iteration,
                                  budget.seconds, trigger, log.steps, log.trace)
        return SeedResult(seed, reason, budget.queries, iteration, budget.seconds, None,
                          log.steps, log.trace)
