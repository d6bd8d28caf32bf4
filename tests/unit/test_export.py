"""Exports of a stored run (files, zip, npz) and the `compd runs` commands that read the store."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cli_support import compd as run_compd
from compd_core.errors import CompdError, ConfigError, StoreError
from compd_core.export import (
    CSV_COLUMNS,
    diff_image,
    export_run,
    selection_npz_bytes,
    selection_zip_bytes,
)
from compd_core.search.results import ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store import Store

# seed positions -> MNIST test indices; the even positions find a trigger
INDICES = [0, 11, 42, 7, 1999]


@pytest.fixture(scope="module")
def predict(mnist_train):
    """The zoo's int8 LeNet-5 pair, or (while the zoo is not built) nearest-class-mean models."""
    try:
        from compd_core.zoo import load_pair

        pair = load_pair("lenet5-int8-static")
        return lambda x: (lambda p: (p.original, p.compressed))(pair.predict(x))
    except CompdError:
        x, y = mnist_train.images.flatten(1), mnist_train.labels
        means = torch.stack([x[y == c].mean(0) for c in range(10)])
        coarse = torch.round(means * 15) / 15
        return lambda batch: (torch.softmax(-torch.cdist(batch.flatten(1), means), 1),
                              torch.softmax(-torch.cdist(batch.flatten(1), coarse), 1))


@pytest.fixture(scope="module")
def results(mnist_test, predict) -> list[SeedResult]:
    out = []
    for position, index in enumerate(INDICES):
        image = mnist_test.images[index]
        trigger_image = image.clone()
        trigger_image[0, 10 + position, 5:9] = torch.tensor([0, 64, 128, 255]) / 255.0
        probs_o, probs_c = predict(torch.stack([image, trigger_image]))
        seed = Seed(position, index, image, int(probs_o[0].argmax()), int(mnist_test.labels[index]))
        if position % 2 == 0:
            delta = (trigger_image - image).flatten()
            trigger = Trigger(trigger_image, probs_o[1], probs_c[1], float(delta.norm()),
                              float(delta.abs().max()))
            out.append(SeedResult(seed, ExitReason.FOUND, 40 + position, 40 + position, 0.5,
                                  trigger, trace=[0.75, 0.5, -0.25]))
        else:
            out.append(SeedResult(seed, ExitReason.QUERY_BUDGET, 500, 500, 2.0, trace=[0.75]))
    return out


@pytest.fixture
def stored(tmp_path, results):
    """A database with one finished run of five seeds; yields (store, run_id)."""
    store = Store(tmp_path / "compd.sqlite")
    run_id = store.create_run("lenet5-int8-static", "dflare", SearchSettings(max_queries=500),
                              len(INDICES), 3, "mnist-test", note="export test")
    for result in results:
        store.save_result(run_id, result)
    store.finish_run(run_id, "finished", 6.5)
    yield store, run_id
    store.close()


def test_export_writes_csv_json_and_pngs(stored, results, tmp_path):
    store, run_id = stored
    written = export_run(store, run_id, tmp_path / "out")
    assert {p.name for p in written} >= {"triggers.csv", "run.json"}

    with open(tmp_path / "out" / "triggers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["position"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [int(r["dataset_index"]) for r in rows] == INDICES
    assert [r["found"] for r in rows] == ["True", "False", "True", "False", "True"]
    assert [r["exit_reason"] for r in rows] == ["FOUND", "QUERY_BUDGET"] * 2 + ["FOUND"]
    first = results[0].trigger
    assert float(rows[0]["l2"]) == pytest.approx(first.l2, abs=1e-9)
    assert float(rows[0]["linf"]) == 1.0  # a pixel of the 0-background was set to 255
    assert int(rows[0]["label_compressed"]) == first.label_compressed
    assert float(rows[0]["p_original_top1"]) == pytest.approx(float(first.probs_original.max()))
    assert rows[0]["compressed_top3"].split()[0].startswith(f"{first.label_compressed}:")
    assert rows[1]["l2"] == "" and rows[1]["queries"] == "500"

    report = json.loads((tmp_path / "out" / "run.json").read_text())
    assert report["run"]["id"] == run_id and report["run"]["found"] == 3
    assert report["run"]["settings"]["max_queries"] == 500
    assert report["run"]["note"] == "export test"
    seeds = report["seeds"]
    assert len(seeds) == 5 and seeds[1]["probs_original"] is None
    assert seeds[2]["exit_reason_text"] == "found a deviation"
    assert np.allclose(seeds[2]["probs_compressed"], results[2].trigger.probs_compressed, atol=1e-6)
    assert sum(seeds[2]["probs_original"]) == pytest.approx(1.0, abs=1e-4)
    assert seeds[4]["trace"] == [0.75, 0.5, -0.25]

    png = tmp_path / "out" / "png"
    names = sorted(p.name for p in png.iterdir())
    assert names == sorted([f"seed_{p}.png" for p in range(5)]
                           + [f"{kind}_{p}.png" for p in (0, 2, 4) for kind in ("trigger", "diff")])
    with Image.open(png / "trigger_2.png") as picture:
        assert picture.size == (28, 28) and picture.mode == "L"
        pixels = np.array(picture)
    assert np.array_equal(pixels, np.round(results[2].trigger.image[0].numpy() * 255))


def test_export_of_some_positions_and_formats(stored, tmp_path):
    store, run_id = stored
    written = export_run(store, run_id, tmp_path / "few", formats={"csv"}, positions=[4, 1])
    assert [p.name for p in written] == ["triggers.csv"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "few" / "triggers.csv").read_text())))
    assert [r["position"] for r in rows] == ["1", "4"]
    with pytest.raises(ConfigError, match="unknown export format.*'pdf'"):
        export_run(store, run_id, tmp_path / "bad", formats={"csv", "pdf"})
    with pytest.raises(StoreError, match=r"no result for seed positions \[9\]"):
        export_run(store, run_id, tmp_path / "bad", positions=[9])


def test_diff_image_amplifies_small_changes(mnist_test):
    seed = mnist_test.images[3]
    trigger = seed.clone()
    trigger[0, 0, 0] = seed[0, 0, 0] + 2 / 255  # background pixel: 0 -> 2 grey levels
    trigger[0, 27, 27] = seed[0, 27, 27] + 1 / 255
    diff = diff_image(seed, trigger)
    assert float(diff[0, 0, 0]) == 1.0  # the largest change is white
    assert float(diff[0, 27, 27]) * 255 == pytest.approx(191, abs=1e-4)  # half: lighter grey
    unchanged = torch.ones_like(diff, dtype=torch.bool)
    unchanged[0, 0, 0] = unchanged[0, 27, 27] = False
    assert torch.all(diff[unchanged] == 128 / 255)


def test_selection_zip_and_npz(stored, results):
    store, run_id = stored
    with zipfile.ZipFile(io.BytesIO(selection_zip_bytes(store, run_id, [4, 0]))) as archive:
        names = set(archive.namelist())
        rows = list(csv.DictReader(io.StringIO(archive.read("selection.csv").decode())))
        with Image.open(io.BytesIO(archive.read("diff_4.png"))) as picture:
            assert picture.size == (28, 28)
    assert names == {"seed_4.png", "trigger_4.png", "diff_4.png", "seed_0.png", "trigger_0.png",
                     "diff_0.png", "selection.csv"}
    assert [r["position"] for r in rows] == ["4", "0"]  # the order the user picked

    with np.load(io.BytesIO(selection_npz_bytes(store, run_id, [0, 2, 4]))) as arrays:
        assert arrays["x"].shape == (3, 1, 28, 28) and arrays["x"].dtype == np.uint8
        assert np.array_equal(arrays["x"][1], np.round(results[2].trigger.image.numpy() * 255))
        assert np.array_equal(arrays["seeds"][2], np.round(results[4].seed.image.numpy() * 255))
        assert arrays["labels"].tolist() == [results[p].seed.label for p in (0, 2, 4)]
        assert arrays["positions"].tolist() == [0, 2, 4]
        assert arrays["dataset_indices"].tolist() == [INDICES[p] for p in (0, 2, 4)]
    with pytest.raises(StoreError, match=r"no trigger at seed positions \[1\]"):
        selection_npz_bytes(store, run_id, [0, 1])
    with pytest.raises(ConfigError, match="no triggers selected"):
        selection_zip_bytes(store, run_id, [])


# ---------------------------------------------------------------------------------------------
# `compd runs ...` through the real entry point (exit codes and one-line errors included)


@pytest.fixture
def compd():
    """Run ``compd`` in this process (``cli_support``); returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        done = run_compd(*args)
        return done.returncode, done.stdout, done.stderr

    return invoke


def test_runs_list_json_and_table(stored, compd):
    store, run_id = stored
    code, out, _ = compd("runs", "list", "--db", str(store.path), "--json")
    assert code == 0
    (run,) = json.loads(out)["runs"]
    assert (run["id"], run["seeds_done"], run["found"], run["status"]) == (run_id, 5, 3, "finished")
    assert run["wall_seconds"] == 6.5
    code, out, _ = compd("runs", "list", "--db", str(store.path))
    assert code == 0 and run_id in out and "3 (60%)" in out


def test_runs_show(stored, compd):
    store, run_id = stored
    code, out, _ = compd("runs", "show", run_id, "--db", str(store.path), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["summary"]["found"] == 3 and report["summary"]["median_queries_found"] == 42
    assert report["summary"]["exit_reasons"] == {"FOUND": 3, "QUERY_BUDGET": 2}
    assert [s["found"] for s in report["seeds"]] == [True, False, True, False, True]
    code, out, _ = compd("runs", "show", run_id, "--db", str(store.path))
    assert code == 0 and "found 3 of 5 seeds" in out and "query budget" in out


def test_runs_export(stored, compd, tmp_path):
    store, run_id = stored
    code, _, err = compd("runs", "export", run_id, "--db", str(store.path), "--out",
                         str(tmp_path / "x"), "--format", "csv,png", "--positions", "0,1")
    assert code == 0 and "wrote 5 files" in err
    assert sorted(p.name for p in (tmp_path / "x" / "png").iterdir()) == [
        "diff_0.png", "seed_0.png", "seed_1.png", "trigger_0.png"]
    assert not (tmp_path / "x" / "run.json").exists()


@pytest.mark.parametrize("args, message", [
    (("runs", "show", "no-such-run"), "no run 'no-such-run' in"),
    (("runs", "export", "no-such-run", "--out", "unused"), "`compd runs list` shows the runs"),
])
def test_runs_bad_id_is_one_line_with_exit_code_2(stored, compd, args, message):
    store, _ = stored
    code, out, err = compd(*args, "--db", str(store.path))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_runs_list_on_a_missing_or_foreign_file(compd, tmp_path):
    code, _, err = compd("runs", "list", "--db", str(tmp_path / "nothing.sqlite"))
    assert code == 2 and "no results database at" in err
    assert not (tmp_path / "nothing.sqlite").exists()
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    code, _, err = compd("runs", "list", "--db", str(tmp_path / "image.png"))
    assert code == 2 and "is not an SQLite database" in err


def _handmade(position: int, probs_o: list[float], probs_c: list[float], image: torch.Tensor) -> SeedResult:
    trigger_image = image.clone()
    trigger_image[0, 3, 4:7] = trigger_image[0, 3, 4:7] + torch.tensor([8, 16, 32]) / 255.0
    delta = (trigger_image - image).flatten()
    trigger = Trigger(trigger_image, torch.tensor(probs_o), torch.tensor(probs_c),
                      float(delta.norm()), float(delta.abs().max()))
    return SeedResult(Seed(position, position, image, 0, 0), ExitReason.FOUND, 10, 10, 0.1, trigger)


def test_export_carries_margins_ties_and_change_size(tmp_path, compd):
    image = torch.zeros(1, 28, 28)
    strong = _handmade(0, [0.9, 0.1, 0.0], [0.2, 0.7, 0.1], image)  # margins 0.8 and 0.5
    tie = _handmade(1, [0.6, 0.4, 0.0], [0.45, 0.45, 0.1], image)  # compressed tie: not strict
    store = Store(tmp_path / "strength.sqlite")
    run_id = store.create_run("lenet5-int8-static", "dflare", SearchSettings(max_queries=10), 2, 0, "mnist")
    for result in (strong, tie):
        store.save_result(run_id, result)
    store.finish_run(run_id, "finished", 1.0)
    export_run(store, run_id, tmp_path / "out", formats={"csv", "json"})
    with open(tmp_path / "out" / "triggers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["margin_original"]) == pytest.approx(0.8)
    assert float(rows[0]["margin_compressed"]) == pytest.approx(0.5)
    assert rows[0]["strict"] == "True" and rows[1]["strict"] == "False"
    assert float(rows[1]["margin_compressed"]) == 0.0
    assert [rows[0]["max_change_levels"], rows[0]["pixels_changed"]] == ["32", "3"]
    seeds = json.loads((tmp_path / "out" / "run.json").read_text())["seeds"]
    assert seeds[1]["margin_original"] == pytest.approx(0.2) and seeds[1]["strict"] is False
    from compd_core.export import run_summary

    summary = run_summary(store.load_results(run_id))
    assert summary["not_strict"] == 1 and summary["strong"] == 1
    assert summary["median_margin_compressed"] == pytest.approx(0.25)
    code, out, _ = compd("runs", "show", run_id, "--db", str(store.path))
    assert code == 0
    assert "both >= 0.2: 1 of 2 triggers (50%); 1 stored: tie: not a deviation under the strict criterion" in out
    assert "0.80/0.50" in out and "tie" in out.splitlines()[-1]
    store.close()


def test_a_tiny_positive_margin_never_reads_as_a_tie():
    from compd_core.strength import margin_text

    assert [margin_text(v) for v in (0.0, 0.001, 0.004999, 0.005, 0.8)] == ["0.00", "<0.01", "<0.01", "0.01", "0.80"]


def test_the_summary_says_when_the_original_itself_hesitates():
    """A median original's margin under 0.1 earns the caveat, in every view's words; 0.1 or more
    (or no trigger at all) does not."""
    import torch

    from compd_core.search.results import Trigger
    from compd_core.strength import HESITANT_MARGIN, summarize_strength

    def trigger(high: float, low: float) -> Trigger:
        """The original says 0 by high - low; the compressed model says 1 by as much."""
        rest = [(1 - high - low) / 8] * 8
        return Trigger(torch.zeros(1, 28, 28), torch.tensor([high, low, *rest]),
                       torch.tensor([low, high, *rest]), 1.0, 0.1)

    hesitant = summarize_strength([trigger(0.5, 0.45), trigger(0.52, 0.44), trigger(0.8, 0.15)])
    assert hesitant.median_margin_original < HESITANT_MARGIN
    caveat = hesitant.caveat()
    assert caveat is not None and caveat.startswith("The original itself hesitates on most of these triggers")
    assert f"median margin {hesitant.median_margin_original:.2f}, under 0.1" in caveat
    sure = summarize_strength([trigger(0.8, 0.15), trigger(0.7, 0.25), trigger(0.5, 0.45)])
    assert sure.median_margin_original >= HESITANT_MARGIN and sure.caveat() is None
    assert summarize_strength([]).caveat() is None
