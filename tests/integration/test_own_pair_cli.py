"""A pair given as two model files, through every command: search on explicit seeds of an .npz,
repair, resume of an interrupted run, export, and the plain refusals (changed, gone, ONNX)."""

from __future__ import annotations

import csv
import json
import shutil
import threading

import pytest
import torch
from own_pair_support import SEEDS, FilePair, compd, write_file_pair

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.pair_spec import PairSpec, file_sha256
from compd_core.report import build_report
from compd_core.search.events import SeedFinished
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.zoo import load_pair

pytestmark = pytest.mark.slow
BUDGET = "1500"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> FilePair:
    return write_file_pair(tmp_path_factory.mktemp("own-pair"))


@pytest.fixture(scope="module")
def searched(files, tmp_path_factory):
    """(database, summary) of `compd search` on the file pair and 8 listed seeds of the npz."""
    db = tmp_path_factory.mktemp("own-db") / "runs.sqlite"
    done = compd("search", "--original", files.original, "--compressed", files.compressed,
                 "--dataset", files.data, "--seed-indices", SEEDS, "--budget", BUDGET,
                 "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    return db, json.loads(done.stdout)


def test_search_on_files_stores_the_pair_the_data_and_the_seeds(files, searched):
    db, summary = searched
    assert summary["seeds"] == 8 and summary["found"] >= 2
    with Store(db, read_only=True) as store:
        run = store.get_run(summary["run_id"])
        results = store.load_results(run.id, details=False)
    spec = run.pair_source()
    assert not spec.is_zoo and spec.original == str(files.original)
    assert spec.compressed_sha256 == file_sha256(files.compressed)
    assert run.pair == "lenet5.pt vs lenet5-distilled.pt"
    assert run.dataset == str(files.data) and run.seed_plan.order == "explicit"
    assert [r.seed.index for r in results] == [int(i) for i in SEEDS.split(",")]
    # Each trigger replays on the pair rebuilt from the stored description, strictly.
    pair = spec.load()
    found = [r for r in results if r.found]
    replay = pair.predict(torch.stack([r.trigger.image for r in found]))
    assert (replay.labels_original == torch.tensor([r.seed.label for r in found])).all()
    assert (replay.labels_original != replay.labels_compressed).all()


def test_export_of_a_file_pair_run_names_its_files(files, searched, tmp_path):
    db, summary = searched
    done = compd("runs", "export", summary["run_id"], "--db", db, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    exported = json.loads((tmp_path / "out" / "run.json").read_text())
    text = json.dumps(exported)
    assert str(files.compressed) in text and file_sha256(files.compressed) in text
    with open(tmp_path / "out" / "triggers.csv") as handle:
        assert len(list(csv.DictReader(handle))) == summary["found"]
    assert "warning" not in done.stderr  # nothing changed
    with Store(db, read_only=True) as store:
        html = build_report(store, summary["run_id"])
    assert str(files.compressed) in html and file_sha256(files.compressed)[:16] in html


def test_repair_fine_tunes_a_torchscript_compressed_model(files, searched, tmp_path):
    db, summary = searched
    done = compd("repair", "--run", summary["run_id"], "--db", db, "--epochs", "2", "--variants",
                 "2", "--batch-size", "32", "--mined-seeds", "32", "--no-research",
                 "--register", "always", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["epochs_run"] == 2 and report["final_loss"] is not None
    assert report["triggers"] == summary["found"] and report["registered"]
    repaired = torch.jit.load(report["repaired_pair"])  # a TorchScript file the user can search
    assert PairSpec.files(files.original, report["repaired_pair"]).load().num_classes == 10
    assert sum(p.numel() for p in repaired.parameters()) > 0


def test_a_repaired_torchscript_model_travels_to_the_process_that_registers_it(files, searched):
    """A repair done elsewhere (a Ray worker) comes back pickled; a TorchScript module does
    not pickle, so it travels as its file: the registered file answers as the trained model."""
    import pickle

    from compd_core.executors import InProcessExecutor
    from compd_core.repair import RepairSettings
    from compd_core.repair.task import RepairTask

    db, summary = searched
    settings = RepairSettings(epochs=1, variants_per_trigger=2, batch_size=32, mined_seeds=16,
                              research=False, checkpoint="last")
    done = InProcessExecutor().run_job(RepairTask(str(db), summary["run_id"], settings),
                                       lambda event: None, threading.Event())
    assert done.report is not None and done.report.epochs_run == 1 and done.store is not None
    arrived = pickle.loads(pickle.dumps(done))
    assert arrived.store is None and arrived.report == done.report
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with Store(db) as store:
        earlier = [r.pair_after for r in store.list_repairs(summary["run_id"])]  # other tests'
        arrived.attach(store)
        report = arrived.register()
        added = [r.pair_after for r in store.list_repairs(summary["run_id"])]
        assert sorted(added) == sorted([*earlier, report.repaired_pair])
    registered = torch.jit.load(report.repaired_pair)
    assert torch.equal(registered(images), done._repaired.served(images))


def _interrupted_run(files: FilePair, db) -> str:
    """A run on the file pair stopped right after its first seed was stored."""
    stop = threading.Event()
    spec = PairSpec.files(files.original, files.compressed).with_hashes()

    def stop_after_first(event) -> None:
        if isinstance(event, SeedFinished):
            stop.set()

    campaign = CampaignSpec(pair=spec.name, strategy="dflare", seeds=4,
                            settings=SearchSettings(max_queries=300), dataset=str(files.data),
                            seed_order="explicit", pair_spec=spec, seed_indices=(1, 3, 5, 7))
    with Store(db) as store:
        summary = run_campaign(campaign, store, emit=stop_after_first, stop=stop)
        assert summary.stopped and store.get_run(summary.run_id).status == "stopped"
        assert len(store.finished_positions(summary.run_id)) < 4
    return summary.run_id or ""


def test_resume_reloads_the_pair_from_the_run(files, tmp_path):
    db = tmp_path / "runs.sqlite"
    run_id = _interrupted_run(files, db)
    with Store(db, read_only=True) as store:
        before = {r.seed.position: r.queries for r in store.load_results(run_id, details=False)}
    refused = compd("search", "--resume", run_id, "--db", db, "--dataset", "mnist")
    assert refused.returncode == 2 and "leave --dataset out" in refused.stderr
    done = compd("search", "--resume", run_id, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seeds"] == 4 - len(before)
    with Store(db, read_only=True) as store:
        run = store.get_run(run_id)
        after = store.load_results(run_id, details=False)
    assert run.status == "finished" and [r.seed.index for r in after] == [1, 3, 5, 7]
    assert {p: q for p, q in ((r.seed.position, r.queries) for r in after) if p in before} == before


def test_a_changed_file_warns_and_a_gone_file_is_refused(files, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    original, compressed = own / "a.pt", own / "b.pt"
    shutil.copyfile(files.original, original)
    shutil.copyfile(files.compressed, compressed)
    db = tmp_path / "runs.sqlite"
    first = compd("search", "--original", original, "--compressed", compressed, "--seed-indices",
                  "0,1", "--budget", "300", "--db", db, "--json")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    shutil.copyfile(files.original, compressed)  # another model under the same name
    shown = compd("runs", "export", run_id, "--db", db, "--out", tmp_path / "out")
    assert shown.returncode == 0
    assert "warning: the compressed model file" in shown.stderr
    assert shown.stderr.count("changed since this run was searched") == 1  # said once, one line
    compressed.unlink()
    refused = compd("repair", "--run", run_id, "--db", db)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: the compressed model file")
    assert "is gone since this run was searched" in refused.stderr


def test_repair_refuses_an_onnx_compressed_model_in_plain_words(files, tmp_path):
    db = tmp_path / "runs.sqlite"
    found = compd("search", "--original", files.original, "--compressed", files.onnx,
                  "--seed-indices", "0,1,2", "--budget", "600", "--db", db, "--json")
    assert found.returncode == 0, found.stderr
    refused = compd("repair", "--run", json.loads(found.stdout)["run_id"], "--db", db)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert ("fine-tuning needs the compressed model as a PyTorch module; ONNX files cannot be "
            "fine-tuned here") in refused.stderr


@pytest.mark.parametrize("args, message", [
    (("--seed-indices", "3,3"), "seed indices [3] are listed twice"),
    (("--seed-indices", "3,5000"), "seed indices [5000] are not in"),
    (("--seed-indices", "3,x"), "'x' is not a whole number"),
    (("--seed-indices", "3", "--seeds", "4"), "leave --seeds out"),
    (("--dataset", "nowhere.npz:train"), "nowhere.npz does not exist"),
])
def test_bad_pair_and_seed_options_are_one_line(files, tmp_path, args, message):
    done = compd("search", "--original", files.original, "--compressed", files.compressed,
                 "--db", tmp_path / "r.sqlite", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_one_model_file_alone_is_refused(files, tmp_path):
    done = compd("search", "--original", files.original, "--db", tmp_path / "r.sqlite")
    assert done.returncode == 2 and "--compressed is missing" in done.stderr
    both = compd("pair", "inspect", "--pair", "lenet5-int8-static", "--original", files.original)
    assert both.returncode == 2 and "not both" in both.stderr


def test_pair_inspect_and_profile_take_the_files_and_the_npz(files):
    inspected = compd("pair", "inspect", "--original", files.original, "--compressed", files.onnx,
                      "--dataset", f"{files.data}:train", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["images"] == 8000
    profiled = compd("profile", "--original", files.original, "--compressed", files.compressed,
                     "--dataset", files.data, "--seed-indices", "0,1", "--budgets", "8,64",
                     "--budget", "200", "--json")
    assert profiled.returncode == 0, profiled.stderr
    assert json.loads(profiled.stdout)["seeds"] == 2


def test_a_file_pair_finds_exactly_what_its_zoo_pair_finds(files, tmp_path):
    """The zoo's int8 LeNet-5 saved as TorchScript, searched from the .npz copy of the data:
    the same seeds, queries and trigger images as the zoo pair on the shipped split."""
    int8 = tmp_path / "int8.pt"
    torch.jit.script(load_pair("lenet5-int8-static").compressed.module).save(str(int8))
    spec = PairSpec.files(files.original, int8).with_hashes()
    settings, indices = SearchSettings(max_queries=600), (3, 17, 42, 7, 11, 20)
    campaigns = [
        CampaignSpec("lenet5-int8-static", seeds=6, settings=settings, seed_order="explicit",
                     seed_indices=indices),
        CampaignSpec(spec.name, seeds=6, settings=settings, dataset=str(files.data),
                     seed_order="explicit", pair_spec=spec, seed_indices=indices),
    ]
    with Store(tmp_path / "runs.sqlite") as store:
        zoo, own = (store.load_results(run_campaign(c, store).run_id) for c in campaigns)
    assert sum(r.found for r in zoo) >= 2
    for a, b in zip(zoo, own, strict=True):
        assert (a.seed.index, a.found, a.queries) == (b.seed.index, b.found, b.queries)
        assert a.trigger is None or torch.equal(a.trigger.image, b.trigger.image)


def test_characterize_on_files_measures_what_it_measures_on_the_zoo_pair(files):
    """The same original and student as the zoo's lenet5-distilled, given as files and data."""
    shift = ("--corruptions", "brightness,shot_noise", "--severities", "1", "--json")
    own = compd("characterize", "--original", files.original, "--compressed", files.compressed,
                "--dataset", files.data, *shift)
    zoo = compd("characterize", "--pair", "lenet5-distilled", *shift)
    assert own.returncode == 0 and zoo.returncode == 0, own.stderr + zoo.stderr
    own_report, zoo_report = json.loads(own.stdout), json.loads(zoo.stdout)
    assert own_report["pair"] == "lenet5.pt vs lenet5-distilled.pt"
    for key in ("n_images", "clean_disagreements", "clean_disagreement_indices",
                "shifted_disagreements"):
        assert own_report[key] == zoo_report[key], key
