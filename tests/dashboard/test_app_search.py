"""Search page: a background search with live progress, hand-picked seeds, Stop, and two
sessions searching at the same time."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from compd_core.data import load_mnist
from compd_core.models.evaluate import evaluate_pair
from compd_core.store import Store
from compd_core.zoo import load_pair
from dashboard import jobs
from dashboard.choices import PairChoice
from dashboard_support import APP, PAIR, finish_jobs, open_page, progress_line


def _set(at: AppTest, label: str, value) -> None:
    next(w for w in at.number_input if w.label == label).set_value(value)


def _start(at: AppTest, seeds: int, budget: int) -> AppTest:
    _set(at, "Number of seeds", seeds)
    _set(at, "Query budget per seed", budget)
    return next(b for b in at.button if b.label == "Start search").click().run()


def test_search_runs_in_the_background_and_shows_its_outcome(app: AppTest, db) -> None:
    open_page(app, "search")
    assert not app.exception
    _start(app, seeds=3, budget=120)
    job = jobs.get_job(app.session_state["job_id"])
    assert job is not None and job.spec.seeds == 3 and job.spec.settings.max_queries == 120
    # close by default: the form starts at the criterion's default distance budget
    assert job.spec.settings.criterion.max_linf == pytest.approx(64 / 255)
    finish_jobs()
    app.run()
    assert not app.exception and not app.error
    assert app.subheader[0].value == "The last search finished"
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.id == job.run_id and run.status == "finished" and run.seeds_done == 3
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Seeds searched"] == "3 / 3"
    assert metrics["Deviations found"] == str(run.found)
    assert metrics["Queries"] == f"{run.queries:,}"
    assert len(app.get("plotly_chart")) == 2  # fitness curves and operator use
    # the form remembers what was asked for
    assert next(w for w in app.number_input if w.label == "Number of seeds").value == 3


def test_stop_ends_the_search_and_keeps_what_it_found(app: AppTest, db) -> None:
    open_page(app, "search")
    _start(app, seeds=60, budget=50_000)
    assert any(b.label == "Stop" for b in app.button)  # the live panel is up
    assert re.fullmatch(r"(starting|\d+ of 60 seeds · .+) · \d+\.\d s", progress_line(app)), \
        progress_line(app)
    next(b for b in app.button if b.label == "Stop").click().run()
    finish_jobs()
    job = jobs.get_job(app.session_state["job_id"])
    assert job is not None and job.status == "stopped" and job.stop_seconds is not None
    app.run()
    assert app.subheader[0].value == "The last search was stopped"
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.status == "stopped" and run.seeds_done == job.progress().seeds_done


def test_hand_picked_seeds_are_searched_and_unsearchable_ones_left_out(app: AppTest, db) -> None:
    evaluation = evaluate_pair(load_pair(PAIR), load_mnist("test"))
    disagreeing = int(evaluation.disagreement_indices[0])
    agreeing = [i for i in range(20) if bool(evaluation.pred_original[i] == evaluation.labels[i])
                and bool(evaluation.pred_original[i] == evaluation.pred_compressed[i])][:3]
    app.session_state["picked_positions"] = {disagreeing, *agreeing}
    open_page(app, "search")
    app.radio[0].set_value("My 4 picked or uploaded seeds").run()
    _set(app, "Query budget per seed", 200)
    next(b for b in app.button if b.label == "Start search").click().run()
    assert any(f"image #{disagreeing}: the models already disagree" in w.value
               for w in app.warning)
    finish_jobs()
    with Store(db) as store:
        (run,) = store.list_runs()
        results = store.load_results(run.id, details=False)
    assert run.seed_count == 3 and run.dataset == "MNIST test split: 3 hand-picked"
    assert sorted(r.seed.index for r in results) == sorted(agreeing)


def test_no_searchable_pick_is_a_message_not_a_traceback(app: AppTest) -> None:
    evaluation = evaluate_pair(load_pair(PAIR), load_mnist("test"))
    app.session_state["picked_positions"] = {int(evaluation.disagreement_indices[0])}
    open_page(app, "search")
    app.radio[0].set_value("My 1 picked or uploaded seeds").run()
    next(b for b in app.button if b.label == "Start search").click().run()
    assert not app.exception
    assert "none of your seeds can be searched" in app.error[0].value


def test_two_sessions_search_independently(db) -> None:
    first = AppTest.from_file(str(APP), default_timeout=120)
    second = AppTest.from_file(str(APP), default_timeout=120)
    try:
        for at, seeds in ((first, 2), (second, 3)):
            open_page(at, "search")
            _start(at, seeds=seeds, budget=300)
        one, two = (jobs.get_job(at.session_state["job_id"]) for at in (first, second))
        assert one is not None and two is not None and one.run_id != two.run_id
        finish_jobs()
        with Store(db) as store:
            done = {r.id: r.seeds_done for r in store.list_runs()}
        assert done == {one.run_id: 2, two.run_id: 3}
        for at, job in ((first, one), (second, two)):
            at.run()
            assert job.run_id in at.caption[1].value  # each session shows its own run
    finally:
        jobs.stop_all()


def test_a_shared_job_link_lets_others_watch_but_not_stop(app: AppTest, db) -> None:
    open_page(app, "search")
    _start(app, seeds=60, budget=50_000)
    job = jobs.get_job(app.session_state["job_id"])
    assert any(b.label == "Stop" for b in app.button)  # its owner may stop it
    jobs._REGISTRY.set_owner(job.id, "browser-someone-else")  # as seen from another browser
    app.run()
    assert not app.exception
    assert not any(b.label == "Stop" for b in app.button)
    assert any("only there can it be stopped" in c.value for c in app.caption)
    assert job.running and not job.stop_event.is_set()
    job.request_stop()
    finish_jobs()


def test_margins_and_distance_budget_reach_the_searchs_criterion(app: AppTest, db) -> None:
    open_page(app, "search")
    _set(app, "Original's margin at least", 0.5)
    _set(app, "Compressed model's margin at least", 0.2)
    _set(app, "Largest L2 distance (0 = no limit)", 3.0)
    _start(app, seeds=2, budget=50)
    job = jobs.get_job(app.session_state["job_id"])
    criterion = job.spec.settings.criterion
    assert (criterion.min_margin_original, criterion.min_margin_compressed, criterion.max_l2) == (0.5, 0.2, 3.0)
    finish_jobs()
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.settings.criterion == criterion  # stored with the run


def test_picked_seeds_are_searched_by_default(app: AppTest, db) -> None:
    app.session_state["picked_positions"] = {0, 1}
    open_page(app, "search")
    assert app.radio[0].value == "My 2 picked or uploaded seeds"
    _set(app, "Query budget per seed", 50)
    next(b for b in app.button if b.label == "Start search").click().run()
    finish_jobs()
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.dataset.endswith("hand-picked")


def test_settings_are_one_form_that_only_start_submits(app: AppTest, db) -> None:
    open_page(app, "search")
    start = next(b for b in app.button if b.label == "Start search")
    widgets = [*app.number_input, *app.selectbox, *app.radio, *app.slider]
    assert start.form_id and {w.form_id for w in widgets} == {start.form_id}
    _set(app, "Number of seeds", 2)
    app.run()
    with Store(db) as store:
        assert store.list_runs() == []


def test_a_reload_mid_search_keeps_the_jobs_pair_and_picks(app: AppTest, db) -> None:
    other = "lenet1-int8-static"
    app.session_state["pair_choice"] = PairChoice(zoo_id=other)
    app.session_state["picked_positions"] = {0, 1, 2}
    open_page(app, "search")
    _set(app, "Query budget per seed", 50_000)
    next(b for b in app.button if b.label == "Start search").click().run()
    job = jobs.get_job(app.session_state["job_id"])
    assert job is not None and job.spec.pair == other
    reloaded = AppTest.from_file(str(APP), default_timeout=120)  # a new session on the job's link
    reloaded.query_params["job"] = job.id
    open_page(reloaded, "search")
    assert not reloaded.exception
    assert reloaded.caption[0].value.startswith(f"Pair **{other}**")
    assert reloaded.session_state["pair_choice"] == PairChoice(zoo_id=other)
    assert reloaded.session_state["picked_positions"] == {0, 1, 2}
    job.request_stop()
    finish_jobs()
