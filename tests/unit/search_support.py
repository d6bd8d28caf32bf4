"""Search settings for tests, with the criterion's fields given as plain keywords."""

from __future__ import annotations

from dataclasses import fields

from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings

_CRITERION_FIELDS = {f.name for f in fields(Criterion)}


def search_settings(*, max_linf: float | None = None, criterion: str = "valid", **options) -> SearchSettings:
    """``SearchSettings`` where ``max_linf``, ``max_l2`` and the margins build its ``Criterion``."""
    rules = {k: options.pop(k) for k in list(options) if k in _CRITERION_FIELDS}
    return SearchSettings(criterion=Criterion(kind=criterion, max_linf=max_linf, **rules),  # type: ignore[arg-type]
                          **options)


def compd_with_and_without_look_ahead(pair, seeds, parameters, settings: SearchSettings):
    """A ``compd`` search of ``seeds`` without, then with, the engine's look-ahead: per run, each
    seed's whole search (exit, queries, trace, chain, trigger) by dataset index, and the step
    events in seed and step order. Look-ahead must change neither."""
    from dataclasses import replace

    from compd_core.search.events import Step
    from compd_core.search.strategies import CompdStrategy, SearchContext

    runs, events = {}, {}
    for look_ahead in (False, True):
        steps: list[Step] = []
        chosen = replace(parameters, engine=replace(parameters.engine, look_ahead=look_ahead))
        context = SearchContext(pair, settings, rng_seed=0,
                                emit=lambda e: steps.append(e) if isinstance(e, Step) else None)
        runs[look_ahead] = {r.seed.index: (r.exit_reason, r.queries, r.trace,
                                           [(s.operator, s.params, s.image.tolist()) for s in r.chain],
                                           None if r.trigger is None else r.trigger.image.tolist())
                            for r in CompdStrategy(chosen).run(context, seeds)}
        events[look_ahead] = sorted(steps, key=lambda e: (e.position, e.iteration))
    return runs, events
