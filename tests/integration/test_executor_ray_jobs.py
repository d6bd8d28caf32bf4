"""Whole jobs (a characterization, a repair) on a local Ray cluster: the same events and numbers
as in-process, events that arrive while the job runs, Stop that ends it with ``Stopped``, its
own errors raised as themselves, a dead worker said plainly, and the dashboard's jobs sent to
the executor the server is set to."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from compd_core.campaign import CampaignSpec, run_campaign  # noqa: E402
from compd_core.characterize.task import CharacterizeTask  # noqa: E402
from compd_core.data import load_mnist  # noqa: E402
from compd_core.errors import CompdError  # noqa: E402
from compd_core.events import Ended, Event, Progress, Stopped  # noqa: E402
from compd_core.executors import InProcessExecutor  # noqa: E402
from compd_core.executors.ray_executor import RayExecutor, WorkerLostError  # noqa: E402
from compd_core.pair_spec import PairSpec  # noqa: E402
from compd_core.repair import EpochFinished, Repair, RepairSettings  # noqa: E402
from compd_core.repair.task import RepairTask  # noqa: E402
from compd_core.search.settings import SearchSettings  # noqa: E402
from compd_core.store import Store  # noqa: E402
from compd_core.zoo import load_pair  # noqa: E402
from compd_core.zoo.loading import USER_ZOO_ENV  # noqa: E402

PAIR = "lenet5-int8-static"
CHARACTERIZE = CharacterizeTask((PairSpec.zoo(PAIR), PairSpec.zoo("lenet5-prune90")), "mnist",
                                ("gaussian_noise", "rotate"), (1, 5), seed=2)
QUICK = RepairSettings(epochs=2, variants_per_trigger=2, mined_seeds=16, mine_queries=200,
                       research=False, checkpoint="last")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """A small real search on the int8 LeNet-5 pair with four triggers hand-picked, and a
    selection "one" of a single trigger (too few to repair)."""
    path = tmp_path_factory.mktemp("jobs") / "runs.sqlite"
    spec = CampaignSpec(pair=PAIR, strategy="compd", seeds=8, settings=SearchSettings(max_queries=3000))
    with Store(path) as store:
        run_id = run_campaign(spec, store).run_id or ""
        found = [r.seed.position for r in store.load_results(run_id, details=False) if r.found]
        assert len(found) >= 4, "the tests need a run with at least four triggers"
        store.set_selection(run_id, found[:4])
        store.set_selection(run_id, found[:1], name="one")
    return path, run_id


def _run_job(executor, task, stop_when=None) -> tuple[object, list[Event]]:
    """The task's result and every event it told, in order; ``stop_when(event)`` True sets
    the stop signal."""
    events: list[Event] = []
    stop = threading.Event()

    def emit(event: Event) -> None:
        events.append(event)
        if stop_when is not None and stop_when(event):
            stop.set()

    return executor.run_job(task, emit, stop), events


def _plain(events: list[Event]) -> str:
    """Events without the wall-clock seconds an end summary carries, as text: exact numbers,
    and a NaN (epoch 0 has no loss yet) equal to itself."""
    return repr([dataclasses.replace(e, summary={k: v for k, v in e.summary.items() if k != "seconds"})
                 if isinstance(e, Ended) else e for e in events])


def _measured(report) -> dict:
    """A characterization's numbers, without how long each part took."""
    return {k: v for k, v in report.to_dict().items() if k != "timings_s"}


def test_a_characterization_on_ray_tells_the_events_and_numbers_of_one_in_process(local_ray):
    here, here_events = _run_job(InProcessExecutor(), CHARACTERIZE)
    there, there_events = _run_job(RayExecutor(workers=2), CHARACTERIZE)
    assert there_events == here_events  # every Progress, in order, then the one Finished
    assert sum(isinstance(e, Progress) for e in there_events) == 2 * (1 + 2 * 2)
    assert isinstance(there_events[-1], Ended) and not there_events[-1].stopped
    assert there.rows() == here.rows()
    assert [_measured(r) for r in there.reports] == [_measured(r) for r in here.reports]


def test_stop_ends_a_characterization_on_ray_after_its_current_cell(local_ray):
    """Stopped at its first progress event: the event came while the job ran, so the job
    ends early, with ``Stopped`` and the cells it had measured."""
    task = dataclasses.replace(CHARACTERIZE, pairs=CHARACTERIZE.pairs[:1],
                               corruptions=tuple(CHARACTERIZE.corruptions) + ("fog", "stripe"),
                               severities=(1, 2, 3, 4, 5))
    comparison, events = _run_job(RayExecutor(workers=2), task,
                                  stop_when=lambda e: isinstance(e, Progress))
    assert isinstance(events[-1], Stopped) and events[-1].kind == "characterize"
    report = comparison.reports[0]
    assert not report.complete and len(report.cells) < 4 * 5
    assert events[-1].summary["cells"] == len(report.cells)


def test_a_repair_on_ray_gives_the_numbers_of_one_in_process_and_registers_here(
        local_ray, run, tmp_path, monkeypatch):
    """Trained in a worker, registered by the driver on the user's word: the same report,
    the same curves, and the registered pair answers like the repaired model."""
    monkeypatch.setenv(USER_ZOO_ENV, str(tmp_path / "zoo"))
    path, run_id = run
    task = RepairTask(str(path), run_id, QUICK)
    here, here_events = _run_job(InProcessExecutor(), task)  # one torch thread, as a worker
    there, there_events = _run_job(RayExecutor(workers=2), task)
    assert isinstance(there, Repair) and there.report is not None and here.report is not None
    assert _plain(there_events) == _plain(here_events)
    assert [e.epoch for e in there_events if isinstance(e, EpochFinished)] == [0, 1, 2]
    assert repr(dataclasses.replace(there.report, seconds=0)) == repr(dataclasses.replace(here.report, seconds=0))
    assert there.report.triggers == 4 and not there.report.stopped and not there.report.registered

    images = load_mnist("test").images[:512]
    assert torch.equal(there._repaired.served(images), here._repaired.served(images))
    with Store(path) as store:
        there.attach(store)
        registered = there.register()
        assert [r.pair_after for r in store.list_repairs(run_id)] == [registered.repaired_pair]
    pair = load_pair(registered.repaired_pair or "")
    assert torch.equal(pair.compressed.predict_proba(images).argmax(1),
                       here._repaired.served(images).argmax(1))


def test_stop_ends_a_repair_on_ray_long_before_its_last_epoch(local_ray, run):
    path, run_id = run
    task = RepairTask(str(path), run_id, dataclasses.replace(QUICK, epochs=60))
    repair, events = _run_job(RayExecutor(workers=2), task,
                              stop_when=lambda e: isinstance(e, EpochFinished))
    assert isinstance(events[-1], Stopped) and events[-1].kind == "repair"
    assert repair.report.stopped and repair.report.repaired_pair is None
    assert repair.report.epochs_run < 60  # stopped between batches, long before its end


def test_an_error_of_the_task_reaches_the_caller_as_itself(local_ray, run):
    path, run_id = run
    task = RepairTask(str(path), run_id, QUICK, selection="one")
    errors = []
    for executor in (InProcessExecutor(), RayExecutor(workers=2)):
        with pytest.raises(CompdError) as caught:
            _run_job(executor, task)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
    assert "a repair needs at least 2 triggers" in errors[1][1]


def test_a_worker_that_dies_is_said_in_one_line(local_ray):
    from executor_support import DyingTask

    with pytest.raises(WorkerLostError, match="the Ray worker running this characterize died"):
        _run_job(RayExecutor(workers=2), DyingTask())


def test_a_job_that_reads_local_files_runs_here_on_a_cluster_of_other_machines(run, caplog):
    """With an address, the cluster's machines may not see the store file: the repair runs in
    this process, and the log says why (no Ray session is needed for it)."""
    path, run_id = run
    task = RepairTask(str(path), run_id, QUICK, selection="one")
    assert task.local_files() == [str(path)]
    assert CHARACTERIZE.local_files() == []  # shipped pairs and data: fine on any machine
    with caplog.at_level(logging.WARNING), pytest.raises(CompdError, match="at least 2 triggers"):
        _run_job(RayExecutor(address="10.0.0.5:6379"), task)
    assert "the repair runs in this process, not on the Ray cluster at 10.0.0.5:6379" in caplog.text


def test_the_dashboards_repairs_and_characterizations_run_on_the_servers_executor(
        local_ray, run, tmp_path, monkeypatch):
    from dashboard import characterize_jobs, repair_jobs

    monkeypatch.setenv("COMPD_EXECUTOR", "ray")
    monkeypatch.setenv("COMPD_RAY_WORKERS", "2")
    monkeypatch.setenv(USER_ZOO_ENV, str(tmp_path / "zoo"))
    on_ray: list[str] = []
    run_on_ray = RayExecutor.run_job

    def counting(self, task, emit, stop):
        on_ray.append(task.kind)
        return run_on_ray(self, task, emit, stop)

    monkeypatch.setattr(RayExecutor, "run_job", counting)
    path, run_id = run
    with Store(path) as store:
        repair = repair_jobs.start_repair(store, run_id, QUICK)
        characterization = characterize_jobs.start_characterize(
            CHARACTERIZE.pairs, CHARACTERIZE.dataset, CHARACTERIZE.corruptions,
            CHARACTERIZE.severities, CHARACTERIZE.seed)
        assert repair.wait(600) and characterization.wait(600)
        assert sorted(on_ray) == ["characterize", "repair"]
        assert repair.status == "finished", repair.error
        assert characterization.status == "finished", characterization.error
        assert characterization.latest is not None and characterization.latest.done == 10
        assert [e.epoch for e in repair.progress().epochs] == [0, 1, 2]
        report = repair.register()  # the driver writes the store and the user zoo
        assert report.registered and store.list_repairs(run_id)[-1].pair_after == report.repaired_pair
