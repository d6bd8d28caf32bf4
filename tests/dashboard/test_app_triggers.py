"""Triggers page: the run's gallery, the side-by-side view, the chain replay, a selection saved
in the store, and its exports."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from compd_core.store import Store
from compd_core.strength import margin_text, summarize_strength
from compd_core.zoo import load_pair
from dashboard.downloads import selection_downloads
from dashboard_support import StoredRun, open_page


@pytest.fixture
def found(run_db: StoredRun):
    with Store(run_db.db) as store:
        store.set_selection(run_db.run_id, [])
        yield [r for r in store.load_results(run_db.run_id) if r.found]
        store.set_selection(run_db.run_id, [])


def test_gallery_and_detail_show_the_runs_triggers(run_app: AppTest, run_db: StoredRun, found) -> None:
    open_page(run_app, "triggers")
    assert not run_app.exception and not run_app.error
    metrics = {m.label: m.value for m in run_app.metric}
    assert metrics["Triggers found"] == str(len(found))
    first = found[0].trigger
    assert metrics["Original says"] == str(first.label_original)
    assert metrics["Compressed says"] == str(first.label_compressed)
    captions = [c for image in run_app.image for c in image.captions]
    for result in found:  # every trigger has a thumbnail labelled with the two answers
        t = result.trigger
        m_o, m_c = t.margins
        assert f"{t.label_original} → {t.label_compressed} · #{result.seed.index} · {margin_text(m_o)}/{margin_text(m_c)}" in captions
    assert len(run_app.get("plotly_chart")) == 2  # probabilities, and the replay's curves
    assert metrics["Original's margin"] == margin_text(first.margin_original)
    assert metrics["Compressed model's margin"] == margin_text(first.margin_compressed)
    assert metrics["Median margin, compressed"] == f"{np.median([r.trigger.margin_compressed for r in found]):.2f}"
    # an int8 static pair deviates only where the original hesitates, and the page says so
    caveat = summarize_strength([r.trigger for r in found]).caveat()
    assert caveat is not None and caveat in [box.value for box in run_app.info]


def test_gallery_sorts_strongest_and_closest_first(run_app: AppTest, found) -> None:
    open_page(run_app, "triggers")
    run_app.radio(key="trigger-order").set_value("strongest first (smaller of the two margins)").run()
    thumbs = [c for image in run_app.image for c in image.captions if " · #" in c]
    strongest = sorted(found, key=lambda r: -min(r.trigger.margins))
    assert [t.split(" · ")[1] for t in thumbs] == [f"#{r.seed.index}" for r in strongest]
    # The detail view follows the order: the strongest trigger is inspected first.
    metrics = {m.label: m.value for m in run_app.metric}
    assert metrics["Original's margin"] == margin_text(strongest[0].trigger.margin_original)
    run_app.radio(key="trigger-order").set_value("closest first (L2 to the seed)").run()
    thumbs = [c for image in run_app.image for c in image.captions if " · #" in c]
    closest = sorted(found, key=lambda r: r.trigger.l2)
    assert [t.split(" · ")[1] for t in thumbs] == [f"#{r.seed.index}" for r in closest]


def test_inspect_switches_the_detail_to_another_trigger(run_app: AppTest, found) -> None:
    open_page(run_app, "triggers")
    run_id = run_app.session_state["run_id"]
    run_app.button(key=f"inspect-{run_id}-{found[1].seed.position}").click().run()
    metrics = {m.label: m.value for m in run_app.metric}
    assert metrics["Compressed says"] == str(found[1].trigger.label_compressed)
    assert any(c.startswith(f"Seed (image #{found[1].seed.index})")
               for image in run_app.image for c in image.captions)


def test_replay_steps_through_the_chain_with_both_models_answers(run_app: AppTest, found) -> None:
    open_page(run_app, "triggers")
    result = found[0]
    slider = run_app.slider[0]
    assert slider.value == slider.max >= len(result.chain)
    slider.set_value(0).run()
    metrics = {m.label: m.value for m in run_app.metric}
    assert metrics["Original model says"] == metrics["Compressed model says"] == str(result.seed.label)
    assert any(c == "Step 0: the seed" for image in run_app.image for c in image.captions)
    # the answers shown at the last step are the pair's own answers to the trigger
    run_app.slider[0].set_value(slider.max).run()
    prediction = load_pair("lenet5-int8-static").predict(result.trigger.image[None])
    metrics = {m.label: m.value for m in run_app.metric}
    assert metrics["Compressed model says"] == str(int(prediction.labels_compressed[0]))
    assert metrics["Original model says"] == str(result.seed.label)
    assert not run_app.warning  # the models still answer the trigger as the search saw it


def test_selection_is_saved_in_the_store_and_exported(run_app: AppTest, run_db: StoredRun, found) -> None:
    open_page(run_app, "triggers")
    assert not run_app.download_button  # nothing selected, nothing to download
    position = found[0].seed.position
    next(c for c in run_app.checkbox if c.label == "for repair").check().run()
    with Store(run_db.db) as store:
        assert store.get_selection(run_db.run_id) == [position]
    assert [d.label for d in run_app.download_button] == [
        "PNG images (zip)", "Arrays (NPZ)", "Table (CSV)"]

    next(b for b in run_app.button if b.label == "Select all").click().run()
    with Store(run_db.db) as store:
        assert store.get_selection(run_db.run_id) == sorted(r.seed.position for r in found)


def test_downloads_hold_the_selected_triggers(run_db: StoredRun, found) -> None:
    chosen = [found[1].seed.position, found[0].seed.position]
    with Store(run_db.db) as store:
        downloads = {d.label: d for d in selection_downloads(store, run_db.run_id, chosen)}
    zipped = zipfile.ZipFile(io.BytesIO(downloads["PNG images (zip)"].data))
    for p in chosen:
        assert {f"seed_{p}.png", f"trigger_{p}.png", f"diff_{p}.png"} <= set(zipped.namelist())
    arrays = np.load(io.BytesIO(downloads["Arrays (NPZ)"].data))
    assert arrays["x"].shape == (2, 1, 28, 28)
    assert arrays["labels"].tolist() == [found[1].seed.label, found[0].seed.label]
    expected = np.round(found[1].trigger.image.numpy() * 255).astype(np.uint8)
    assert np.array_equal(arrays["x"][0], expected)  # the exact trigger, pixel for pixel
    table = pd.read_csv(io.StringIO(downloads["Table (CSV)"].data.decode()))
    assert sorted(table["position"]) == sorted(chosen)
    assert table["label_compressed"].tolist() == [
        r.trigger.label_compressed for r in sorted(found[:2], key=lambda r: r.seed.position)]
