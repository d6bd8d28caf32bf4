"""The Triggers page on a run searched through the command line on the user's own files: the
pair is rebuilt from the run, and a model file that changed since is said in plain words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dashboard_support import APP, open_page, resume_on_runs_page, search_killed_after_one_seed
from own_pair_support import SEEDS, compd, write_file_pair
from streamlit.testing.v1 import AppTest

from compd_core.paths import sample_models_dir
from compd_core.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> tuple[Path, str, Path]:
    """(database, run id, compressed model file) of a CLI search on a file pair."""
    root = tmp_path_factory.mktemp("own-dashboard")
    files = write_file_pair(root / "models")
    db = root / "runs.sqlite"
    done = compd("search", "--original", files.original, "--compressed", files.compressed,
                 "--dataset", files.data, "--seed-indices", SEEDS, "--budget", "1500",
                 "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["found"] >= 1
    return db, summary["run_id"], files.compressed


@pytest.fixture
def own_app(own_run, monkeypatch, tmp_path):
    db, run_id, _ = own_run
    monkeypatch.setenv("COMPD_DB", str(db))
    monkeypatch.setenv("COMPD_UPLOADS", str(tmp_path / "uploads"))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["run"] = run_id
    yield at
    from dashboard import jobs

    jobs.stop_all()


def test_the_triggers_page_shows_a_file_pair_run_and_replays_it(own_app, own_run):
    db, run_id, _ = own_run
    open_page(own_app, "triggers")
    assert not own_app.exception and not own_app.error and not own_app.warning
    with Store(db, read_only=True) as store:
        found = [r for r in store.load_results(run_id) if r.found]
    metrics = {m.label: m.value for m in own_app.metric}
    assert metrics["Triggers found"] == str(len(found))
    assert metrics["Original says"] == str(found[0].trigger.label_original)
    captions = [c for image in own_app.image for c in image.captions]
    assert any(f"#{found[0].seed.index}" in c for c in captions)
    # The replay needs both models: it is drawn only when the pair was rebuilt from the run.
    assert len(own_app.get("plotly_chart")) == 2


def test_a_changed_model_file_is_a_warning_on_the_page(own_app, own_run, tmp_path):
    _, _, compressed = own_run
    kept = tmp_path / "kept.pt"
    shutil.copyfile(compressed, kept)
    try:
        shutil.copyfile(compressed.with_name("lenet5.pt"), compressed)  # another model, same name
        open_page(own_app, "triggers")
        assert not own_app.exception
        warnings = [w.value for w in own_app.warning]
        assert any("compressed model file" in w and "changed since" in w for w in warnings)
    finally:
        shutil.copyfile(kept, compressed)


def test_an_interrupted_file_pair_run_resumes_from_the_runs_page(db: Path) -> None:
    """A new session (on the default zoo pair) resumes it with the run's own two files."""
    original = sample_models_dir() / "lenet5" / "onnx-int8.float.onnx"
    compressed = sample_models_dir() / "lenet5" / "onnx-int8.onnx"
    spec = (f"pair = PairSpec.files({str(original)!r}, {str(compressed)!r}).with_hashes()\n"
            "spec = CampaignSpec(pair.name, 'dflare', seeds=4, "
            "settings=SearchSettings(max_queries=200), seed_order='explicit', pair_spec=pair, "
            "seed_indices=(0, 1, 2, 3))")
    assert search_killed_after_one_seed(db, spec) == -9
    with Store(db) as store:
        (run,) = store.list_runs()
    assert (run.status, run.seeds_done, run.pair) == ("interrupted", 1, "onnx-int8.float.onnx vs onnx-int8.onnx")
    done, results = resume_on_runs_page(db, run.id)
    assert (done.status, done.seeds_done) == ("finished", 4)
    assert [r.seed.index for r in results] == [0, 1, 2, 3]
    assert done.pair_source().compressed == str(compressed)
