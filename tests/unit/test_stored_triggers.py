"""Every strategy's triggers, stored in a real Store and loaded back, still deviate strictly.

The end-to-end promise of the search: what a user opens from the database is a deviation of
the real pair under the run's criterion, and no tie decides either model's label.
"""

from __future__ import annotations

import pytest
from replay_support import assert_strict_replay

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import STRATEGIES
from compd_core.store import Store

BUDGETS = {"gradient": 200}  # each gradient query also costs a backward pass
MUST_FIND = {"compd", "compd-close", "dflare", "diffchaser", "gradient"}
PAIRS = {"gradient": "lenet5-prune90"}  # white-box: the pruned pair has a differentiable twin


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_stored_triggers_replay_as_strict_deviations(name, tmp_path):
    from compd_core.zoo import load_pair

    pair_id = PAIRS.get(name, "lenet5-int8-static")
    pair = load_pair(pair_id)
    # compd searches inside its default budget; the published baselines without one.
    criterion = Criterion() if name.startswith("compd") else Criterion(max_linf=None)
    settings = SearchSettings(max_queries=BUDGETS.get(name, 800), criterion=criterion)
    spec = CampaignSpec(pair=pair_id, strategy=name, seeds=5, settings=settings,
                        seed_order="balanced")
    store = Store(tmp_path / "runs.sqlite")
    summary = run_campaign(spec, store, pair=pair)
    loaded = store.load_results(summary.run_id)
    assert len(loaded) == 5
    found = [r for r in loaded if r.found]
    assert len(found) == summary.found
    if name in MUST_FIND:
        assert found, f"{name} found no trigger on 5 seeds"
    if not found:
        return
    assert_strict_replay(pair, criterion, found)
