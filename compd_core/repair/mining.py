"""More deviations to learn from, found by the project's own search on the training split.

A handful of hand-picked triggers shows the repair where the compressed model is wrong, but
not where else it is: a repair trained only on them patches those and little more. Searching
training digits (never the test split, where the run's seeds and the held-out triggers come
from) gives many more deviations of the same kind, each labelled by the original.
"""

from __future__ import annotations

import threading

from compd_core.data.dataset import ImageDataset
from compd_core.models.pair import ModelPair
from compd_core.search.results import SeedResult
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import CompdParameters, CompdStrategy, SearchContext

# The project's engine without its boundary probes: mining needs many deviations fast, not a
# faithful method. The probes cost about 1 s of stand-in work per seed on an int8 LeNet: with
# them a default repair (512 mined seeds) took 452-1,613 s instead of 59-217 s under load;
# squares mined 437 of 512 within 500 queries on lenet5-int8-static, probes 508
# (bench/REPAIR.md, first note).
MINING_PARAMETERS = CompdParameters(probe=None)


def mine_triggers(
    pair: ModelPair,
    dataset: ImageDataset,
    count: int,
    settings: SearchSettings,
    rng_seed: int,
    stop: threading.Event,
) -> list[SeedResult]:
    """The deviations found from up to ``count`` seeds of ``dataset`` (fewer when fewer agree)."""
    if count == 0:
        return []
    eligible = int((~pair.predict(dataset.images).disagree).sum())
    seeds = select_seeds(pair, dataset, min(count, eligible), seed=rng_seed, only_correct=False)
    context = SearchContext(pair, settings, rng_seed, stop=stop)
    return [r for r in CompdStrategy(MINING_PARAMETERS).run(context, seeds) if r.found]

