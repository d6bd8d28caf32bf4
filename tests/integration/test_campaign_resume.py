"""A campaign killed with SIGKILL resumes without losing or repeating anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from compd_core.store import Store

SCRIPT = """
import sys
from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
spec = CampaignSpec("lenet5-int8-static", "dflare", seeds=12, settings=SearchSettings(max_queries=400), rng_seed=1,
                    seed_order="margin")
run_campaign(spec, Store(sys.argv[1]))
"""


def compd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compd_core", *args], capture_output=True,
                          text=True, timeout=600)


def test_sigkill_then_resume(tmp_path):
    db = tmp_path / "runs.sqlite"
    worker = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db)])
    deadline = time.time() + 300
    finished_before_kill: set[int] = set()
    while time.time() < deadline:
        time.sleep(0.5)
        if db.exists():
            runs = Store(db).list_runs()
            if runs and len(Store(db).finished_positions(runs[0].id)) >= 3:
                break
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    store = Store(db)
    run = store.list_runs()[0]
    finished_before_kill = store.finished_positions(run.id)
    saved = {r.seed.position: r for r in store.load_results(run.id)}
    assert 3 <= len(finished_before_kill) < 12
    assert run.status == "interrupted"  # killed: never marked finished, and its process is gone
    plan = run.seed_plan
    assert plan is not None and plan.order == "margin" and len(plan.indices) == 12
    assert all(saved[p].seed.index == plan.indices[p] for p in saved)

    # --resume alone restores the pair, strategy, seed count, budget, order and rng seed
    result = compd("search", "--db", str(db), "--resume", run.id, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["seeds"] == 12 - len(finished_before_kill)  # only the unfinished seeds ran
    after = {r.seed.position: r for r in Store(db).load_results(run.id)}
    assert set(after) == set(range(12))
    # every position searched the image it was given when the run started
    assert [after[p].seed.index for p in range(12)] == list(plan.indices)
    assert all(r.queries <= 400 for r in after.values())
    for position, before in saved.items():  # nothing found before the kill was lost or redone
        assert after[position].queries == before.queries
        assert after[position].found == before.found
    assert Store(db).get_run(run.id).status == "finished"


def test_search_json_reports_the_documented_fields(tmp_path):
    result = compd("search", "--pair", "lenet5-int8-static", "--seeds", "4", "--budget", "2000",
                   "--db", str(tmp_path / "r.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("run_id", "strategy", "seeds", "found", "success_rate", "median_queries",
                "mean_queries", "median_seconds", "seconds_per_trigger", "queries_per_second",
                "median_l2", "median_linf"):
        assert key in summary
    assert summary["seeds"] == 4 and 0 <= summary["found"] <= 4


def test_bad_search_arguments_exit_2(tmp_path):
    db = str(tmp_path / "r.sqlite")
    for args, message in [
        (("--strategy", "nope"), "unknown strategy"),
        (("--budget", "0"), "query budget"),
        (("--strategy", "gradient", "--pair", "lenet5-onnx-int8"), "black box"),
        (("--operators", "fancy"), "unknown operator set"),
    ]:
        argv = ["search", "--seeds", "2", "--db", db, *args]
        if "--pair" not in args:
            argv += ["--pair", "lenet5-int8-static"]
        result = compd(*argv)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
