"""Runs page: the stored history; reopening a run on the Triggers page; deleting one."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from dashboard_support import APP, PAIR, StoredRun, open_page


def test_history_lists_the_stored_run_and_reopens_it(run_app: AppTest, run_db: StoredRun) -> None:
    open_page(run_app, "runs")
    assert not run_app.exception and not run_app.error
    with Store(run_db.db) as store:
        runs = store.list_runs()
    table = run_app.dataframe[0].value
    assert table["run"].tolist() == [r.id for r in runs]
    row = table.set_index("run").loc[run_db.run_id]
    record = next(r for r in runs if r.id == run_db.run_id)
    assert row["found"] == record.found and row["queries"] == record.queries
    assert row["seeds"] == f"{record.seeds_done} / {record.seed_count}"

    run_app.selectbox[0].select(run_db.run_id).run()
    next(b for b in run_app.button if b.label == "Open its triggers").click().run()
    assert run_app.title[0].value == "Triggers"
    assert run_app.session_state["run_id"] == run_db.run_id


def test_a_run_can_be_deleted(db) -> None:
    spec = CampaignSpec(pair=PAIR, strategy="compd", seeds=2,
                        settings=SearchSettings(max_queries=60), rng_seed=1)
    with Store(db) as store:
        keep = run_campaign(spec, store).run_id
        gone = run_campaign(spec, store).run_id
    at = AppTest.from_file(str(APP), default_timeout=120)
    open_page(at, "runs")
    at.selectbox[0].select(gone).run()
    at.button(key="delete-run").click().run()
    assert not at.exception
    with Store(db) as store:
        assert [r.id for r in store.list_runs()] == [keep]
    assert at.dataframe[0].value["run"].tolist() == [keep]


def test_no_runs_yet_says_how_to_start_one(app: AppTest) -> None:
    open_page(app, "runs")
    assert not app.exception
    assert "No runs yet" in app.info[0].value
