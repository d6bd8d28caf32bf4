"""`compd search --resume RUN` continues the stored run under its own settings, or refuses.

A refused resume leaves the run exactly as it was; a finished run says so; a run being searched
by another process cannot be resumed a second time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.errors import ConfigError, StoreError
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from cli_support import compd

PAIR = "lenet5-int8-static"


@pytest.fixture()
def stopped_run(tmp_path, int8_pair, mnist_test):
    """A 6-seed dflare run (budget 300, margin order) stopped after 2 seeds."""
    path = tmp_path / "runs.sqlite"
    spec = CampaignSpec(PAIR, "dflare", seeds=6, settings=SearchSettings(max_queries=300),
                        rng_seed=3, seed_order="margin")
    stop_after = 2

    def emit(event) -> None:
        nonlocal stop_after
        if type(event).__name__ == "SeedFinished":
            stop_after -= 1
            if stop_after == 0:
                stop.set()

    import threading

    stop = threading.Event()
    with Store(path) as store:
        summary = run_campaign(spec, store, pair=int8_pair, dataset=mnist_test, emit=emit,
                               stop=stop)
        record = store.get_run(summary.run_id)
    assert record.status == "stopped" and 2 <= record.seeds_done < 6
    return path, record


@pytest.mark.parametrize("option, value, stored", [
    ("--budget", "50", "300"),
    ("--seeds", "20", "6"),
    ("--pair", "lenet5-qat", PAIR),
    ("--strategy", "random", "dflare"),
    ("--seed", "7", "3"),
    ("--seed-order", "random", "margin"),
    ("--min-margin-original", "0.3", "0"),
    ("--min-margin-compressed", "0.2", "0"),
    ("--max-l2", "3", "none"),
    ("--max-linf", "0.5", "0.25098"),
])
def test_a_contradicting_option_is_refused_and_leaves_the_run_as_it_was(
    stopped_run, option, value, stored
):
    path, before = stopped_run
    result = compd("search", "--db", str(path), "--resume", before.id, option, value)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: run {before.id} was searched with {option} {stored}, not {option} {value}; "
        f"leave {option} out: --resume continues a run with its own settings"
    )
    assert Store(path).get_run(before.id) == before  # status, counts and heartbeat untouched


def test_an_option_that_agrees_is_accepted_and_the_run_ends_with_its_own_seeds(
    stopped_run, int8_pair, mnist_test
):
    path, before = stopped_run
    result = compd("search", "--db", str(path), "--resume", before.id, "--budget", "300", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seeds"] == 6 - before.seeds_done
    after = Store(path).get_run(before.id)
    assert (after.status, after.seeds_done, after.settings) == ("finished", 6, before.settings)
    expected = select_seeds(int8_pair, mnist_test, 6, seed=3, order="margin")
    indices = [r.seed.index for r in Store(path).load_results(before.id, details=False)]
    assert indices == [s.index for s in expected] == list(after.seed_plan.indices)


def test_resuming_a_finished_run_says_so(stopped_run):
    path, before = stopped_run
    assert compd("search", "--db", str(path), "--resume", before.id).returncode == 0
    finished = Store(path).get_run(before.id)
    result = compd("search", "--db", str(path), "--resume", before.id)
    assert result.returncode == 2
    assert result.stderr == (f"error: run {before.id} is already finished: all 6 seeds were "
                             f"searched; `compd runs show {before.id}` shows its results\n")
    assert Store(path).get_run(before.id) == finished


HOLDER = """
import sys, time
from compd_core.store import Store
Store(sys.argv[1]).resume_run(sys.argv[2])
print("claimed", flush=True)
time.sleep(120)
"""


def test_one_resume_at_a_time_and_a_dead_holder_reads_interrupted(stopped_run):
    path, before = stopped_run
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), before.id],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        assert Store(path).get_run(before.id).status == "running"
        result = compd("search", "--db", str(path), "--resume", before.id)
        assert result.returncode == 2
        assert result.stderr.startswith(
            f"error: run {before.id} is being searched right now by process {holder.pid} on ")
        assert result.stderr.count("\n") == 1
        assert Store(path).get_run(before.id).seeds_done == before.seeds_done
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert Store(path).get_run(before.id).status == "interrupted"
    assert compd("search", "--db", str(path), "--resume", before.id).returncode == 0
    assert Store(path).get_run(before.id).status == "finished"


def test_the_same_process_cannot_resume_a_run_twice(stopped_run):
    path, before = stopped_run
    with Store(path) as store:
        store.resume_run(before.id)
        with pytest.raises(StoreError, match="is being searched right now"):
            store.resume_run(before.id)
        store.finish_run(before.id, "stopped", 0.0)
        store.resume_run(before.id)  # released by finish_run
        store.finish_run(before.id, "stopped", 0.0)


def test_the_library_refuses_a_spec_that_differs_from_the_stored_run(stopped_run):
    path, before = stopped_run
    spec = CampaignSpec(PAIR, "dflare", seeds=6, settings=SearchSettings(max_queries=300),
                        rng_seed=3, seed_order="margin")
    with Store(path) as store, pytest.raises(ConfigError, match="started with settings"):
        run_campaign(replace(spec, settings=SearchSettings(max_queries=301)), store,
                     resume=before.id)
    assert Store(path).get_run(before.id) == before


def test_search_summary_is_read_back_from_the_file(tmp_path, int8_pair, mnist_test, monkeypatch):
    """A write that does not land is an error, not a success printed from memory."""
    monkeypatch.setattr(Store, "save_result", lambda self, run_id, result: None)
    spec = CampaignSpec(PAIR, "random", seeds=2, settings=SearchSettings(max_queries=20))
    with Store(tmp_path / "r.sqlite") as store, pytest.raises(
        StoreError, match=r"has no result for seed positions \[0, 1\]"
    ):
        run_campaign(spec, store, pair=int8_pair, dataset=mnist_test)


def test_a_run_on_hand_picked_seeds_resumes_on_the_same_images(tmp_path, int8_pair, mnist_test):
    """The dashboard searches a hand-picked part of a dataset; resumed from the command line
    (which loads the whole dataset), every position still holds the image it started with."""
    import threading

    picked = mnist_test.subset(list(range(1000, 1400)))
    spec = CampaignSpec(PAIR, "random", seeds=5, settings=SearchSettings(max_queries=40),
                        rng_seed=2)
    stop = threading.Event()
    path = tmp_path / "runs.sqlite"
    with Store(path) as store:
        run_id = run_campaign(spec, store, pair=int8_pair, dataset=picked, stop=stop,
                              emit=lambda e: stop.set() if type(e).__name__ == "SeedFinished"
                              else None).run_id
        plan = store.get_run(run_id).seed_plan
    assert all(1000 <= index < 1400 for index in plan.indices)
    result = compd("search", "--db", str(path), "--resume", run_id)
    assert result.returncode == 0, result.stderr
    stored = Store(path).load_results(run_id, details=False)
    assert [r.seed.index for r in stored] == list(plan.indices)


@pytest.mark.parametrize("order, moved", [("margin", False), ("margin", True), (None, False)])
def test_a_run_stored_without_its_seed_list_resumes_only_onto_the_same_images(
    stopped_run, order, moved
):
    """Files written before runs kept their seed list (or order): seeds are drawn again and must
    land on the images the finished positions searched."""
    import sqlite3

    path, before = stopped_run
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE runs SET seed_plan = NULL")
        if moved:
            connection.execute("UPDATE seeds SET dataset_index = dataset_index + 1")
    extra = ("--seed-order", order) if order else ()
    result = compd("search", "--db", str(path), "--resume", before.id, *extra)
    if moved or order is None:  # the run was drawn lowest margin first, not at random
        assert result.returncode == 2
        assert (f"run {before.id} was stored without its seed list, and drawing its seeds again "
                "puts other images at positions") in result.stderr
        assert Store(path).get_run(before.id).status == "stopped"
    else:
        assert result.returncode == 0, result.stderr
        after = Store(path).get_run(before.id)
        assert (after.status, after.seed_plan.order) == ("finished", "margin")
        assert [r.seed.index for r in Store(path).load_results(before.id, details=False)] \
            == list(after.seed_plan.indices)
