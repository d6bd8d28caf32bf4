"""The results database: exact round trips, resume, concurrent readers, errors, cascades."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from dataclasses import dataclass

import pytest
import torch

from compd_core.errors import CompdError, StoreError
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult, Trigger
from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings
from compd_core.store import SCHEMA_VERSION, Store, decode_image, encode_image

SETTINGS = SearchSettings(max_queries=500, criterion=Criterion(max_linf=0.2))


# ---------------------------------------------------------------------------------------------
# Real results: MNIST seeds, triggers a few grey levels away, probabilities from a real pair


@pytest.fixture(scope="module")
def predict(mnist_train):
    """Both models' probabilities: the zoo's int8 LeNet-5 pair, or nearest-class-mean models.

    The fallback (used only while the zoo is not built) is still computed from real digits:
    the "compressed" model's class means are quantized to 16 grey levels.
    """
    try:
        from compd_core.zoo import load_pair

        pair = load_pair("lenet5-int8-static")
        return lambda x: (lambda p: (p.original, p.compressed))(pair.predict(x))
    except CompdError:
        x, y = mnist_train.images.flatten(1), mnist_train.labels
        means = torch.stack([x[y == c].mean(0) for c in range(10)])
        coarse = torch.round(means * 15) / 15
        return lambda batch: (torch.softmax(-torch.cdist(batch.flatten(1), means), 1),
                              torch.softmax(-torch.cdist(batch.flatten(1), coarse), 1))


def _mutate(image: torch.Tensor, generator: torch.Generator, count: int) -> torch.Tensor:
    """Set ``count`` random pixels to random grey levels (on the 8-bit grid)."""
    flat = image.flatten().clone()
    where = torch.randperm(flat.numel(), generator=generator)[:count]
    flat[where] = torch.randint(0, 256, (count,), generator=generator).float() / 255.0
    return flat.view_as(image)


def build_result(mnist_test, predict, position: int, index: int, reason: ExitReason) -> SeedResult:
    image = mnist_test.images[index]
    generator = torch.Generator().manual_seed(index)
    steps_images = [_mutate(image, generator, 3)]
    steps_images.append(_mutate(steps_images[-1], generator, 4))
    probs_o, probs_c = predict(torch.stack([image, *steps_images]))
    seed = Seed(position, index, image, int(probs_o[0].argmax()),
                int(mnist_test.labels[index]) if position % 2 == 0 else None)
    chain = [
        ChainStep(10 * (k + 1), op, params, fitness, int(probs_o[k + 1].argmax()),
                  int(probs_c[k + 1].argmax()), steps_images[k])
        for k, (op, params, fitness) in enumerate([
            ("pixel_change", {"k": 3}, 0.25 + index / 1000),
            ("gaussian_blur", {"kernel": 5, "sigma": 1.1}, -0.125),
        ])
    ]
    trace = [0.5, 0.25 + index / 1000, 0.25 + index / 1000, -0.125]
    trigger = None
    if reason is ExitReason.FOUND:
        delta = (steps_images[-1] - image).flatten()
        trigger = Trigger(steps_images[-1], probs_o[-1], probs_c[-1], float(delta.norm()),
                          float(delta.abs().max()))
    return SeedResult(seed, reason, queries=37 + position, iterations=20 + position,
                      seconds=0.125 * (position + 1), trigger=trigger, chain=chain, trace=trace)


REASONS = [ExitReason.FOUND, ExitReason.QUERY_BUDGET, ExitReason.FOUND, ExitReason.TIME_BUDGET,
           ExitReason.STOPPED, ExitReason.FOUND]


@pytest.fixture(scope="module")
def results(mnist_test, predict) -> list[SeedResult]:
    return [build_result(mnist_test, predict, pos, 17 * pos + 3, reason)
            for pos, reason in enumerate(REASONS)]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "compd.sqlite") as s:
        yield s


def new_run(store: Store, seed_count: int = 6, pair: str = "lenet5-int8-static") -> str:
    return store.create_run(pair, "dflare", SETTINGS, seed_count, 7, "mnist-test")


def assert_same(loaded: SeedResult, saved: SeedResult) -> None:
    assert loaded.seed.position == saved.seed.position and loaded.seed.index == saved.seed.index
    assert loaded.seed.label == saved.seed.label
    assert loaded.seed.true_label == saved.seed.true_label
    assert torch.equal(loaded.seed.image, saved.seed.image)
    assert loaded.exit_reason is saved.exit_reason
    assert (loaded.queries, loaded.iterations) == (saved.queries, saved.iterations)
    assert loaded.seconds == saved.seconds
    assert loaded.trace == saved.trace
    assert [s.operator for s in loaded.chain] == [s.operator for s in saved.chain]
    for a, b in zip(loaded.chain, saved.chain, strict=True):
        assert (a.iteration, a.params, a.fitness) == (b.iteration, b.params, b.fitness)
        assert (a.label_original, a.label_compressed) == (b.label_original, b.label_compressed)
        assert torch.equal(a.image, b.image)
    assert loaded.found == saved.found
    if saved.trigger is not None:
        t, s = loaded.trigger, saved.trigger
        assert torch.equal(t.image, s.image)
        assert torch.allclose(t.probs_original, s.probs_original, atol=1e-6, rtol=0)
        assert torch.allclose(t.probs_compressed, s.probs_compressed, atol=1e-6, rtol=0)
        assert (t.label_original, t.label_compressed) == (s.label_original, s.label_compressed)
        assert (t.l2, t.linf) == (s.l2, s.linf)


# ---------------------------------------------------------------------------------------------
# Images


def test_mnist_images_round_trip_exactly_as_png(mnist_test):
    for image in mnist_test.images[:50]:
        data = encode_image(image)
        assert data.startswith(b"\x89PNG")
        assert torch.equal(decode_image(data), image)


def test_colour_and_off_grid_images_round_trip_exactly(mnist_test):
    digit = mnist_test.images[0]
    inverse = torch.round((1.0 - digit) * 255) / 255  # 1 - k/255 is not on the grid in float32
    rgb = torch.cat([digit, torch.flip(digit, [1]), inverse])
    assert encode_image(rgb).startswith(b"\x89PNG")
    assert torch.equal(decode_image(encode_image(rgb)), rgb)
    off_grid = digit * 0.3 + 0.001  # not on the 8-bit grid: stored losslessly as .npy
    data = encode_image(off_grid)
    assert not data.startswith(b"\x89PNG")
    assert torch.equal(decode_image(data), off_grid)


# ---------------------------------------------------------------------------------------------
# Round trip and resume


def test_results_round_trip_exactly(store, results):
    run_id = new_run(store)
    for result in results:
        store.save_result(run_id, result)
    loaded = store.load_results(run_id)
    assert [r.seed.position for r in loaded] == list(range(6))
    for got, saved in zip(loaded, results, strict=True):
        assert_same(got, saved)
    assert [r.exit_reason for r in loaded] == REASONS
    assert store.load_trigger(run_id, 1) is None
    assert torch.equal(store.load_trigger(run_id, 2).image, results[2].trigger.image)


def test_results_survive_reopening_and_partial_loads(tmp_path, results):
    path = tmp_path / "runs.sqlite"
    with Store(path) as first:
        run_id = new_run(first)
        for result in results[:3]:
            first.save_result(run_id, result)
    with Store(path, create=False) as second:
        subset = second.load_results(run_id, [2, 0], details=False)
        assert [r.seed.position for r in subset] == [0, 2]
        assert subset[0].chain == [] and subset[0].trace == []
        assert torch.equal(subset[1].trigger.image, results[2].trigger.image)
        with pytest.raises(StoreError, match=r"no result for seed positions \[4\]"):
            second.load_results(run_id, [0, 4])


def test_finished_positions_after_partial_writes_then_resume(tmp_path, results):
    path = tmp_path / "compd.sqlite"
    store = Store(path)
    run_id = new_run(store)
    for position in (0, 3, 4):
        store.save_result(run_id, results[position])
    assert store.finished_positions(run_id) == {0, 3, 4}
    run = store.get_run(run_id)
    assert (run.status, run.seeds_done, run.found, run.seed_count) == ("running", 3, 1, 6)
    store.close()  # as if the process had died

    resumed = Store(path)
    record = resumed.resume_run(run_id)
    assert record.settings == SETTINGS and record.rng_seed == 7 and record.dataset == "mnist-test"
    assert resumed.finished_positions(run_id) == {0, 3, 4}
    for position in sorted(set(range(6)) - resumed.finished_positions(run_id)):
        resumed.save_result(run_id, results[position])
    resumed.finish_run(run_id, "stopped", wall_seconds=2.5)
    resumed.resume_run(run_id)
    resumed.finish_run(run_id, "finished", wall_seconds=1.25)
    run = resumed.get_run(run_id)
    assert (run.status, run.seeds_done, run.found) == ("finished", 6, 3)
    assert run.wall_seconds == 3.75  # the sessions add up
    assert run.queries == sum(r.queries for r in results)
    assert run.found_rate == 0.5
    resumed.close()


def test_saving_a_position_again_replaces_it(store, results):
    run_id = new_run(store)
    store.save_result(run_id, results[0])
    replacement = SeedResult(results[0].seed, ExitReason.QUERY_BUDGET, 500, 500, 3.0)
    store.save_result(run_id, replacement)
    (loaded,) = store.load_results(run_id)
    assert loaded.trigger is None and loaded.chain == [] and loaded.queries == 500
    assert store.get_run(run_id).found == 0


def test_nan_fitness_stays_nan(store, results):
    run_id = new_run(store)
    step = results[0].chain[0]
    odd = SeedResult(results[0].seed, ExitReason.STOPPED, 1, 1, 0.0,
                     chain=[ChainStep(1, "median_blur", {}, math.nan, 1, 1, step.image)],
                     trace=[math.nan, -math.inf])
    store.save_result(run_id, odd)
    (loaded,) = store.load_results(run_id)
    assert math.isnan(loaded.chain[0].fitness)
    assert math.isnan(loaded.trace[0]) and loaded.trace[1] == -math.inf


def test_list_runs_newest_first_with_counts(store, results):
    first = new_run(store, pair="lenet5-prune90")
    second = new_run(store)
    store.save_result(second, results[0])
    store.save_result(second, results[1])
    runs = store.list_runs()
    assert [r.id for r in runs] == [second, first]
    assert (runs[0].seeds_done, runs[0].found, runs[0].queries) == (2, 1, 37 + 38)
    assert (runs[1].seeds_done, runs[1].found, runs[1].pair) == (0, 0, "lenet5-prune90")
    assert first != second and len(first.split("-")) == 3


# ---------------------------------------------------------------------------------------------
# One writer, several readers


def test_a_writer_thread_and_reader_threads_do_not_disturb_each_other(store, results):
    run_id = new_run(store, seed_count=60)
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def write() -> None:
        try:
            for position in range(60):
                base = results[position % len(results)]
                seed = Seed(position, base.seed.index, base.seed.image, base.seed.label)
                store.save_result(run_id, SeedResult(seed, base.exit_reason, base.queries,
                                                     base.iterations, base.seconds, base.trigger,
                                                     base.chain, base.trace))
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                (run,) = store.list_runs()
                loaded = store.load_results(run_id)
                # a snapshot holds whole seeds: every found seed has its trigger and chain
                assert all(r.trigger is not None and len(r.chain) == 2
                           for r in loaded if r.exit_reason is ExitReason.FOUND)
                assert len(loaded) >= run.seeds_done
                seen.append(len(loaded))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert seen and max(seen) <= 60
    assert store.finished_positions(run_id) == set(range(60))


_KILLED_WRITER = """
import sys, torch
from compd_core.data import load_mnist
from compd_core.search.results import ExitReason, Seed, SeedResult, Trigger
from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings
from compd_core.store import Store

store = Store(sys.argv[1])
run_id = store.create_run("lenet5-int8-static", "dflare", SearchSettings(), 1000, 0, "mnist-test")
print(run_id, flush=True)
images = load_mnist("test").images
probs = torch.softmax(torch.arange(10.0), 0)
for position in range(1000):
    seed = Seed(position, position, images[position], 9)
    trigger = Trigger(images[position].flip(2), probs, probs.flip(0), 1.0, 1.0)
    store.save_result(run_id, SeedResult(seed, ExitReason.FOUND, 5, 5, 0.1, trigger))
    print(position, flush=True)
"""


def test_a_sigkilled_writer_loses_nothing_it_reported(tmp_path, mnist_test):
    path = tmp_path / "compd.sqlite"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)],
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        run_id = child.stdout.readline().strip()
        reported = [int(child.stdout.readline()) for _ in range(5)]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with Store(path) as store:
        done = store.finished_positions(run_id)
        assert set(reported) <= done and len(done) < 1000  # killed mid-run
        loaded = store.load_results(run_id)
    assert [r.seed.position for r in loaded] == sorted(done)
    assert all(torch.equal(r.trigger.image, mnist_test.images[r.seed.position].flip(2))
               for r in loaded)


# ---------------------------------------------------------------------------------------------
# Errors


def test_a_file_that_is_not_sqlite_raises_store_error(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="is not an SQLite database"):
        Store(path)
    assert path.read_text().startswith("these are my notes")


def test_another_programs_database_is_left_alone(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (name TEXT)")
    connection.close()
    with pytest.raises(StoreError, match="some other program"):
        Store(path)


def test_missing_database_is_refused_when_not_creating(tmp_path):
    with pytest.raises(StoreError, match="no results database at .*missing.sqlite"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_unknown_run_and_bad_positions(store, results):
    with pytest.raises(StoreError, match=r"no run 'nope' in .*`compd runs list` shows the runs"):
        store.get_run("nope")
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.save_result("nope", results[0])
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.finished_positions("nope")
    run_id = new_run(store, seed_count=3)
    with pytest.raises(StoreError, match=r"position 5 is outside .* \(positions 0..2\)"):
        store.save_result(run_id, results[5])
    with pytest.raises(StoreError, match="no result for seed position 1"):
        store.load_trigger(run_id, 1)
    with pytest.raises(StoreError, match="'finished' or 'stopped'"):
        store.finish_run(run_id, "done", 1.0)  # type: ignore[arg-type]
    assert store.finished_positions(run_id) == set()


# ---------------------------------------------------------------------------------------------
# Cascades, selections, repairs


@dataclass
class _RepairSettings:
    epochs: int = 3
    lr: float = 1e-3


def _rows(path, table: str, run_id: str) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?",
                                  (run_id,)).fetchone()[0]


def test_delete_run_cascades_to_everything_it_owns(store, results):
    doomed, kept = new_run(store), new_run(store)
    for run_id in (doomed, kept):
        for result in results:
            store.save_result(run_id, result)
        store.set_selection(run_id, [0, 2])
        store.save_repair(run_id, "default", "lenet5-int8-static", "repaired-1",
                          _RepairSettings(), {"held_out_fixed": 0.4})
    tables = ("seeds", "triggers", "chain_steps", "traces", "selections", "repairs")
    assert [_rows(store.path, t, doomed) for t in tables] == [6, 3, 12, 6, 2, 1]
    store.delete_run(doomed)
    assert [_rows(store.path, t, doomed) for t in tables] == [0] * 6
    assert [_rows(store.path, t, kept) for t in tables] == [6, 3, 12, 6, 2, 1]
    with pytest.raises(StoreError, match="no run"):
        store.delete_run(doomed)


def test_selections_persist_across_store_instances(tmp_path, results):
    path = tmp_path / "compd.sqlite"
    with Store(path) as first:
        run_id = new_run(first)
        for result in results:
            first.save_result(run_id, result)
        first.set_selection(run_id, [5, 0, 5])
        first.set_selection(run_id, [2], name="hard ones")
        with pytest.raises(StoreError, match=r"no trigger at seed positions \[1, 3\]"):
            first.set_selection(run_id, [0, 1, 3])
    with Store(path) as second:
        assert second.get_selection(run_id) == [0, 5]
        assert second.get_selection(run_id, "hard ones") == [2]
        assert second.list_selections(run_id) == ["default", "hard ones"]
        second.set_selection(run_id, [], name="hard ones")
        assert second.list_selections(run_id) == ["default"]
        assert second.get_selection(run_id, "never made") == []


def test_repairs_are_listed_oldest_first(store, results):
    run_id = new_run(store)
    first = store.save_repair(run_id, "default", "lenet5-int8-static", "repaired-a",
                              _RepairSettings(), {"fixed": torch.tensor([1, 2])})
    second = store.save_repair(run_id, "default", "repaired-a", "repaired-b",
                               {"epochs": 5}, {"fixed": 0.75})
    repairs = store.list_repairs(run_id)
    assert [r.id for r in repairs] == [first, second]
    assert repairs[0].settings == {"epochs": 3, "lr": 1e-3}
    assert repairs[0].report == {"fixed": [1, 2]}
    assert (repairs[1].pair_before, repairs[1].pair_after) == ("repaired-a", "repaired-b")


# ---------------------------------------------------------------------------------------------
# Schema versions and read-only opens

VERSION_1_DB = Path(__file__).parents[1] / "data" / "store_v1.sqlite"  # written by compd's schema 1


def _header_version(path: Path) -> tuple[int, set[str]]:
    with sqlite3.connect(path) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()
    return version, tables


def test_a_version_1_database_upgrades_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    path.write_bytes(VERSION_1_DB.read_bytes())
    assert _header_version(path) == (0, _header_version(path)[1])
    assert "schema_version" in _header_version(path)[1]
    with Store(path) as store:
        (run,) = store.list_runs()
        results = store.load_results(run.id)
    version, tables = _header_version(path)
    assert version == SCHEMA_VERSION and "schema_version" not in tables
    assert (run.pair, run.seed_count, run.status) == ("lenet5-int8-static", 3, "finished")
    assert [r.found for r in results] == [False, False, True]
    assert results[2].trigger.label_original != results[2].trigger.label_compressed
    with Store(path) as again:  # an upgraded file opens as it is
        assert [r.id for r in again.list_runs()] == [run.id]


def test_a_fresh_database_carries_its_version_in_the_header(tmp_path):
    Store(tmp_path / "new.sqlite").close()
    version, tables = _header_version(tmp_path / "new.sqlite")
    assert version == SCHEMA_VERSION and {"runs", "seeds", "triggers"} <= tables and "schema_version" not in tables


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    for read_only in (False, True):
        with pytest.raises(StoreError, match=f"newer compd .schema 99, this one reads {SCHEMA_VERSION}"):
            Store(path, read_only=read_only)


def test_read_only_store_reads_a_version_1_file_without_changing_it(tmp_path):
    path = tmp_path / "old.sqlite"
    path.write_bytes(VERSION_1_DB.read_bytes())
    with Store(path, read_only=True) as store:
        (run,) = store.list_runs()
        assert sum(r.found for r in store.load_results(run.id)) == 1
    assert path.read_bytes() == VERSION_1_DB.read_bytes()


def test_read_only_store_refuses_writes_and_missing_files(tmp_path, mnist_test, predict):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    with pytest.raises(StoreError, match="no results database"):
        Store(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()
    with Store(path, read_only=True) as reader:
        with pytest.raises(StoreError, match="readonly"):
            reader.create_run("lenet5-int8-static", "compd", SETTINGS, 1, 0, "mnist")
    with Store(path) as writer:
        assert writer.list_runs() == []


def test_read_only_store_opens_while_a_writer_holds_the_lock(tmp_path):
    path = tmp_path / "busy.sqlite"
    with Store(path) as store:
        store.create_run("lenet5-int8-static", "compd", SETTINGS, 2, 0, "mnist")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
    try:
        with Store(path, read_only=True) as reader:
            assert len(reader.list_runs()) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
