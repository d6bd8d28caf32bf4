"""The background job registry: searches off the script thread, stopped on request, failures
reported as messages, and nothing found ever lost."""

from __future__ import annotations

import time
import types
from pathlib import Path

import pytest
import torch

from compd_core.campaign import CampaignSpec
from compd_core.data import load_mnist
from compd_core.errors import ConfigError
from compd_core.pair_spec import PairSpec
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.zoo import load_pair
from compd_core.search.results import ExitReason
from dashboard import jobs
from dashboard.job_registry import job_using_run
from dashboard_support import PAIR, tensors_in


def _spec(seeds: int, budget: int) -> CampaignSpec:
    return CampaignSpec(pair=PAIR, strategy="compd", seeds=seeds,
                        settings=SearchSettings(max_queries=budget), rng_seed=0,
                        seed_order="margin")


def test_a_job_stores_every_result_and_its_live_counts_match(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        job = jobs.start_search(store, _spec(3, 200), load_pair(PAIR), load_mnist("test"))
        assert jobs.get_job(job.id) is job
        job.wait(120)
        assert job.status == "finished" and job.error is None
        run = store.get_run(job.run_id)
        progress = job.progress()
        assert run.status == "finished" and run.seeds_done == progress.seeds_done == 3
        assert run.found == progress.found == job.summary["found"]
        assert run.queries == progress.queries == job.summary["total_queries"]
        assert jobs.job_for_run(job.run_id) is None  # ended: the run may be deleted now
        # a finished job keeps numbers, not images; the trigger its page shows comes from the store
        assert progress.results == [] and not job.recorder.last_chain
        assert len(progress.finished) == 3 and sum(progress.finished.values()) == run.found
        assert sum(progress.exit_reasons.values()) == 3
        assert tensors_in(job) == []
        if run.found:
            latest = job.latest_found(progress)
            assert latest is not None and latest.found and latest.chain
            assert latest.seed.position == progress.latest_found_position
        # the one protocol: progress counted the run's seeds, the end event carries its summary
        assert job.latest is not None and (job.latest.done, job.latest.total) == (3, 3)
        assert job.latest.kind == "search" and job.latest.unit == "seed"
        assert job.outcome is not None and not job.outcome.stopped
        assert job.outcome.summary == job.summary


def test_the_tensor_walk_finds_what_a_job_would_hold() -> None:
    """The walk above must see a tensor however deep a job keeps it (else its [] proves nothing)."""
    holder = types.SimpleNamespace(results=[{"chain": (types.SimpleNamespace(image=torch.zeros(1)),)}])
    assert tensors_in(holder) == ["job.results[0]['chain'][0].image"]
    assert tensors_in(types.SimpleNamespace(model=torch.nn.Linear(2, 1))) == [
        "job.model.weight", "job.model.bias"]


def test_a_characterization_job_reports_through_the_protocol_and_keeps_no_tensors() -> None:
    from dashboard import characterize_jobs

    job = characterize_jobs.start_characterize([PairSpec.zoo(PAIR)], "mnist", ["fog"], [1, 2])
    assert job.wait(120)
    assert job.status == "finished" and job.comparison is not None
    assert job.latest is not None and (job.latest.done, job.latest.total) == (3, 3)
    assert job.latest.kind == "characterize" and job.latest.unit == "cell"
    assert job.outcome is not None and not job.outcome.stopped
    assert job.outcome.summary["cells"] == 2 == len(job.comparison.reports[0].cells)
    assert tensors_in(job) == []


def test_a_finished_job_parks_its_uploads_in_files_and_a_reload_gets_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.choices import DatasetChoice, SessionChoices, Upload, default_pair
    from dashboard.uploads import unpark_uploads

    monkeypatch.setenv("COMPD_UPLOADS", str(tmp_path / "uploads"))
    upload = Upload("my digit.png", bytes(range(256)) * 3 + bytes(16), (1, 28, 28))
    choices = SessionChoices(default_pair(), DatasetChoice(), picks=(4, 7), uploads=(upload,))
    with Store(tmp_path / "r.sqlite") as store:
        job = jobs.start_search(store, _spec(2, 100), load_pair(PAIR), load_mnist("test"),
                                choices=choices)
        assert job.wait(120) and job.status == "finished"
    kept = job.choices
    assert kept is not None and kept.uploads == () and kept.picks == (4, 7)
    (parked,) = kept.parked_uploads
    assert Path(parked.path).is_relative_to(tmp_path / "uploads") and parked.shape == (1, 28, 28)
    assert unpark_uploads(kept) == [upload]
    Path(parked.path).unlink()  # cleaned away meanwhile: left out, not an error
    assert unpark_uploads(kept) == []


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_stop_ends_a_long_search_and_keeps_its_results(tmp_path: Path) -> None:
    """Stopped after its first seed is final: that seed and the stopped ones are all stored."""
    with Store(tmp_path / "r.sqlite") as store:
        job = jobs.start_search(store, _spec(200, 100_000), load_pair(PAIR), load_mnist("test"))
        _wait_for(lambda: job.progress().seeds_done >= 1 or not job.running)
        assert job.running and jobs.job_for_run(job.run_id) is job  # 200 seeds: far from done
        assert job_using_run(job.run_id) is job
        job.request_stop()
        job.wait(120)
        assert job.status == "stopped" and job.stop_seconds is not None
        assert job.outcome is not None and job.outcome.stopped and tensors_in(job) == []
        assert jobs.job_for_run(job.run_id) is None and job_using_run(job.run_id) is None
        run = store.get_run(job.run_id)
        results = store.load_results(job.run_id, details=False)
    progress = job.progress()
    finished = [r for r in results if r.exit_reason is not ExitReason.STOPPED]
    assert run.status == "stopped" and progress.seeds_done >= 1
    assert len(finished) >= 1 and sum(r.found for r in results) == run.found == progress.found >= 1
    assert run.queries == sum(r.queries for r in results) > 0
    assert run.seeds_done == len(results) <= 200


def test_a_run_a_repair_is_using_is_reported_busy(tmp_path: Path) -> None:
    """The Runs page asks this before it deletes a run: a repair reading it counts too."""
    from dashboard import repair_jobs
    from compd_core.repair import RepairSettings

    job = repair_jobs.RepairJob(id="test-repair", run_id="run-being-repaired", pair=PAIR,
                                settings=RepairSettings())
    repair_jobs._REGISTRY.add(job)
    assert job_using_run("run-being-repaired") is job
    assert job_using_run("another-run") is None
    job.status = "finished"
    assert job_using_run("run-being-repaired") is None


def test_demo_rule_stops_at_the_first_trigger(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        job = jobs.start_search(store, _spec(8, 2_000), load_pair(PAIR), load_mnist("test"),
                                kind="demo", stop_after=1, note="demo")
        job.wait(120)
        run = store.get_run(job.run_id)
    # seeds advance together, so the step that finds the first trigger may find a few at once
    assert job.status == "stopped" and 1 <= run.found < 8 and run.note == "demo"


def test_a_failing_search_reports_the_message_and_leaves_no_empty_run(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        job = jobs.start_search(store, _spec(5_000, 100), load_pair(PAIR), load_mnist("test"))
        job.wait(120)
        assert job.status == "failed"
        assert "eligible seeds" in job.error  # more seeds asked for than the test split has
        assert store.list_runs() == []


def test_mistakes_seen_at_once_raise_before_any_thread(tmp_path: Path) -> None:
    spec = CampaignSpec(pair=PAIR, strategy="no-such-strategy", seeds=1)
    with Store(tmp_path / "r.sqlite") as store:
        with pytest.raises(ConfigError, match="unknown strategy"):
            jobs.start_search(store, spec, load_pair(PAIR), load_mnist("test"))
        assert store.list_runs() == []


def test_the_browser_identity_survives_a_new_mask_and_differs_between_browsers() -> None:
    """Streamlit re-masks its XSRF cookie on every response; the token under it stays."""
    import binascii

    from dashboard.viewer import _xsrf_token

    def cookie(token: bytes, mask: bytes) -> str:
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        return f"2|{binascii.b2a_hex(mask).decode()}|{binascii.b2a_hex(masked).decode()}|1700000000"

    token = bytes(range(16))
    assert _xsrf_token(cookie(token, b"\x01\x02\x03\x04")) == token
    assert _xsrf_token(cookie(token, b"\xaa\xbb\xcc\xdd")) == token
    assert _xsrf_token(cookie(bytes(16), b"\x01\x02\x03\x04")) != token
    assert _xsrf_token("garbage") is None and _xsrf_token("2|zz|zz|1") is None


def test_jobs_share_a_bounded_pool_and_queue_beyond_it() -> None:
    import threading
    from dataclasses import dataclass, field

    from dashboard.job_registry import MAX_WORKERS, JobLifecycle, JobRegistry

    @dataclass
    class Waiting(JobLifecycle):
        id: str
        started: float = field(default_factory=time.time)
        status: str = "running"
        ended: float | None = None
        stop_event: threading.Event = field(default_factory=threading.Event)
        future: object = None

    registry: JobRegistry = JobRegistry(keep_finished=0)
    gate, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]

    def work(job: Waiting) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait(60)
        with lock:
            running[0] -= 1
        job.status = "finished"

    crowd = [Waiting(id=f"w{i}") for i in range(MAX_WORKERS + 2)]
    for job in crowd:
        registry.start(job, lambda job=job: work(job))
    _wait_for(lambda: running[0] == MAX_WORKERS, timeout=30)
    time.sleep(0.2)  # give a would-be extra worker the chance to start (it must not)
    assert running[0] == MAX_WORKERS and not crowd[-1].wait(0)
    gate.set()
    registry.join_all(60)
    assert most[0] == MAX_WORKERS and all(job.status == "finished" for job in crowd)
