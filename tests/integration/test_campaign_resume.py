"""A campaign killed with SIGKILL resumes without losing or repeating anything."""

from __future__ import annotations

import json
import os
import statistics
import signal
import subprocess
import sys
import time

import pytest

from compd_core.store import Store
from cli_support import compd

# The worker commits 3 seeds, says so through a file, and waits there to be killed mid-run:
# the test waits on that condition, not on a guess of how long 3 seeds take.
SCRIPT = """
import sys, threading
from pathlib import Path
from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.search.settings import SearchSettings
from compd_core.store import Store

class SignallingStore(Store):
    saved = 0
    def save_result(self, run_id, result):
        super().save_result(run_id, result)
        self.saved += 1
        if self.saved == 3:
            Path(sys.argv[2]).touch()
            threading.Event().wait()

spec = CampaignSpec("lenet5-int8-static", "dflare", seeds=12, settings=SearchSettings(max_queries=400), rng_seed=1,
                    seed_order="margin")
run_campaign(spec, SignallingStore(sys.argv[1]))
"""
KILL_AFTER = 3


def _wait_for(condition, timeout: float) -> None:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigkill_then_resume(tmp_path):
    db, ready = tmp_path / "runs.sqlite", tmp_path / "three-seeds-saved"
    worker = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db), str(ready)])
    try:
        _wait_for(lambda: ready.exists() or worker.poll() is not None, timeout=300)
        assert ready.exists(), f"the worker ended (code {worker.returncode}) before saving 3 seeds"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    store = Store(db)
    run = store.list_runs()[0]
    finished_before_kill = store.finished_positions(run.id)
    saved = {r.seed.position: r for r in store.load_results(run.id)}
    assert len(finished_before_kill) == KILL_AFTER
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
    """Every documented field is there and says what the stored results say."""
    db = tmp_path / "r.sqlite"
    result = compd("search", "--pair", "lenet5-int8-static", "--seeds", "4", "--budget", "2000",
                   "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    with Store(db, read_only=True) as store:
        run = store.get_run(summary["run_id"])
        results = store.load_results(run.id, details=False)
    found = [r for r in results if r.found]
    assert (summary["pair"], summary["strategy"], summary["seeds"]) == ("lenet5-int8-static", "compd", 4)
    assert len(results) == 4 and summary["found"] == len(found) >= 1
    assert summary["success_rate"] == pytest.approx(len(found) / 4)
    assert summary["total_queries"] == sum(r.queries for r in results)
    assert summary["median_queries"] == pytest.approx(statistics.median(r.queries for r in found))
    assert summary["mean_queries"] == pytest.approx(statistics.mean(r.queries for r in found))
    assert summary["median_l2"] == pytest.approx(statistics.median(r.trigger.l2 for r in found), rel=1e-6)
    assert summary["median_linf"] == pytest.approx(statistics.median(r.trigger.linf for r in found), rel=1e-6)
    assert summary["seconds_per_trigger"] == pytest.approx(summary["wall_seconds"] / len(found))
    assert summary["queries_per_second"] == pytest.approx(summary["total_queries"] / summary["wall_seconds"], rel=1e-6)
    assert 0 < summary["median_seconds"] <= summary["wall_seconds"]
    assert summary["stopped"] is False


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


def test_a_stopped_campaign_saves_its_unfinished_seeds_in_one_transaction(tmp_path, monkeypatch):
    """Stop after the first final seed: that seed was committed alone, at once; every seed the
    stop cut short lands in the store too, in one commit."""
    import threading

    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.search.results import ExitReason
    from compd_core.search.settings import SearchSettings

    batches: list[int] = []
    original = Store.save_results

    def counting(self, run_id, results):
        batches.append(len(results))
        original(self, run_id, results)
        stop.set()  # Stop pressed right after the first seed was stored

    monkeypatch.setattr(Store, "save_results", counting)
    stop = threading.Event()

    # Both models black boxes (Keras and TFLite): the chains all start at once and search with
    # squares, so the stop cuts some short (with a PyTorch original, probing chains start two
    # at a time and probes solve most seeds in a few queries).
    spec = CampaignSpec("lenet5-tflite-int8", "compd", seeds=12,
                        settings=SearchSettings(max_queries=100_000), rng_seed=0)
    with Store(tmp_path / "r.sqlite") as store:
        summary = run_campaign(spec, store, stop=stop)
        results = store.load_results(summary.run_id, details=False)
        run = store.get_run(summary.run_id)
    stopped = [r for r in results if r.exit_reason is ExitReason.STOPPED]
    assert run.status == "stopped" and len(results) == 12 and len(stopped) >= 1
    assert batches[0] == 1  # the first final seed, committed on its own before the stop
    assert batches[-1] >= len(stopped) and all(b == 1 for b in batches[:-1])
    assert sum(batches) == 12


def test_ctrl_c_stops_a_cli_search_after_the_current_step_and_keeps_its_seeds(tmp_path):
    """Ctrl-C (SIGINT) once the first seed is stored: exit 130, one line saying what was kept,
    the run marked stopped with every seed in it, and ``--resume`` finishing it."""
    db = tmp_path / "r.sqlite"
    search = subprocess.Popen(
        [sys.executable, "-m", "compd_core", "search", "--pair", "lenet5-int8-static",
         "--strategy", "dflare", "--seeds", "30", "--budget", "3000", "--db", str(db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_seed_stored() -> bool:
        if search.poll() is not None or not db.exists():
            return search.poll() is not None
        try:
            with Store(db, read_only=True) as store:
                runs = store.list_runs()
                return bool(runs) and len(store.finished_positions(runs[0].id)) >= 1
        except Exception:  # the file exists but its tables are still being made
            return False

    _wait_for(first_seed_stored, timeout=300)
    search.send_signal(signal.SIGINT)
    stdout, stderr = search.communicate(timeout=300)
    assert search.returncode == 130, stderr
    stopped_lines = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped_lines) == 1 and "Traceback" not in stderr
    summary = json.loads(stdout)
    with Store(db, read_only=True) as store:
        run = store.get_run(summary["run_id"])
        kept = store.finished_positions(run.id)
    assert summary["stopped"] is True and run.status == "stopped"
    assert 1 <= len(kept) < 30 and summary["seeds"] == len(kept)
    assert f"run {run.id} keeps every seed" in stopped_lines[0]
