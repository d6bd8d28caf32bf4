"""Characterize page: a background characterization with its heatmap, ROC curves, pair comparison
and disagreeing examples, Stop, and the lowest-margin inputs handed to the Search page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from compd_core.characterize import CORRUPTIONS as CORRUPTIONS_ALL
from compd_core.characterize import characterize, lowest_margin_indices
from compd_core.data import load_mnist
from compd_core.models.evaluate import evaluate_pair
from compd_core.zoo import load_pair
from dashboard import characterize_jobs
from dashboard_support import PAIR, column_formats, open_page, progress_line, readable_header

CORRUPTIONS = ["gaussian_noise", "rotate"]
SEVERITIES = [1, 5]


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    yield
    characterize_jobs.stop_all()


def _finish() -> None:
    characterize_jobs.join_all(120)


def _start(at: AppTest, corruptions: list[str], severities: list[int],
           compare: list[str] = ()) -> AppTest:
    boxes = {m.label: m for m in at.multiselect}
    boxes["Corruptions"].set_value(corruptions)
    boxes["Severities"].set_value(severities)
    boxes["Compare with these pairs"].set_value(list(compare))
    return next(b for b in at.button if b.label == "Characterize").click().run()


def test_characterization_shows_heatmap_roc_comparison_and_examples(app: AppTest) -> None:
    open_page(app, "characterize")
    assert not app.exception and not app.error
    _start(app, CORRUPTIONS, SEVERITIES, compare=["lenet5-prune90"])
    _finish()
    app.run()
    assert not app.exception and not app.error
    expected = characterize(load_pair(PAIR), load_mnist("test"), CORRUPTIONS, SEVERITIES, 0)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Images"] == f"{expected.clean.n:,}"
    assert metrics["Clean disagreement rate"] == f"{expected.clean_disagreement_rate:.2%}"
    assert metrics["Shifted disagreement rate"] == f"{expected.shifted_disagreement_rate:.2%}"
    assert metrics["Best indicator"] == expected.best_indicator
    assert expected.shifted_disagreement_rate > expected.clean_disagreement_rate
    charts = app.get("plotly_chart")
    assert len(charts) == 3  # heatmap, AUROC bars, the pairs side by side
    heatmap, aurocs, comparison = (json.loads(chart.proto.spec) for chart in charts)
    assert heatmap["data"][0]["type"] == "heatmap"
    assert "lenet5-prune90" in json.dumps(comparison)
    # one bar per indicator and condition, for the compressed model (the default)
    assert [bars["type"] for bars in aurocs["data"]] == ["bar", "bar"]
    for bars, condition in zip(aurocs["data"], ("clean", "shifted")):
        expected_values = [expected.auroc[condition][name]["compressed"] for name in bars["x"]]
        assert bars["y"] == pytest.approx(expected_values)
    table = app.dataframe[0]
    assert list(table.value["Pair"]) == [PAIR, "lenet5-prune90"]
    assert all(readable_header(h) for h in table.value.columns), list(table.value.columns)
    assert column_formats(table)["Disagree (clean)"] == "percent"
    # the worst cell is chosen first, and every example shown really disagrees once corrupted
    worst = max(expected.cells, key=lambda c: c.rate)
    assert app.selectbox[0].value == 0
    assert app.selectbox[0].format_func(0).startswith(f"{worst.corruption}, severity {worst.severity}")
    corrupted = [c for image in app.image for c in image.captions if c.startswith("corrupted: ")]
    assert len(corrupted) == 8
    assert all(c.split(": ")[1].split(" vs ")[0] != c.split(" vs ")[1] for c in corrupted)
    # the settings that ran are still chosen afterwards, "Compare with" included
    boxes = {m.label: m.value for m in app.multiselect}
    assert boxes["Compare with these pairs"] == ["lenet5-prune90"]
    assert boxes["Corruptions"] == CORRUPTIONS and boxes["Severities"] == SEVERITIES


def test_stop_ends_a_full_characterization_early(app: AppTest) -> None:
    open_page(app, "characterize")
    _start(app, list(CORRUPTIONS_ALL), [1, 2, 3, 4, 5])  # the full 18 x 5 grid
    assert any(b.label == "Stop" for b in app.button)  # the live panel is up
    assert re.fullmatch(r"(starting|\d+ of 91 cells · lenet5-int8-static: .+) · \d+\.\d s",
                        progress_line(app)), progress_line(app)
    next(b for b in app.button if b.label == "Stop").click().run()
    _finish()
    job = characterize_jobs.get_job(app.session_state["characterize_job_id"])
    assert job is not None and job.status == "stopped"
    report = job.comparison.reports[0]
    assert not report.complete and len(report.cells) < 90
    app.run()
    assert not app.exception
    assert "Stopped early" in app.warning[0].value


def test_no_severity_is_a_message_not_a_traceback(app: AppTest) -> None:
    open_page(app, "characterize")
    _start(app, CORRUPTIONS, [])
    _finish()
    app.run()
    assert not app.exception
    assert "severities must be whole numbers from 1 to 5" in app.error[0].value


def test_lowest_margin_inputs_become_the_search_pages_seeds(app: AppTest) -> None:
    open_page(app, "characterize")
    next(n for n in app.number_input if n.label == "How many seeds").set_value(5).run()
    next(b for b in app.button if b.label == "Use the 5 lowest-margin inputs as seeds").click().run()
    assert not app.exception
    pair, test = load_pair(PAIR), load_mnist("test")
    evaluation = evaluate_pair(pair, test)
    ordered = lowest_margin_indices(pair, test, len(test)).tolist()
    eligible = [p for p in ordered if int(evaluation.pred_original[p]) == int(test.labels[p])]
    assert app.session_state["picked_positions"] == set(eligible[:5])
    assert app.title[0].value == "Search"  # handed to the Search page
    assert "My 5 picked or uploaded seeds" in app.radio[0].options


def test_roc_curves_are_one_per_indicator_for_the_chosen_model(app: AppTest) -> None:
    open_page(app, "characterize")
    _start(app, CORRUPTIONS, SEVERITIES)
    _finish()
    app.run()
    expected = characterize(load_pair(PAIR), load_mnist("test"), CORRUPTIONS, SEVERITIES, 0)
    next(r for r in app.radio if r.label == "Indicators computed on").set_value("original").run()
    next(t for t in app.toggle if t.label == "Show the ROC curves").set_value(True).run()
    next(r for r in app.radio if r.label == "Data").set_value("shifted").run()
    assert not app.exception
    aurocs, curves = (json.loads(c.proto.spec) for c in app.get("plotly_chart")[1:3])
    assert aurocs["data"][0]["y"][0] == pytest.approx(
        expected.auroc["clean"][aurocs["data"][0]["x"][0]]["original"])
    names = [trace["name"] for trace in curves["data"]]
    assert len(names) == 5 and names[-1] == "chance"  # four indicators and the diagonal
    for name in names[:-1]:
        indicator = name.split(" (")[0]
        assert name == f"{indicator} (AUROC {expected.auroc['shifted'][indicator]['original']:.3f})"
