"""``compd profile``: one JSON object with a monotone profile; bad budgets end in one line, exit 2."""

from __future__ import annotations

import json

from cli_support import compd


def test_profile_json_is_monotone_and_counts_every_seed():
    done = compd("profile", "--pair", "lenet5-int8-static", "--seeds", "4", "--budgets", "128,16",
                 "--budget", "200", "--seed", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p["budget"] for p in report["points"]] == [16, 128]
    solved = [p["solved"] for p in report["points"]]
    assert solved == sorted(solved)
    assert len(report["seed_budgets"]) == 4
    assert solved[-1] == sum(1 for b in report["seed_budgets"].values() if b is not None)
    assert report["points"][1]["searched"] == 4 - solved[0]


def test_profile_rejects_a_budget_outside_the_grey_levels():
    done = compd("profile", "--pair", "lenet5-int8-static", "--budgets", "4,300")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: distance budgets are whole grey levels from 1 to 255 (largest pixel change), got 300"]
