"""Start page: the two-sentence explanation and the one-click demo, against the shipped pair."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from compd_core.store import Store
from dashboard_support import PAIR, finish_jobs


def test_start_explains_deviations_and_offers_the_demo(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert "compression deviation" in app.markdown[0].value
    assert [b.label for b in app.button] == ["Find a deviation now"]
    assert not app.get("plotly_chart")  # nothing runs before the click


def test_demo_finds_a_deviation_and_shows_it_side_by_side(app: AppTest, db) -> None:
    app.run()
    app.button[0].click().run()
    finish_jobs()
    app.run()
    assert not app.exception and not app.error

    with Store(db) as store:
        (run,) = store.list_runs()
        found = [r for r in store.load_results(run.id) if r.found]
    assert run.pair == PAIR and run.status == "stopped"  # the demo stops at its first trigger
    assert run.note.startswith("one-click demo") and len(found) >= 1
    trigger = found[0].trigger

    assert app.success[0].value.startswith("Found a deviation")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Original says"] == str(trigger.label_original)
    assert metrics["Compressed says"] == str(trigger.label_compressed)
    assert metrics["Max pixel change"] == f"{trigger.linf * 255:.0f}/255"
    assert trigger.label_original == found[0].seed.label != trigger.label_compressed
    assert len(app.image) >= 3  # seed, trigger, difference
    assert len(app.get("plotly_chart")) == 1  # both models' probabilities
    assert app.query_params["run"] == run.id  # a reload finds the run again
    assert app.query_params["job"]
