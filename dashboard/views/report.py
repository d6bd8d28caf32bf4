"""Report: one self-contained HTML file for a run, to read here, download and send on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from compd_core.report import build_report, report_filename
from dashboard import resources, session
from dashboard.components.feedback import user_errors
from dashboard.components.run_pair import run_pair_ui

if TYPE_CHECKING:
    from compd_core.search.profile import DeviationProfile

st.title("Report")
st.caption("One HTML file with everything inside (images, charts and a plain-language summary): "
           "it opens in any browser, offline, and can be sent by mail.")


@st.cache_data(show_spinner="Writing the report…", max_entries=16)
def report_html(db: str, run_id: str, version: tuple[float, int], names: tuple[str, ...],
                profile_key: tuple | None, _profile: DeviationProfile | None) -> str:
    """Cached per database and run; ``version`` (last write, seeds done) makes a run that is
    still growing get a new report; ``profile_key`` names the profile included, if any."""
    return build_report(resources.get_store(), run_id, class_names=names, profile=_profile)


def measured_profile(pair: str) -> DeviationProfile | None:
    """The deviation profile of ``pair`` this session measured on the Models page, if any."""
    return next((v for k, v in st.session_state.items() if str(k).startswith(f"profile-{pair}-")), None)


store = resources.get_store()
with user_errors():
    runs = {r.id: r for r in store.list_runs()}
    if not runs:
        st.info("No runs yet. Start one with **Find a deviation now** or on the Search page.",
                icon=":material/info:")
        st.stop()
    ids = list(runs)
    current = session.current_run()
    chosen = st.selectbox("Run", ids, index=ids.index(current) if current in runs else 0,
                          format_func=lambda i: f"{i} · {runs[i].pair} · {runs[i].strategy} · "
                                                f"{runs[i].found} of {runs[i].seeds_done} found")
    run = runs[chosen]
    choice = run_pair_ui(run)
    trigger = next((r.trigger for r in store.load_results(chosen, details=False) if r.trigger), None)
    names = resources.class_names_for(choice, 10 if trigger is None else trigger.probs_original.numel())
    profile = measured_profile(run.pair)
    profile_key = None if profile is None else (profile.pair, profile.seeds, profile.max_queries,
                                                profile.budgets, profile.rng_seed)
    html = report_html(str(resources.db_path()), chosen, (run.updated, run.seeds_done), names,
                       profile_key, profile)
    if profile is None:
        st.caption("Measure the pair's deviation profile on the Models page to include it here.")
    st.download_button("Download the report (HTML)", html, file_name=report_filename(chosen),
                       mime="text/html", type="primary", icon=":material/download:",
                       on_click="ignore")
    st.caption(f"{len(html.encode()) / 1024:,.0f} KiB · preview:")
    st.iframe(html, height=900)
