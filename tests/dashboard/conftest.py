"""Fixtures for the dashboard's tests: a temporary results database, the app under AppTest, and
one real stored run (a small search on a shipped pair) for the pages that show results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_support import APP, PAIR, StoredRun
from streamlit.testing.v1 import AppTest


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results database (and uploads folder) for the app under test."""
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv("COMPD_DB", str(path))
    monkeypatch.setenv("COMPD_UPLOADS", str(tmp_path / "uploads"))
    return path


@pytest.fixture
def app(db: Path) -> Iterator[AppTest]:
    at = AppTest.from_file(str(APP), default_timeout=120)
    yield at
    from dashboard import jobs

    jobs.stop_all()


@pytest.fixture(scope="session")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> StoredRun:
    """A finished compd search over the 6 lowest-margin test digits of the int8 LeNet-5 pair."""
    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.search.settings import SearchSettings
    from compd_core.store import Store

    path = tmp_path_factory.mktemp("stored") / "results.sqlite"
    spec = CampaignSpec(pair=PAIR, strategy="compd", seeds=6,
                        settings=SearchSettings(max_queries=300), rng_seed=0, seed_order="margin")
    with Store(path) as store:
        summary = run_campaign(spec, store)
    assert summary.found >= 2, "the fixture needs a run with at least two triggers"
    return StoredRun(path, summary.run_id or "")


@pytest.fixture
def run_db(stored_run: StoredRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StoredRun:
    """Point the app at the stored run's database."""
    monkeypatch.setenv("COMPD_DB", str(stored_run.db))
    monkeypatch.setenv("COMPD_UPLOADS", str(tmp_path / "uploads"))
    return stored_run


@pytest.fixture
def run_app(run_db: StoredRun) -> Iterator[AppTest]:
    at = AppTest.from_file(str(APP), default_timeout=120)
    yield at
    from dashboard import jobs

    jobs.stop_all()
