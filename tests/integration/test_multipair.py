"""One campaign over several pairs: one run per pair, each as its own single-pair campaign would
have searched it; stopped, killed and resumed run by run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compd_core.campaign import CampaignSpec, run_campaign, run_campaigns
from compd_core.errors import CompdError, ConfigError
from compd_core.search.events import SeedFinished
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from executor_support import by_position, resume_finishes, same_search

PAIRS = ("lenet5-int8-static", "lenet1-int8-static")
SETTINGS = SearchSettings(max_queries=600)
KILLED_SEEDS = 16  # per pair of the searches that are killed or stopped midway
TESTS = Path(__file__).parents[1]


def _specs(seeds: int = 8, **kwargs) -> list[CampaignSpec]:
    return [CampaignSpec(pair, "compd", seeds=seeds, settings=SETTINGS, rng_seed=2, **kwargs)
            for pair in PAIRS]


def test_two_pairs_in_one_campaign_search_as_two_single_pair_campaigns(tmp_path):
    with Store(tmp_path / "one.sqlite") as store:
        singles = [by_position(store.load_results(run_campaign(spec, store).run_id)) for spec in _specs()]
    events: list = []
    with Store(tmp_path / "both.sqlite") as store:
        summaries = run_campaigns(_specs(), store, emit=events.append)
        together = [by_position(store.load_results(s.run_id)) for s in summaries]
        records = [store.get_run(s.run_id) for s in summaries]
    assert [s.pair for s in summaries] == list(PAIRS)
    assert [r.pair for r in records] == list(PAIRS) and {r.status for r in records} == {"finished"}
    assert records[0].seed_plan.indices != records[1].seed_plan.indices  # drawn per pair
    for single, joint in zip(singles, together):
        assert sorted(joint) == list(range(8))
        assert [p for p in joint if not same_search(joint[p], single[p])] == []
    assert sum(s.found for s in summaries) > 0  # something to compare beyond "nothing found"
    assert [s.found for s in summaries] == [sum(r.found for r in run.values()) for run in together]
    finished = [e for e in events if isinstance(e, SeedFinished)]
    assert len(finished) == 16


def test_explicit_seed_indices_are_the_same_images_for_every_pair(tmp_path):
    specs = _specs(seed_indices=(3, 11, 42))
    with Store(tmp_path / "r.sqlite") as store:
        summaries = run_campaigns(specs, store)
        plans = [store.get_run(s.run_id).seed_plan for s in summaries]
    assert [p.indices for p in plans] == [(3, 11, 42), (3, 11, 42)]
    assert [s.seeds for s in summaries] == [3, 3]


def test_a_pair_refused_leaves_no_run_behind(tmp_path):
    specs = [*_specs(), CampaignSpec("nope", "compd", seeds=2)]
    with Store(tmp_path / "r.sqlite") as store:
        with pytest.raises(CompdError, match="unknown pair 'nope'"):
            run_campaigns(specs, store)
        assert store.list_runs() == []
        with pytest.raises(ConfigError, match="pair 'lenet1-int8-static' is given twice"):
            run_campaigns([*_specs(), _specs()[1]], store)


def test_stop_ends_every_run_and_resume_finishes_each(tmp_path):
    """Stop at the first stored seed: the first run keeps what it searched, the second never
    started; both read as stopped, and resuming each by its id completes it."""
    stop = threading.Event()

    def stop_at_first_result(event) -> None:
        if isinstance(event, SeedFinished):
            stop.set()

    specs = _specs(seeds=10)
    with Store(tmp_path / "r.sqlite") as store:
        summaries = run_campaigns(specs, store, stop=stop, emit=stop_at_first_result)
        assert [store.get_run(s.run_id).status for s in summaries] == ["stopped", "stopped"]
        kept = [len(store.finished_positions(s.run_id)) for s in summaries]
        assert kept[0] >= 1 and kept[1] == 0
        for spec, summary, had in zip(specs, summaries, kept):
            resumed = run_campaign(spec, store, resume=summary.run_id)
            assert resumed.seeds == 10 - had
            assert sorted(store.finished_positions(summary.run_id)) == list(range(10))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}


def _runs(db: Path) -> list:
    try:
        with Store(db, read_only=True) as store:
            return sorted(store.list_runs(), key=lambda r: r.pair, reverse=True)
    except Exception:  # the file exists but its tables are still being made
        return []


def _stored(db: Path, run_id: str) -> set[int]:
    with Store(db, read_only=True) as store:
        return store.finished_positions(run_id)


def _start(db: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "compd_core", "search", *[a for p in PAIRS for a in ("--pair", p)],
            "--seeds", str(KILLED_SEEDS), "--budget", "1500", "--seed", "5", "--db", str(db), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for_stored(db: Path, process: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        runs = _runs(db)
        if len(runs) == 2 and len(_stored(db, runs[0].id)) >= count:
            return
        time.sleep(0.05)


def test_a_killed_multi_pair_search_resumes_run_by_run(tmp_path):
    db = tmp_path / "runs.sqlite"
    driver = _start(db, "--json")
    _wait_for_stored(db, driver, 3)
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()
    runs = _runs(db)
    assert [r.pair for r in runs] == list(PAIRS) and {r.status for r in runs} == {"interrupted"}
    with Store(db, read_only=True) as store:
        before = [by_position(store.load_results(r.id)) for r in runs]
    assert 3 <= len(before[0]) < KILLED_SEEDS, "the search must be killed with seeds still to search"
    for run, had in zip(runs, before):
        resume_finishes(db, run.id, had, KILLED_SEEDS, _env())


def test_ctrl_c_stops_a_multi_pair_search_with_one_line_naming_each_run(tmp_path):
    db = tmp_path / "runs.sqlite"
    search = _start(db, "--json")
    _wait_for_stored(db, search, 1)
    search.send_signal(signal.SIGINT)
    stdout, stderr = search.communicate(timeout=300)
    assert search.returncode == 130, stderr
    stopped_lines = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped_lines) == 1 and "Traceback" not in stderr
    summaries = json.loads(stdout)
    assert [s["pair"] for s in summaries] == list(PAIRS) and all(s["stopped"] for s in summaries)
    for summary in summaries:
        assert summary["run_id"] in stopped_lines[0]
        with Store(db, read_only=True) as store:
            assert store.get_run(summary["run_id"]).status == "stopped"
            assert len(store.finished_positions(summary["run_id"])) == summary["seeds"]


def test_one_pair_prints_one_object_and_several_a_list(tmp_path):
    common = ["--seeds", "2", "--budget", "50", "--db", str(tmp_path / "r.sqlite"), "--json"]
    outputs = []
    for pairs in (PAIRS[:1], PAIRS):
        done = subprocess.run([sys.executable, "-m", "compd_core", "search",
                               *[a for p in pairs for a in ("--pair", p)], *common],
                              capture_output=True, text=True, env=_env(), timeout=600)
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert isinstance(outputs[0], dict) and outputs[0]["pair"] == PAIRS[0]
    assert [o["pair"] for o in outputs[1]] == list(PAIRS)
