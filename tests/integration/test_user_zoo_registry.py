"""The user zoo's manifest under concurrent registrations: every repaired pair lands."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from compd_core.compress import get_recipe
from compd_core.repair.registry import register_repaired_pair, source_pair
from compd_core.zoo import list_pairs, load_pair
from compd_core.zoo.loading import USER_ZOO_ENV
from compd_core.zoo.manifest import read_manifest

ROUNDS = 20


@pytest.fixture()
def user_zoo(tmp_path, monkeypatch):
    directory = tmp_path / "user-zoo"
    monkeypatch.setenv(USER_ZOO_ENV, str(directory))
    return directory


def test_two_registrations_finishing_at_once_both_land(user_zoo, mnist_test):
    source = source_pair("lenet5-int8-static")
    compressed = get_recipe(source.entry.compression).load(source.entry.arch, source.files)
    test_set = mnist_test.subset(list(range(64)))
    expected: list[str] = []
    for round_no in range(ROUNDS):
        # Odd rounds ask for the same name twice: the second registration must get its own.
        names = [f"r{round_no}-a", f"r{round_no}-b"] if round_no % 2 == 0 else [f"r{round_no}"] * 2
        start = threading.Barrier(2)
        registered: list[str] = []
        errors: list[BaseException] = []

        def register(name: str) -> None:
            start.wait()
            try:
                entry = register_repaired_pair(source, compressed, name, test_set, {"run_id": name})
                registered.append(entry.id)
            except BaseException as exc:  # reported below, with the round it happened in
                errors.append(exc)

        threads = [threading.Thread(target=register, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, f"round {round_no}: {errors}"
        assert len(set(registered)) == 2, f"round {round_no}: {registered}"
        expected += registered
    in_manifest = [p.id for p in read_manifest(user_zoo).pairs]
    assert sorted(in_manifest) == sorted(expected)
    assert len(expected) == 2 * ROUNDS
    known = {p.id for p in list_pairs()}
    for pair_id in expected:
        assert pair_id in known
        pair = load_pair(pair_id)
        assert pair.predict(mnist_test.images[:4]).compressed.shape == (4, 10)
    assert not list(user_zoo.glob(".manifest.json.*.tmp"))


def test_the_tests_never_touch_the_users_zoo():
    from compd_core.zoo import user_zoo_dir

    assert not user_zoo_dir().is_relative_to(Path.home())
    assert os.environ["COMPD_DB"] != "compd.sqlite"
