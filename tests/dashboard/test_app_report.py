"""Report page: the chosen run's self-contained HTML report, previewed and downloadable."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from compd_core.store import Store
from dashboard_support import StoredRun, open_page


def test_report_page_previews_and_offers_the_runs_report(run_app: AppTest, run_db: StoredRun) -> None:
    run_app.session_state["run_id"] = run_db.run_id
    open_page(run_app, "report")
    assert not run_app.exception and not run_app.error
    assert [b.label for b in run_app.download_button] == ["Download the report (HTML)"]
    (frame,) = run_app.get("iframe")
    html = frame.proto.srcdoc
    with Store(run_db.db) as store:
        run = store.get_run(run_db.run_id)
    assert f"Run <code>{run.id}</code>" in html
    assert f"found such an input for <b>{run.found} of {run.seeds_done}</b>" in html
    images = re.findall(r'<img alt="" src="([^"]{0,22})', html)
    assert images == ["data:image/png;base64,"] * (3 * run.found)  # seed, trigger, change
    size = next(c.value for c in run_app.caption if "KiB" in c.value)
    assert size.startswith(f"{len(html.encode()) / 1024:,.0f} KiB")


def test_report_includes_the_profile_measured_on_the_models_page(run_app: AppTest, run_db: StoredRun) -> None:
    from compd_core.search.criterion import Criterion
    from compd_core.search.profile import DeviationProfile, ProfilePoint

    with Store(run_db.db) as store:
        pair = store.get_run(run_db.run_id).pair
    profile = DeviationProfile(pair, "compd", 10, 300, 0, Criterion(),
                               (ProfilePoint(8, 2, 0.2, 10, 2_900),), (), stopped=False)
    run_app.session_state["run_id"] = run_db.run_id
    run_app.session_state[f"profile-{pair}-mnist"] = profile
    open_page(run_app, "report")
    assert not run_app.exception and not run_app.error
    (frame,) = run_app.get("iframe")
    assert "With changes of at most 8/255 per pixel, 20% of 10 test digits (2)" in frame.proto.srcdoc
