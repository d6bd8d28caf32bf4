"""Dashboard housekeeping: runs left by a killed server, and uploads (names, size limit,
clean-up)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from PIL import Image
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from compd_core.paths import sample_models_dir
from compd_core.store import Store
from dashboard.uploads import clean_uploads, safe_name
from dashboard_support import open_page, resume_on_runs_page, search_killed_after_one_seed

ONNX_ORIGINAL = sample_models_dir() / "lenet5" / "onnx-int8.float.onnx"
ONNX_COMPRESSED = sample_models_dir() / "lenet5" / "onnx-int8.onnx"

KILLED_SPEC = ('spec = CampaignSpec("lenet5-int8-static", "dflare", seeds=4, '
               'settings=SearchSettings(max_queries=200))')


def test_a_run_left_by_a_killed_process_reads_interrupted_and_can_be_stopped(db: Path) -> None:
    assert search_killed_after_one_seed(db, KILLED_SPEC) == -9
    with Store(db) as store:
        (run,) = store.list_runs()
    assert (run.status, run.seeds_done) == ("interrupted", 1)
    at = AppTest.from_file(str(Path(__file__).parents[2] / "dashboard" / "app.py"),
                           default_timeout=120)
    open_page(at, "runs")
    assert not at.exception
    assert at.dataframe[0].value.set_index("run").loc[run.id, "status"] == "interrupted"
    assert f"Run `{run.id}` was interrupted" in at.warning[0].value
    assert f"compd search --resume {run.id}" in at.warning[0].value
    at.button(key="stop-interrupted").click().run()
    with Store(db) as store:
        assert store.get_run(run.id).status == "stopped"
    assert at.dataframe[0].value.set_index("run").loc[run.id, "status"] == "stopped"


def test_an_interrupted_run_resumes_from_the_runs_page(db: Path) -> None:
    assert search_killed_after_one_seed(db, KILLED_SPEC) == -9
    with Store(db) as store:
        (run,) = store.list_runs()
        (first,) = store.load_results(run.id)
    assert (run.status, run.seeds_done) == ("interrupted", 1)
    done, results = resume_on_runs_page(db, run.id)
    # the run's own campaign finished the other seeds; the stored one was not searched again
    assert (done.status, done.seeds_done, done.seed_count) == ("finished", 4, 4)
    assert [r.seed.position for r in results] == [0, 1, 2, 3]
    kept = next(r for r in results if r.seed.position == first.seed.position)
    assert (kept.queries, kept.found) == (first.queries, first.found)
    assert done.settings.max_queries == 200 and done.strategy == "dflare"


def _use_own_files(app: AppTest, original: tuple[str, bytes], compressed: tuple[str, bytes]):
    open_page(app, "models")
    app.radio[0].set_value("My own model files").run()
    app.file_uploader[0].set_value((*original, "application/octet-stream"))
    app.file_uploader[1].set_value((*compressed, "application/octet-stream"))
    return app.button[0].click().run()


def test_uploads_with_300_character_names_load(app: AppTest, db: Path) -> None:
    long_a, long_b = "a" * 296 + ".onnx", "b" * 296 + ".onnx"
    _use_own_files(app, (long_a, ONNX_ORIGINAL.read_bytes()),
                   (long_b, ONNX_COMPRESSED.read_bytes()))
    assert not app.exception and not app.error
    assert [m.label for m in app.metric].count("Accuracy") == 2
    saved = sorted(p for p in (db.parent / "uploads").rglob("*.onnx"))
    assert len(saved) == 2 and all(len(p.name) == 85 for p in saved)  # 80 + ".onnx"


def test_an_upload_over_the_limit_names_the_limit(app: AppTest) -> None:
    before = streamlit_config.get_option("server.maxUploadSize")
    streamlit_config.set_option("server.maxUploadSize", 1)
    try:
        _use_own_files(app, ("big.onnx", b"\0" * (2 * 1024**2 + 1)),
                       ("small.onnx", ONNX_COMPRESSED.read_bytes()))
    finally:
        streamlit_config.set_option("server.maxUploadSize", before)
    assert not app.exception
    assert "big.onnx is 2 MB; uploads are limited to 1 MB" in app.error[0].value


def test_safe_names_keep_the_extension_and_fit_the_file_system() -> None:
    assert safe_name("x" * 300 + ".NPZ") == "x" * 80 + ".npz"
    assert safe_name("../../etc/pass wd.onnx") == "pass_wd.onnx"
    assert safe_name("...") == "upload"


def test_cleaning_removes_old_files_then_the_oldest_beyond_the_cap(tmp_path: Path) -> None:
    now = time.time()
    files = {}
    for name, age_hours, size in [("stale", 30, 10), ("old", 5, 600), ("mid", 3, 300),
                                  ("new", 1, 300)]:
        path = tmp_path / name / f"{name}.onnx"
        path.parent.mkdir()
        path.write_bytes(b"\0" * size)
        os.utime(path, (now - age_hours * 3600, now - age_hours * 3600))
        files[name] = path
    removed = clean_uploads(tmp_path, now=now, max_total_bytes=700)
    assert sorted(p.parent.name for p in removed) == ["old", "stale"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid", "new"]  # empty folders go too


def test_an_oversized_seed_image_is_refused_with_its_size(app: AppTest) -> None:
    buffer = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buffer, format="PNG")  # ~25 KB on disk, 25 MP decoded
    open_page(app, "seeds")
    app.file_uploader[0].set_value([("huge.png", buffer.getvalue(), "image/png")]).run()
    assert not app.exception
    assert app.error[0].value == ("**huge.png** is 5000x5000 pixels; compd reads images of at "
                                  "most 16,777,216 pixels (e.g. 4096x4096): shrink it first")
