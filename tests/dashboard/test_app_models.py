"""Models page: the shipped pairs' cards, the user's own files, and what bad files say."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from compd_core.data import load_mnist
from compd_core.models.evaluate import evaluate_pair
from compd_core.models.loading import load_classifier
from compd_core.models.pair import ModelPair
from compd_core.pair_spec import PairSpec
from compd_core.paths import sample_models_dir
from compd_core.search.profile_task import ProfileTask
from compd_core.zoo import list_pairs, load_pair
from dashboard import profile_jobs
from dashboard_support import PAIR, column_formats, open_page, readable_header

ONNX_ORIGINAL = sample_models_dir() / "lenet5" / "onnx-int8.float.onnx"
ONNX_COMPRESSED = sample_models_dir() / "lenet5" / "onnx-int8.onnx"
PROFILED = "lenet5-prune90"


def _metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_default_pair_cards_show_its_measured_numbers(app: AppTest) -> None:
    open_page(app, "models")
    assert not app.exception and not app.error
    evaluation = evaluate_pair(load_pair(PAIR), load_mnist("test"))
    metrics = _metrics(app)
    accuracies = [v for k, v in metrics if k == "Accuracy"]
    assert accuracies == [f"{evaluation.accuracy_original:.2%}",
                          f"{evaluation.accuracy_compressed:.2%}"]
    assert ("Disagreements", f"{evaluation.disagreements:,}") in metrics
    assert ("Agreement", f"{evaluation.agreement_rate:.2%}") in metrics
    assert len([k for k, _ in metrics if k == "Latency"]) == 2
    # the test images on which the two models already disagree, one picture each (up to 8)
    assert len(app.image) == min(evaluation.disagreements, 8)


def test_choosing_another_sample_pair_changes_the_cards(app: AppTest) -> None:
    open_page(app, "models")
    app.selectbox[0].select("lenet1-prune90").run()
    evaluation = evaluate_pair(load_pair("lenet1-prune90"), load_mnist("test"))
    assert ("Disagreements", f"{evaluation.disagreements:,}") in _metrics(app)
    assert evaluation.disagreements > 100  # 90% pruning of LeNet-1 is far from its original
    # stored dense with its masks, the pruned file is larger than the original's: never "smaller"
    size = next(m for m in app.metric if m.label == "Size" and m.proto.delta)
    assert size.proto.delta.endswith("× larger file") and "smaller" not in size.proto.delta
    assert app.session_state["pair_choice"].zoo_id == "lenet1-prune90"


def _own_files(app: AppTest) -> AppTest:
    open_page(app, "models")
    return app.radio[0].set_value("My own model files").run()


def test_own_onnx_files_by_path_are_measured(app: AppTest) -> None:
    _own_files(app)
    app.text_input(key="original-path").input(str(ONNX_ORIGINAL))
    app.text_input(key="compressed-path").input(str(ONNX_COMPRESSED))
    app.button[0].click().run()  # "Use these models"
    assert not app.exception and not app.error
    pair = ModelPair(load_classifier(ONNX_ORIGINAL, (1, 28, 28)),
                     load_classifier(ONNX_COMPRESSED, (1, 28, 28)))
    evaluation = evaluate_pair(pair, load_mnist("test"))
    accuracies = [v for k, v in _metrics(app) if k == "Accuracy"]
    assert accuracies == [f"{evaluation.accuracy_original:.2%}",
                          f"{evaluation.accuracy_compressed:.2%}"]
    assert app.session_state["pair_choice"].name == "onnx-int8.float.onnx vs onnx-int8.onnx"


def test_own_keras_and_tflite_uploads_are_measured(app: AppTest) -> None:
    keras_file = sample_models_dir() / "tflite" / "lenet5" / "original.keras"
    tflite_file = sample_models_dir() / "tflite" / "lenet5" / "int8.tflite"
    _own_files(app)
    app.file_uploader[0].set_value(("mine.keras", keras_file.read_bytes(), "application/octet-stream"))
    app.file_uploader[1].set_value(("mine.tflite", tflite_file.read_bytes(), "application/octet-stream"))
    app.button[0].click().run()
    assert not app.exception and not app.error
    evaluation = evaluate_pair(load_pair("lenet5-tflite-int8"), load_mnist("test"))
    assert ("Disagreements", f"{evaluation.disagreements:,}") in _metrics(app)
    accuracies = [v for k, v in _metrics(app) if k == "Accuracy"]
    assert accuracies == [f"{evaluation.accuracy_original:.2%}",
                          f"{evaluation.accuracy_compressed:.2%}"]


def test_a_tflite_sample_pair_shows_its_cards(app: AppTest) -> None:
    open_page(app, "models")
    app.selectbox[0].select("lenet1-tflite-int8").run()
    assert not app.exception and not app.error
    evaluation = evaluate_pair(load_pair("lenet1-tflite-int8"), load_mnist("test"))
    assert ("Disagreements", f"{evaluation.disagreements:,}") in _metrics(app)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("broken.onnx", b"this is not a model", "broken.onnx (uploaded) is not a loadable ONNX model"),
    ("weights.pt", None, "holds weights without code"),
])
def test_bad_uploaded_model_files_say_what_is_wrong(app: AppTest, tmp_path: Path, name: str,
                                                    content: bytes | None, expected: str) -> None:
    if content is None:  # a plain state dict: weights without the code that uses them
        path = tmp_path / name
        torch.save({"weight": torch.zeros(3)}, path)
        content = path.read_bytes()
    _own_files(app)
    app.file_uploader[0].set_value((name, content, "application/octet-stream"))
    app.file_uploader[1].set_value(("good.onnx", ONNX_COMPRESSED.read_bytes(),
                                    "application/octet-stream"))
    app.button[0].click().run()
    assert not app.exception
    assert len(app.error) == 1 and expected in app.error[0].value
    assert app.session_state["pair_choice"].zoo_id == PAIR  # the working pair is kept


def test_missing_path_and_missing_model_are_explained(app: AppTest) -> None:
    _own_files(app)
    app.text_input(key="original-path").input("/no/such/original.onnx")
    app.text_input(key="compressed-path").input(str(ONNX_COMPRESSED))
    app.button[0].click().run()
    assert "/no/such/original.onnx does not exist" in app.error[0].value
    app.text_input(key="original-path").input("")
    app.button[0].click().run()
    assert ("give the original model: upload its file (at most 200 MB; the browser refuses a "
            "larger one) or type its path on this machine") in app.error[0].value


@pytest.fixture
def profiles() -> Iterator[None]:
    """Profile jobs started by a test end with it."""
    yield
    profile_jobs.stop_all()


@pytest.mark.parametrize("margins", [(0.0, 0.0), (0.2, 0.0)], ids=["strict", "sure-original"])
def test_profile_button_measures_and_draws_the_deviation_profile(app: AppTest, profiles, margins) -> None:
    """On the pruned pair: its search has no boundary probes to run at every budget, so the
    page's work is measured in seconds (the probes have tests of their own)."""
    open_page(app, "models")
    app.selectbox[0].select(PROFILED).run()
    assert not app.get("plotly_chart")  # nothing is measured before the click
    app.number_input(key="profile-seeds").set_value(5)
    app.number_input(key="profile-queries").set_value(100)
    app.number_input(key="profile-margin-original").set_value(margins[0])
    app.number_input(key="profile-margin-compressed").set_value(margins[1])
    next(b for b in app.button if b.label == "Measure the profile").click().run()
    assert not app.exception and not app.error
    job = profile_jobs.get_job(app.session_state["profile_job_id"])
    assert job is not None and job.pair == PROFILED  # a background job: the page stays usable
    profile_jobs.join_all(120)
    app.run()
    assert not app.exception and not app.error
    assert job.status == "finished" and job.outcome is not None and job.outcome.kind == "profile"
    profile = app.session_state[f"profile-{PROFILED}-mnist"]
    assert profile is job.profile
    assert profile.seeds == 5 and profile.budgets == (2, 4, 8, 16, 32, 64, 128)
    criterion = profile.criterion
    assert (criterion.min_margin_original, criterion.min_margin_compressed) == margins
    solved = [p.solved for p in profile.points]
    assert solved == sorted(solved)
    assert job.latest is not None and job.latest.kind == "profile"  # progress reached the job
    assert len(app.get("plotly_chart")) == 1
    assert any(m.value == f"**{profile.sentence()}**" for m in app.markdown)
    assert ("at least 0.2)" in profile.sentence()) == bool(margins[0])  # it says what it counted
    # The same numbers as `compd profile` on the same seeds (one task behind both).
    again = ProfileTask(PairSpec.zoo(PROFILED), "mnist", 5, (2, 4, 8, 16, 32, 64, 128), 100,
                        min_margin_original=margins[0], min_margin_compressed=margins[1])(
        lambda event: None, threading.Event())
    assert [(p.budget, p.solved, p.queries) for p in again.points] == [
        (p.budget, p.solved, p.queries) for p in profile.points]


def test_stop_ends_a_profile_after_the_current_seed_and_keeps_its_finished_budgets(
        app: AppTest, profiles) -> None:
    open_page(app, "models")
    app.number_input(key="profile-seeds").set_value(200)
    app.number_input(key="profile-queries").set_value(5_000)
    next(b for b in app.button if b.label == "Measure the profile").click().run()
    job = profile_jobs.get_job(app.session_state["profile_job_id"])
    assert job is not None and job.running
    assert any(m.value.startswith("**Measuring the deviation profile**") for m in app.markdown)
    app.button(key=f"stop-profile-{job.id}").click().run()
    assert job.wait(60)
    app.run()
    assert not app.exception
    assert job.status == "stopped" and job.profile is not None and job.profile.stopped
    assert job.outcome is not None and job.outcome.stopped
    assert len(job.profile.points) < 7
    assert app.warning[0].value.startswith(f"Stopped: {len(job.profile.points)} of 7 budgets")


def test_all_pairs_table_has_readable_headers_and_formatted_numbers(app: AppTest) -> None:
    open_page(app, "models")
    table = app.dataframe[0]
    headers = list(table.value.columns)
    assert all(readable_header(h) for h in headers), headers
    assert "Accuracy (original)" in headers and "Accuracy (compressed)" in headers
    formats = column_formats(table)
    assert formats["Accuracy (original)"] == formats["Accuracy (compressed)"] == "percent"
    rows = table.value.set_index("Pair")
    entry = next(e for e in list_pairs() if e.id == PAIR)
    assert rows.loc[PAIR, "Accuracy (original)"] == entry.accuracy_original
