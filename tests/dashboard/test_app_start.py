"""Start page: the two-sentence explanation and the one-click demo, against the shipped pair."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

import torch

from compd_core.search.criterion import Criterion
from compd_core.store import Store
from compd_core.zoo import load_pair
from dashboard_support import finish_jobs
from dashboard.demo import (
    DEMO_FOUND,
    DEMO_MARGIN_COMPRESSED,
    DEMO_MARGIN_ORIGINAL,
    DEMO_MAX_LEVELS,
    DEMO_PAIR,
    strongest_closest,
)


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
    assert run.pair == DEMO_PAIR and run.status == "stopped"  # the demo stops after a few triggers
    assert run.note.startswith("one-click demo") and 1 <= len(found) <= DEMO_FOUND + 2
    shown = strongest_closest(found)
    trigger = shown.trigger
    assert all(min(trigger.margins) >= min(r.trigger.margins) - 0.005 for r in found)

    assert app.success[0].value.startswith(f"Found {len(found)} deviation")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Original says"] == str(trigger.label_original)
    assert metrics["Compressed says"] == str(trigger.label_compressed)
    assert metrics["Max change"] == f"{round(trigger.linf * 255)}/255"
    assert metrics["Original's margin"] == f"{trigger.margin_original:.2f}"
    assert trigger.label_original == shown.seed.label != trigger.label_compressed
    # Strong and close, checked by replaying the stored trigger through the pair.
    pred = load_pair(DEMO_PAIR).predict(trigger.image[None])
    m_o, m_c = Criterion().strength(pred.original, pred.compressed, torch.tensor([shown.seed.label]))
    assert float(m_o[0]) >= DEMO_MARGIN_ORIGINAL and float(m_c[0]) >= DEMO_MARGIN_COMPRESSED
    assert round(float((trigger.image - shown.seed.image).abs().max()) * 255) <= DEMO_MAX_LEVELS
    assert len(app.image) >= 3  # seed, trigger, difference
    assert len(app.get("plotly_chart")) == 1  # both models' probabilities
    assert app.query_params["run"] == run.id  # a reload finds the run again
    assert app.query_params["job"]
