"""Runs: every search stored in the results database; reopen one, or delete it."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from compd_core.data.resolve import names_a_dataset
from compd_core.store import RunRecord, Store
from dashboard import jobs, resources, session
from dashboard.choices import DatasetChoice
from dashboard.job_registry import job_using_run
from dashboard.components.feedback import user_errors
from dashboard.components.run_pair import run_pair_ui

st.title("Runs")
st.caption(f"Every search stored in `{resources.db_path()}`, newest first. A run's results are "
           "saved seed by seed, so a stopped or interrupted run keeps what it found.")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def interrupted_ui(store: Store, run: RunRecord) -> None:
    """A run whose search process ended without closing it (a server stopped or killed):
    say so, and let the user close it or resume it."""
    if names_a_dataset(run.dataset):
        then = ("Resume it here or on the command line with "
                f"`compd search --resume {run.id} --db {resources.db_path()}`, or mark it stopped.")
    else:
        then = (f"Its seeds ({run.dataset}) lived only in the page that searched them, so it "
                "cannot be resumed: mark it stopped, and search them again from the Seeds page.")
    st.warning(
        f"Run `{run.id}` was interrupted: the process searching it ended without closing it "
        f"(a stopped or killed server). It keeps the {run.seeds_done} of {run.seed_count} seeds "
        f"it finished. {then}", icon=":material/pause_circle:")
    choice = run_pair_ui(run)
    resume_col, stop_col = st.columns(2)
    if names_a_dataset(run.dataset) and choice is not None and resume_col.button(
            "Resume", key="resume-interrupted", icon=":material/play_arrow:", width="stretch"):
        pair = resources.new_pair(choice)
        data = resources.dataset(DatasetChoice(spec=run.dataset, label=run.dataset),
                                 pair.input_shape, pair.class_names)
        session.set_current_job(jobs.resume_search(store, run, pair, data))
        st.switch_page("views/search.py")
    if stop_col.button("Mark as stopped", key="stop-interrupted", icon=":material/stop_circle:",
                       width="stretch"):
        store.finish_run(run.id, "stopped", 0.0)
        st.toast(f"Run {run.id} is marked stopped.")
        st.rerun()


store = resources.get_store()
with user_errors():
    runs = store.list_runs()
    if not runs:
        st.info("No runs yet. Start one with **Find a deviation now** or on the Search page.",
                icon=":material/info:")
        st.stop()
    table = pd.DataFrame([
        {"run": r.id, "started": _when(r.created), "pair": r.pair, "strategy": r.strategy,
         "status": "searching now" if jobs.job_for_run(r.id) else r.status,
         "seeds": f"{r.seeds_done} / {r.seed_count}", "found": r.found, "found rate": r.found_rate,
         "queries": r.queries, "seconds": r.wall_seconds, "note": r.note}
        for r in runs
    ])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "found rate": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
        "seconds": st.column_config.NumberColumn(format="%.1f"),
        "queries": st.column_config.NumberColumn(format="localized"),
    })

    by_id = {r.id: r for r in runs}
    ids = list(by_id)
    current = session.current_run()
    chosen = st.selectbox("Run", ids, index=ids.index(current) if current in by_id else 0,
                          format_func=lambda i: f"{i} · {by_id[i].pair} · {by_id[i].strategy}")
    if by_id[chosen].status == "interrupted":
        interrupted_ui(store, by_id[chosen])
    open_col, report_col, delete_col = st.columns(3, vertical_alignment="bottom")
    if open_col.button("Open its triggers", icon=":material/compare:", width="stretch"):
        session.set_current_run(chosen)
        st.switch_page("views/triggers.py")
    if report_col.button("Make its report", icon=":material/description:", width="stretch"):
        session.set_current_run(chosen)
        st.switch_page("views/report.py")
    with delete_col.popover("Delete…", icon=":material/delete:", width="stretch"):
        if job_using_run(chosen) is not None:
            st.warning("A search or repair is still using this run; stop it or let it finish first.")
        else:
            st.markdown(f"Delete run `{chosen}` with all its triggers, selections and repairs? "
                        "This cannot be undone.")
            if st.button("Delete for good", type="primary", key="delete-run"):
                store.delete_run(chosen)
                if current == chosen:
                    session.set_current_run(None)
                st.toast(f"Deleted run {chosen}.")
                st.rerun()
