"""Repair page: the hand-picked selection, a repair in the background with its verdict and
before/after account, nothing registered without the user's say, Stop, the refusal of a
black-box pair, and the repaired pair handed to the Search page."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.zoo import load_pair
from dashboard import repair_jobs, resources
from dashboard_support import PAIR, open_page, progress_line, tensors_in


@pytest.fixture
def user_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Repairs register their pairs here, never in the home directory."""
    path = tmp_path / "zoo"
    monkeypatch.setenv("COMPD_USER_ZOO", str(path))
    yield path
    repair_jobs.stop_all()
    resources.zoo_entries.clear()  # forget pairs of this temporary zoo


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small real search on the int8 LeNet-5 pair, with four of its triggers hand-picked:
    searched once, copied into each test's database."""
    path = tmp_path_factory.mktemp("searched") / "results.sqlite"
    spec = CampaignSpec(pair=PAIR, strategy="compd", seeds=8,
                        settings=SearchSettings(max_queries=3000))
    with Store(path) as store:
        summary = run_campaign(spec, store)
        found = [r.seed.position for r in store.load_results(summary.run_id or "", details=False)
                 if r.found]
        assert len(found) >= 6, "the test needs a run with at least six triggers"
        store.set_selection(summary.run_id or "", found[:4])
    return path, summary.run_id or ""


@pytest.fixture
def run_id(db: Path, user_zoo: Path, searched: tuple[Path, str]) -> str:
    """The searched run, in this test's own database (closed, so one file holds it all)."""
    shutil.copyfile(searched[0], db)
    return searched[1]


def _set(at: AppTest, label: str, value) -> None:
    next(w for w in at.number_input if w.label == label).set_value(value)


def _finish() -> None:
    repair_jobs.join_all(180)


def test_repair_shows_live_curves_and_the_before_after_account(
    app: AppTest, db: Path, run_id: str, user_zoo: Path
) -> None:
    open_page(app, "repair")
    assert not app.exception and not app.error
    assert any(m.value.startswith("**4 hand-picked triggers**") for m in app.markdown)
    assert sum(len(i.captions) for i in app.image) == 4
    assert next(w for w in app.number_input if w.label == "Epochs").value == 16
    _set(app, "Epochs", 2)
    _set(app, "Variants per trigger", 2)
    _set(app, "Training digits to mine", 16)
    _set(app, "Re-search queries per seed", 200)
    (rule,) = [r for r in app.radio if r.label == "Epoch kept"]
    assert rule.value == "no-rise"  # the default never keeps an epoch that adds disagreements
    assert next(w for w in app.number_input if w.label == "Learning rate").value == 5e-4
    assert next(c for c in app.checkbox if c.label == "Narrow the int8 head's output grid").value
    (rank,) = [r for r in app.radio if r.label == "Among the epochs it may keep, prefer"]
    assert rank.value == "triggers" and not rank.disabled
    rule.set_value("last").run()  # a trained model, to register below
    (rank,) = [r for r in app.radio if r.label == "Among the epochs it may keep, prefer"]
    assert rank.disabled  # the last epoch is kept: nothing is ranked
    next(b for b in app.button if b.label == "Start repair").click().run()
    assert not app.exception
    job = repair_jobs.get_job(app.session_state["repair_job_id"])
    assert job is not None and job.settings.epochs == 2 and job.settings.research_max_queries == 200
    assert job.settings.checkpoint == "last"
    assert job.settings.lr is None  # left at the default: the compression's own rate
    _finish()
    app.run()
    assert not app.exception  # a worse verdict is an error box, checked below
    report = job.report
    assert job.status == "finished" and report is not None and report.triggers == 4
    assert [e.epoch for e in job.progress().epochs] == [0, 1, 2]  # 0: before training
    assert report.best_epoch == 2
    # a finished repair keeps its numbers; of its work only the model the user may register
    held = tensors_in(job)
    assert held and all(path.startswith("job.repair._repaired") for path in held), held
    assert job.outcome is not None and job.outcome.kind == "repair" and not job.outcome.stopped
    assert job.outcome.summary["triggers"] == 4
    assert app.subheader[0].value == "The last repair finished"
    caption = next(c.value for c in app.caption if "epoch 2 of 2 kept" in c.value)
    assert "; the int8 head's output step 0.344 -> " in caption and "(learning rate 0.0005) ·" in caption
    assert job.settings.head_grid is None and report.head_range is not None  # int8: narrowed by default
    # The verdict comes first, in words, and nothing is registered until the user says so.
    assert report.verdict in ("better", "worse") and not report.registered
    if report.verdict == "better":
        assert app.success[0].value.startswith("**Better by every threshold:**")
    else:
        (box,) = app.error
        assert box.value.startswith("**This repair made things worse.** ")
        assert report.verdict_reasons[0] in box.value
    assert any(m.value.startswith("The repaired model is **not registered**") for m in app.markdown)
    with Store(db) as store:
        assert store.list_repairs(run_id) == []
    assert not (user_zoo / "manifest.json").exists()
    register = next(b for b in app.button if b.label == "Register the repaired pair")
    if report.verdict == "worse":
        assert register.disabled  # asks first: a worse repair needs an explicit confirmation
        next(c for c in app.checkbox if c.label.startswith("I have read why it is worse")).check().run()
        register = next(b for b in app.button if b.label == "Register the repaired pair")
    assert not register.disabled
    register.click().run()
    assert not app.exception
    report = job.report
    assert report is not None and report.registered and report.repaired_pair is not None
    assert tensors_in(job) == []  # registered: the model is in the zoo, the job lets it go
    table = app.dataframe[0].value.set_index("measure")
    assert table.loc["Held-out triggers repaired", "after"] == f"{report.heldout_repaired_rate:.1%}"
    assert table.loc["Held-out triggers repaired", "before"] == f"{report.heldout_repaired_before:.1%}"
    assert table.loc["Test images the models disagree on", "before"] == f"{report.disagreements_before:,}"
    assert table.loc["Test images the models disagree on", "after"] == f"{report.disagreements_after:,}"
    assert table.loc["Compressed model's test accuracy", "after"] == f"{report.accuracy_after:.1%}"
    assert table.loc["Re-search: seeds that deviate", "before"] == f"{report.research_success_before:.1%}"
    profile = "Seeds with a strict deviation within L-inf 16/255"
    assert table.loc[profile, "before"] == f"{report.profile_share_before:.1%}"
    corrupted = f"Corrupted test images they disagree on (of {report.corrupted_images:,})"
    assert table.loc[corrupted, "after"] == f"{report.corrupted_disagreements_after:,}"
    assert any(f"`{report.repaired_pair}`" in m.value for m in app.markdown)
    assert len(app.get("plotly_chart")) == 2  # before/after bars, loss and repair curves
    with Store(db) as store:
        (saved,) = store.list_repairs(run_id)
    assert saved.pair_after == report.repaired_pair and saved.selection == "default"
    assert (user_zoo / "manifest.json").is_file()

    next(b for b in app.button if b.label == "Search the repaired pair").click().run()
    assert not app.exception
    assert app.session_state["pair_choice"].zoo_id == report.repaired_pair
    assert app.title[0].value == "Search"
    assert report.repaired_pair in app.caption[0].value
    assert load_pair(report.repaired_pair or "").name == report.repaired_pair


def test_stop_ends_the_repair_and_saves_nothing(app: AppTest, db: Path, run_id: str,
                                                user_zoo: Path) -> None:
    open_page(app, "repair")
    _set(app, "Epochs", 200)
    next(w for w in app.text_input if w.label == "Scaled trigger changes").input("0.5, 1.5")
    next(b for b in app.button if b.label == "Start repair").click().run()
    assert any(b.label == "Stop" for b in app.button)  # the live panel is up
    assert re.fullmatch(r"(starting|(mining|variants): .+|\d+ of 200 epochs · training.*)"
                        r" · \d+\.\d s", progress_line(app)), progress_line(app)
    next(b for b in app.button if b.label == "Stop").click().run()
    _finish()
    job = repair_jobs.get_job(app.session_state["repair_job_id"])
    assert job is not None and job.status == "stopped" and job.report is not None
    assert job.report.repaired_pair is None and job.report.epochs_run < 200
    assert job.settings.change_scales == (0.5, 1.5) and job.report.change_scales == [0.5, 1.5]
    assert tensors_in(job) == [] and job.outcome is not None and job.outcome.stopped
    app.run()
    assert "no repaired pair was saved" in app.warning[0].value
    with Store(db) as store:
        assert store.list_repairs(run_id) == []
    assert not (user_zoo / "manifest.json").exists()


def test_black_box_pair_is_refused_before_anything_runs(app: AppTest, db: Path,
                                                        user_zoo: Path) -> None:
    with Store(db) as store:
        store.create_run("lenet5-onnx-int8", "dflare", SearchSettings(), 4, 0, "mnist")
    open_page(app, "repair")
    assert not app.exception
    assert "lenet5-onnx-int8 cannot be repaired" in app.error[0].value
    assert "black box" in app.error[0].value
    assert not any(b.label == "Start repair" for b in app.button)


def test_a_failed_repair_is_a_message_not_a_traceback(app: AppTest, db: Path, run_id: str) -> None:
    with Store(db) as store:
        store.set_selection(run_id, store.get_selection(run_id)[:1])  # one trigger: cannot split
    open_page(app, "repair")
    assert any(m.value.startswith("**1 hand-picked trigger**") for m in app.markdown)
    next(b for b in app.button if b.label == "Start repair").click().run()
    _finish()
    app.run()
    assert not app.exception
    assert "a repair needs at least 2 triggers" in app.error[0].value


def test_a_default_repair_that_kept_the_model_says_unchanged_and_offers_nothing_to_register(
    app: AppTest, db: Path, run_id: str, user_zoo: Path
) -> None:
    """The default epoch choice on the int8 pair without the head grid: every trained candidate
    adds validation disagreements, so the model is kept (whatever the ranking), the page says so
    in words and registers nothing."""
    open_page(app, "repair")
    _set(app, "Epochs", 2)
    _set(app, "Variants per trigger", 2)
    _set(app, "Training digits to mine", 16)
    h = next(c for c in app.checkbox if c.label == "Re-search both pairs")
    h.uncheck().run()
    next(c for c in app.checkbox if c.label == "Narrow the int8 head's output grid").uncheck().run()
    next(r for r in app.radio if r.label == "Among the epochs it may keep, prefer").set_value("failures").run()
    next(b for b in app.button if b.label == "Start repair").click().run()
    job = repair_jobs.get_job(app.session_state["repair_job_id"])
    assert job is not None and job.settings.checkpoint == "no-rise" and job.settings.head_grid is False
    assert job.settings.rank_by == "failures"  # ranks only what qualifies: still no trained epoch
    _finish()
    app.run()
    assert not app.exception
    report = job.report
    assert report is not None and report.verdict == "unchanged" and report.best_epoch == 0
    assert report.disagreements_after == report.disagreements_before
    assert report.corrupted_disagreements_after == report.corrupted_disagreements_before
    assert not app.error
    assert app.warning[0].value.startswith("**Unchanged.** No training epoch did better")
    assert any(m.value == "Nothing to register: the model was kept exactly as it was."
               for m in app.markdown)
    assert not any(b.label == "Register the repaired pair" for b in app.button)
    assert not (user_zoo / "manifest.json").exists()
    measures = list(app.dataframe[0].value["measure"])
    assert "Seeds with a strict deviation (not re-searched)" in measures  # no budget to name


@pytest.mark.parametrize(("text", "message"), [
    ("0.5, x", "Scaled trigger changes must be comma-separated numbers above 0 and at most 4"),
    ("0.5, 9", "--change-scales must be numbers above 0 and at most 4"),
])
def test_bad_scaled_changes_are_refused_in_words_and_start_nothing(
        app: AppTest, db: Path, run_id: str, text: str, message: str) -> None:
    open_page(app, "repair")
    next(w for w in app.text_input if w.label == "Scaled trigger changes").input(text)
    next(b for b in app.button if b.label == "Start repair").click().run()
    assert not app.exception
    assert message in app.error[0].value
    assert "repair_job_id" not in app.session_state and not any(b.label == "Stop" for b in app.button)


@pytest.mark.parametrize(("pair", "kind", "lr", "epochs", "scales"), [
    ("lenet5-bf16", "bf16", 2e-5, 16, ""),  # bf16 rounds to finer steps: smaller ones
    ("lenet5-distilled", "distilled", 5e-4, 24, "0.5, 0.75, 1.25, 1.5"),  # float weights: longer training
])
def test_a_run_offers_its_compressions_own_learning_rate_and_epochs(
        app: AppTest, db: Path, user_zoo: Path, pair: str, kind: str, lr: float, epochs: int,
        scales: str) -> None:
    spec = CampaignSpec(pair=pair, strategy="compd", seeds=10, settings=SearchSettings(max_queries=500))
    with Store(db) as store:
        assert run_campaign(spec, store).found >= 1
    open_page(app, "repair")
    assert not app.exception and not app.error
    assert next(w for w in app.number_input if w.label == "Learning rate").value == lr
    field = next(w for w in app.number_input if w.label == "Epochs")
    assert field.value == epochs and f"{epochs} is the default for a {kind} model" in field.help
    assert next(w for w in app.text_input if w.label == "Scaled trigger changes").value == scales
    assert not any(c.label == "Narrow the int8 head's output grid" for c in app.checkbox)  # no int8 head
