"""The pair description stored with every run: round trips, file hashes, old runs, seeds, data."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from compd_core.cli.common import parse_seed_indices
from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError, DatasetError
from compd_core.pair_spec import ModelFileMissingError, PairSpec, file_sha256
from compd_core.paths import mnist_path
from compd_core.search.seeds import explicit_seeds
from compd_core.search.settings import SearchSettings
from compd_core.store import SCHEMA_VERSION, SeedPlan, Store

VERSION_1_DB = Path(__file__).parents[1] / "data" / "store_v1.sqlite"


@pytest.fixture()
def two_files(tmp_path):
    original, compressed = tmp_path / "a.pt", tmp_path / "b.onnx"
    original.write_bytes(b"original weights")
    compressed.write_bytes(b"compressed weights")
    return original, compressed


def test_a_file_pair_round_trips_with_its_hashes(two_files):
    original, compressed = two_files
    spec = PairSpec.files(original, compressed, (1, 28, 28), ("zero", "one")).with_hashes()
    assert spec.original_sha256 == file_sha256(original) != file_sha256(compressed)
    assert PairSpec.from_json(spec.to_json()) == spec
    assert spec.name == "a.pt vs b.onnx" and not spec.is_zoo
    assert PairSpec.from_dict(PairSpec.zoo("lenet5-int8-static").to_dict()).zoo_id == "lenet5-int8-static"


def test_a_relative_path_is_stored_absolute(two_files, monkeypatch):
    monkeypatch.chdir(two_files[0].parent)
    spec = PairSpec.files("a.pt", "b.onnx")
    assert spec.original == str(two_files[0].resolve())
    assert PairSpec.files("mymodels:make", "b.onnx", allow_code=True).original == "mymodels:make"


@pytest.mark.parametrize("kwargs, message", [
    ({"zoo_id": "x", "original": "a.pt", "compressed": "b.pt"}, "not both"),
    ({"original": "a.pt"}, "both an original and a compressed"),
    ({}, "zoo pair id"),
])
def test_a_spec_that_names_no_single_pair_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PairSpec(**kwargs)


def test_a_changed_file_is_a_warning_and_a_missing_one_an_error(two_files, caplog):
    original, compressed = two_files
    spec = PairSpec.files(original, compressed).with_hashes()
    assert spec.changed_files() == []
    compressed.write_bytes(b"retrained")
    with caplog.at_level(logging.WARNING, logger="compd_core.pair_spec"):
        (note,) = spec.changed_files()
    assert "compressed model file" in note and "changed since this run was searched" in note
    assert note in caplog.text
    original.unlink()
    with pytest.raises(ModelFileMissingError, match="original model file .* is gone"):
        spec.changed_files()
    assert len(spec.changed_files(refuse_missing=False)) == 2  # readers only warn


def _strip_to_version_3(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE runs DROP COLUMN pair_spec")
        connection.execute("PRAGMA user_version = 3")
    connection.close()


def test_runs_keep_their_pair_and_old_runs_still_open(tmp_path, two_files):
    path = tmp_path / "runs.sqlite"
    spec = PairSpec.files(*two_files).with_hashes()
    plan = SeedPlan("explicit", (3, 17), (1, 2))
    with Store(path) as store:
        own = store.create_run(spec.name, "compd", SearchSettings(), 2, 0, "mnist", seed_plan=plan,
                               pair_spec=spec)
        zoo = store.create_run("lenet5-int8-static", "compd", SearchSettings(), 2, 0, "mnist")
        assert store.get_run(own).pair_source() == spec
        assert store.get_run(own).as_dict()["pair_spec"]["compressed_sha256"] == spec.compressed_sha256
    _strip_to_version_3(path)  # a file written before runs kept their pair
    with Store(path) as store:
        old = store.get_run(zoo)
        assert old.pair_spec is None and old.pair_source() == PairSpec.zoo("lenet5-int8-static")
        assert store.get_run(own).pair_source() == PairSpec.zoo(spec.name)  # the column was lost
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    connection.close()


def test_a_version_1_run_rebuilds_its_zoo_pair(tmp_path):
    path = tmp_path / "old.sqlite"
    path.write_bytes(VERSION_1_DB.read_bytes())
    with Store(path) as store:
        (run,) = store.list_runs()
    assert run.pair_source() == PairSpec.zoo("lenet5-int8-static")


# -- explicit seeds ------------------------------------------------------------------------------


def test_seed_indices_from_text_and_file(tmp_path):
    assert parse_seed_indices("3, 17,42") == (3, 17, 42)
    listed = tmp_path / "seeds.txt"
    listed.write_text("3\n\n17\n42\n")
    assert parse_seed_indices(f"@{listed}") == (3, 17, 42)
    assert parse_seed_indices(None) is None


@pytest.mark.parametrize("text, message", [
    ("3,x,5", "'x' is not a whole number"),
    ("3,-1", "-1 is negative"),
    ("@/no/such/file.txt", "cannot read"),
    (",", "lists no seed index"),
])
def test_bad_seed_indices_are_one_clear_error(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_seed_indices(text)


def test_explicit_seeds_are_the_listed_images_in_order(int8_pair, mnist_test):
    seeds = explicit_seeds(int8_pair, mnist_test, (42, 3, 17))
    assert [s.index for s in seeds] == [42, 3, 17] and [s.position for s in seeds] == [0, 1, 2]
    assert torch.equal(seeds[0].image, mnist_test.images[42])
    expected = int8_pair.predict(mnist_test.images[[42, 3, 17]]).labels_original.tolist()
    assert [s.label for s in seeds] == expected


@pytest.mark.parametrize("indices, message", [
    ((3, 17, 3), r"\[3\] are listed twice"),
    ((3, 2000), r"\[2000\] are not in mnist-test, which holds indices 0..1999"),
])
def test_bad_explicit_seeds_are_refused(int8_pair, mnist_test, indices, message):
    with pytest.raises(ConfigError, match=message):
        explicit_seeds(int8_pair, mnist_test, indices)


def test_a_seed_the_models_already_disagree_on_is_refused(int8_pair, mnist_test):
    disagree = torch.nonzero(int8_pair.predict(mnist_test.images).disagree).flatten()
    index = int(mnist_test.indices[disagree[0]])
    with pytest.raises(ConfigError, match=f"already disagree on seed indices \\[{index}\\]"):
        explicit_seeds(int8_pair, mnist_test, (3, index))


# -- the shipped mnist.npz as a dataset file --------------------------------------------------


def test_the_shipped_npz_reads_as_its_test_split_or_its_train_split(mnist_test, mnist_train):
    test = load_dataset(str(mnist_path()))
    train = load_dataset(f"{mnist_path()}:train")
    assert torch.equal(test.images, mnist_test.images) and torch.equal(test.labels, mnist_test.labels)
    assert torch.equal(train.images, mnist_train.images) and len(train) == 8000


def test_a_split_the_npz_lacks_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros((2, 28, 28), np.uint8), y=np.array([0, 1]))
    assert len(load_dataset(str(path))) == 2
    with pytest.raises(DatasetError, match="has no train split .*leave the :split out"):
        load_dataset(f"{path}:train")
    only_train = tmp_path / "train_only.npz"
    np.savez(only_train, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([0, 1]))
    with pytest.raises(DatasetError, match="must hold arrays 'x' and 'y', found x_train, y_train"):
        load_dataset(str(only_train))
