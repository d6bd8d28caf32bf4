"""Repair on real zoo pairs and real triggers: it generalises, keeps what the compression is,
refuses black boxes, and a stop leaves everything as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import typer

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.compress import get_recipe
from compd_core.errors import ConfigError, WhiteBoxRequiredError
from compd_core.repair import EpochFinished, Repair, RepairSettings, StageStarted, repair_run
from compd_core.repair.events import ResearchProgress
from compd_core.repair.registry import source_pair
from compd_core.repair.report import kept_words
from compd_core.compress.pruning import detach_derived_weights
from compd_core.repair.evaluate import agreement_rate, deviation_share, unrepaired_margin
from compd_core.repair.serving import served_form
from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.zoo import load_pair
from compd_core.zoo.loading import USER_ZOO_ENV
from cli_support import compd
from interrupt_support import ctrl_c_when

SEEDS = 40
PRUNED_LAYERS = ("conv1", "conv2", "fcs.0", "fcs.1", "head")
# Small on purpose (the test must stay fast); bench/repair.py measures the real defaults.
QUICK = RepairSettings(epochs=4, variants_per_trigger=4, mined_seeds=128, mine_queries=300,
                       research=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """One small compd run per pair, in one database."""
    path = tmp_path_factory.mktemp("repair") / "runs.sqlite"
    ids = {}
    with Store(path) as store:
        for pair in ("lenet5-int8-static", "lenet5-prune90"):
            spec = CampaignSpec(pair=pair, strategy="compd", seeds=SEEDS,
                                settings=SearchSettings(max_queries=1000), rng_seed=3)
            summary = run_campaign(spec, store)
            assert summary.found >= 10, f"{pair}: too few triggers to test a repair on"
            ids[pair] = summary.run_id
    return path, ids


@pytest.fixture()
def user_zoo(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "user-zoo"
    monkeypatch.setenv(USER_ZOO_ENV, str(directory))
    return directory


def _held_out_images(store: Store, run_id: str, positions: list[int]) -> torch.Tensor:
    return torch.stack([r.trigger.image for r in store.load_results(run_id, positions, details=False)])


def test_converting_an_untrained_twin_gives_back_the_served_int8_model(mnist_test):
    source = source_pair("lenet5-int8-static")
    recipe = get_recipe("int8-static")
    loaded = recipe.load(source.entry.arch, source.files)
    again = served_form(recipe, recipe.trainable(loaded), mnist_test.images[:8])
    with torch.no_grad():
        assert torch.equal(again.served(mnist_test.images), loaded.served(mnist_test.images))


def test_repair_fixes_held_out_triggers_and_registers_an_int8_pair(runs, user_zoo, mnist_test):
    path, ids = runs
    with Store(path) as store:
        report = repair_run(store, ids["lenet5-int8-static"], replace(QUICK, checkpoint="last"),
                            register="always")
        held = _held_out_images(store, report.run_id, report.heldout_positions)
        assert [r.pair_after for r in store.list_repairs(report.run_id)] == [report.repaired_pair]
    assert report.registered and report.verdict in ("better", "worse")
    assert report.best_epoch == report.epochs_run == QUICK.epochs
    assert report.heldout_repaired_before == 0.0  # every held-out trigger deviated before
    assert report.heldout_repaired_rate >= 0.3
    assert report.train_repaired_rate >= report.heldout_repaired_rate - 0.2
    assert set(report.train_positions).isdisjoint(report.heldout_positions)
    assert abs(report.accuracy_after - report.accuracy_before) < 0.01
    repaired = load_pair(report.repaired_pair)  # loads from the files, like every command does
    assert agreement_rate(repaired, held) == pytest.approx(report.heldout_repaired_rate)
    assert unrepaired_margin(repaired, held) == report.heldout_unrepaired_margin
    assert (report.heldout_unrepaired_margin is None) == (report.heldout_repaired_rate == 1.0)
    kinds = {type(m).__module__ for m in repaired.compressed.module.modules()}
    assert any(k.startswith("torch.ao.nn.quantized") for k in kinds)
    assert repaired.compressed.module.conv1.weight().dtype == torch.qint8
    manifest = json.loads((user_zoo / "manifest.json").read_text())
    entry = next(p for p in manifest["pairs"] if p["id"] == report.repaired_pair)
    assert entry["derived_from"] == "lenet5-int8-static" and entry["compression"] == "int8-static"
    assert all(not f.endswith((".pkl", ".pickle")) for f in entry["files"].values())


def test_an_int8_repair_that_adds_disagreements_says_so_and_keeps_the_model_when_none_qualifies(
        runs, user_zoo):
    """The epoch choice never keeps a candidate that adds validation disagreements. On the int8
    pair every whole trained epoch adds some, so without blended candidates the model is kept
    as it was and the verdict says "unchanged" (the last epoch, kept without that rule, adds
    disagreements). Validation digits are not the test set: when the kept candidate still adds
    test disagreements, the verdict says "worse", says why, and nothing is registered."""
    path, ids = runs
    events = []
    with Store(path) as store:
        kept = repair_run(store, ids["lenet5-int8-static"], replace(
            QUICK, blend_shares=(), head_grid=False, research=True, research_max_queries=100,
            profile_queries=100), register="if-better", emit=events.append)
        last = repair_run(store, ids["lenet5-int8-static"], replace(QUICK, checkpoint="last"),
                          register="never")
        default = repair_run(store, ids["lenet5-int8-static"], QUICK, register="if-better")
    assert QUICK.checkpoint == "no-rise"
    assert (last.disagreements_after > last.disagreements_before
            or last.corrupted_disagreements_after > last.corrupted_disagreements_before)
    assert kept.best_epoch == 0 and kept.verdict == "unchanged" and not kept.registered
    assert kept.heldout_repaired_rate == kept.heldout_repaired_before
    assert kept.disagreements_after == kept.disagreements_before
    assert kept.corrupted_disagreements_after == kept.corrupted_disagreements_before
    assert kept.verdict_reasons[0].startswith("No training epoch did better than the unrepaired")
    # The model kept as it was is not searched again: its numbers are the ones before.
    assert kept.research_success_after == kept.research_success_before
    assert kept.profile_share_after == kept.profile_share_before
    assert not any(isinstance(e, ResearchProgress) and e.phase == "after" for e in events)
    assert any(isinstance(e, ResearchProgress) and e.phase == "before" for e in events)
    rose = [(name, before, after) for name, before, after in (
        ("test", default.disagreements_before, default.disagreements_after),
        ("corrupted-test", default.corrupted_disagreements_before,
         default.corrupted_disagreements_after)) if after > before]
    for name, before, after in rose:
        assert default.verdict == "worse" and not default.registered
        assert any(f"{name} images ({before} -> {after}" in r for r in default.verdict_reasons)
    if default.verdict == "unchanged":
        assert default.best_epoch == 0 and not default.registered


def test_an_int8_repair_narrows_the_heads_grid_and_trains_the_served_one_when_that_adds_disagreements(
        runs, user_zoo, monkeypatch):
    """By default an int8-static repair first narrows its head's output grid to where the
    top-1 is decided (fewer close classes rounded to a tie); the report says how. A grid that
    alone adds validation disagreements, like one that clips every logit above 0.3, is dropped
    before training: the repair is then the one of the head as served, number for number."""
    import compd_core.repair.run as repair_module

    path, ids = runs
    run_id = ids["lenet5-int8-static"]
    with Store(path) as store:
        narrowed = repair_run(store, run_id, QUICK, register="never")
        served = repair_run(store, run_id, replace(QUICK, head_grid=False), register="never")
        monkeypatch.setattr(repair_module, "decision_range", lambda model, images: (0.0, 0.3))
        clipped = repair_run(store, run_id, QUICK, register="never")
    low, high = narrowed.head_range
    assert low <= 0 < high < 20
    assert narrowed.head_step_after == pytest.approx((high - low) / 255, rel=1e-3)  # range rounded
    assert narrowed.head_step_after < narrowed.head_step_before / 4
    assert narrowed.verdict != "unchanged"  # a new grid is a new model, even with no epoch kept
    assert narrowed.rank_by == "triggers" and not narrowed.head_grid_dropped
    assert narrowed.corrupted_disagreements_after < narrowed.corrupted_disagreements_before
    assert clipped.head_grid_dropped and clipped.head_range is None and clipped.head_step_after is None
    assert clipped.head_step_before == narrowed.head_step_before  # the served step, reported
    assert "grid as served (narrowed, it alone added validation disagreements)" in kept_words(clipped)
    assert not served.head_grid_dropped and served.head_step_before is None
    same = ("best_epoch", "best_share", "epochs_run", "final_loss", "heldout_repaired_rate",
            "train_repaired_rate", "accuracy_after", "disagreements_after",
            "corrupted_disagreements_after", "verdict", "verdict_reasons")
    assert {k: getattr(clipped, k) for k in same} == {k: getattr(served, k) for k in same}


def _assert_keeps_the_masks(before: torch.nn.Module, after: torch.nn.Module) -> None:
    """A repaired pruned model keeps every mask and its zeros, and was trained."""
    detach_derived_weights(after)  # pruned weights are derived in forward
    zeros = total = 0
    for name in PRUNED_LAYERS:
        mask = before.get_submodule(name).weight_mask
        layer = after.get_submodule(name)
        assert torch.equal(layer.weight_mask, mask)
        assert torch.all(layer.weight[mask == 0] == 0)
        assert torch.equal(layer.weight, layer.weight_orig * mask)
        zeros, total = zeros + int((layer.weight == 0).sum()), total + layer.weight.numel()
    assert zeros / total >= 0.9
    assert not torch.equal(after.head.weight_orig, before.head.weight_orig), "nothing was trained"


def test_a_black_box_compressed_model_is_refused_before_anything_runs(tmp_path, user_zoo):
    with Store(tmp_path / "onnx.sqlite") as store:
        run_id = store.create_run("lenet5-onnx-int8", "compd", SearchSettings(), 10, 0, "mnist")
        with pytest.raises(WhiteBoxRequiredError, match="cannot be repaired.*black box.*not fine-tuned"):
            repair_run(store, run_id, QUICK)
        assert store.list_repairs(run_id) == []
    assert not user_zoo.exists()


def test_cli_refuses_a_black_box_in_one_line(tmp_path):
    db = tmp_path / "onnx.sqlite"
    with Store(db) as store:
        run_id = store.create_run("lenet5-onnx-int8", "compd", SearchSettings(), 10, 0, "mnist")
    result = _cli(["--run", run_id, "--db", str(db)], tmp_path)
    assert result.returncode == 2
    assert "cannot be repaired" in result.stderr and "Traceback" not in result.stderr


def test_stopping_a_repair_leaves_the_original_pair_untouched(runs, user_zoo, mnist_test):
    path, ids = runs
    pair = load_pair("lenet5-int8-static")
    state_before = {k: v.clone() for k, v in pair.compressed.module.state_dict().items()
                    if isinstance(v, torch.Tensor)}
    probs_before = pair.predict(mnist_test.images[:500]).compressed
    stop = threading.Event()
    epochs_seen = []

    def emit(event) -> None:
        if isinstance(event, EpochFinished):
            epochs_seen.append(event.epoch)
            if event.epoch == 1:
                stop.set()

    with Store(path) as store:
        repairs_before = store.list_repairs(ids["lenet5-int8-static"])
        report = repair_run(store, ids["lenet5-int8-static"], QUICK, emit=emit, stop=stop)
        assert store.list_repairs(ids["lenet5-int8-static"]) == repairs_before
    assert report.stopped and report.repaired_pair is None
    assert epochs_seen == [0, 1] and report.epochs_run == 1  # epoch 0: the model before training
    assert not (user_zoo / "manifest.json").exists()
    again = load_pair("lenet5-int8-static")
    assert torch.equal(again.predict(mnist_test.images[:500]).compressed, probs_before)
    for key, value in pair.compressed.module.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state_before[key])


def test_a_bf16_repair_takes_smaller_steps_unless_told_otherwise(tmp_path, user_zoo):
    """bf16 rounds to steps about 7x finer than int8: at int8's rate every trained candidate
    added disagreements (bench/REPAIR.md), so bf16 has its own default."""
    with Store(tmp_path / "bf16.sqlite") as store:
        spec = CampaignSpec(pair="lenet5-bf16", strategy="compd", seeds=10,
                            settings=SearchSettings(max_queries=500), rng_seed=0)
        run_id = run_campaign(spec, store).run_id
        assert Repair(store, run_id).settings.lr == 2e-5
        assert Repair(store, run_id, RepairSettings(lr=1e-4)).settings.lr == 1e-4


def test_a_distilled_repair_trains_longer_and_counts_its_own_epochs(tmp_path, user_zoo):
    """A student's weights are float, so longer training crosses no rounding step and repaired
    more (bench/REPAIR.md): it trains 24 epochs unless told otherwise, and its progress counts 24."""
    events = []
    with Store(tmp_path / "distilled.sqlite") as store:
        spec = CampaignSpec(pair="lenet5-distilled", strategy="compd", seeds=10,
                            settings=SearchSettings(max_queries=500), rng_seed=0)
        run_id = run_campaign(spec, store).run_id
        repair = Repair(store, run_id, emit=events.append)
        assert repair.settings.epochs == 24 and repair.settings.lr == 5e-4
        assert repair.settings.change_scales == (0.5, 0.75, 1.25, 1.5)
        assert Repair(store, run_id, RepairSettings(epochs=3)).settings.epochs == 3
        repair.emit(StageStarted("training", "24 epochs"))
    assert events[-1].total == 24  # the training stage counts the student's own epochs


def test_a_missing_selection_name_is_an_error_not_all_triggers(runs, user_zoo):
    path, ids = runs
    with Store(path) as store:
        with pytest.raises(ConfigError, match="no selection named 'typo'"):
            repair_run(store, ids["lenet5-int8-static"], QUICK, selection="typo")


def test_a_hand_picked_selection_is_what_gets_split(runs, user_zoo):
    path, ids = runs
    run_id = ids["lenet5-int8-static"]
    with Store(path) as store:
        found = [r.seed.position for r in store.load_results(run_id, details=False) if r.found]
        store.set_selection(run_id, found[:6], name="picked")
        report = repair_run(store, run_id, QUICK, selection="picked")
    assert report.selection == "picked" and report.triggers == 6
    assert sorted(report.train_positions + report.heldout_positions) == sorted(found[:6])


def test_cli_json_reports_every_number_the_issue_asks_for(runs, user_zoo):
    """On the pruned pair, whose re-search and profile take seconds (on the int8 pair, its
    probes took 108 of the test's 134 s)."""
    from typer.testing import CliRunner

    from compd_core.cli.repair import repair

    app = typer.Typer()
    app.command()(repair)
    path, ids = runs
    result = CliRunner().invoke(app, [
        "--run", ids["lenet5-prune90"], "--db", str(path), "--epochs", "2", "--variants", "2",
        "--batch-size", "32", "--research-budget", "200", "--mined-seeds", "32",
        "--register", "always", "--json",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("repaired_pair", "heldout_repaired_rate", "train_repaired_rate", "accuracy_before",
                "accuracy_after", "disagreements_before", "disagreements_after",
                "research_success_before", "research_success_after",
                "research_median_queries_before", "research_median_queries_after",
                "corrupted_disagreements_before", "corrupted_disagreements_after",
                "profile_share_before", "profile_share_after", "mined_triggers", "best_epoch"):
        assert report[key] is not None, key
    assert report["verdict"] in ("better", "worse", "unchanged") and report["registered"] is True
    assert report["learning_rate"] == 5e-4  # the default: no --lr given
    assert report["change_scales"] == [0.5, 0.75, 1.25, 1.5]  # a pruned model's default
    assert (report["verdict"] != "better") == bool(report["verdict_reasons"])
    assert report["corrupted_images"] == 18 * report["test_images"]
    assert report["profile_linf"] == pytest.approx(16 / 255)
    assert (report["heldout_unrepaired_margin"] is None) == (report["heldout_repaired_rate"] == 1.0)
    assert 0 < report["research_success_before"] <= 1
    assert report["research_seeds"] == SEEDS - len(report["train_positions"])
    assert load_pair(report["repaired_pair"]).name == report["repaired_pair"]


def test_ctrl_c_stops_a_cli_repair_after_the_current_epoch(runs, user_zoo, monkeypatch, capsys):
    """Ctrl-C during training: the epoch ends, nothing is registered, one `stopped:` line, 130."""
    import compd_core.repair as repair_package
    from compd_core.cli import main

    path, ids = runs
    epochs: list[int] = []
    real_repair_run = repair_package.repair_run

    def first_epoch(event) -> bool:
        if isinstance(event, EpochFinished):
            epochs.append(event.epoch)
        return isinstance(event, EpochFinished) and event.epoch == 1

    def interrupted_repair_run(*args, emit, stop, **kwargs):
        return real_repair_run(*args, emit=ctrl_c_when(emit, stop, first_epoch), stop=stop, **kwargs)

    monkeypatch.setattr(repair_package, "repair_run", interrupted_repair_run)  # what the CLI calls
    with Store(path) as store:
        repairs_before = len(store.list_repairs(ids["lenet5-int8-static"]))
    with pytest.raises(SystemExit) as exit_info:
        main(["repair", "--run", ids["lenet5-int8-static"], "--db", str(path), "--epochs", "20",
              "--variants", "2", "--batch-size", "32", "--no-research"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 130, err
    assert max(epochs) == 1  # stopped after the epoch that was running, not at epoch 20
    assert [line for line in err.splitlines() if line.startswith("stopped:")] == [
        f"stopped: nothing registered; run {ids['lenet5-int8-static']}, its triggers and pair "
        "lenet5-int8-static are as they were"]
    assert not (user_zoo / "manifest.json").exists()
    with Store(path) as store:
        assert len(store.list_repairs(ids["lenet5-int8-static"])) == repairs_before


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from compd_core.cli import app, main\n"
         "from compd_core.cli.repair import repair\napp.command('repair')(repair)\n"
         f"main({['repair', *args]!r})"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, USER_ZOO_ENV: str(tmp_path / "z")},
    )


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--lr", "inf", "--lr must be a finite number in (0, 1], got inf"),
    ("--ce-weight", "nan", "--ce-weight must be a finite number in [0, inf), got nan"),
    ("--epochs", "-1", "--epochs must be a whole number >= 1, got -1"),
    ("--register", "sometimes", "--register must be one of if-better, always, never"),
    ("--blend-shares", "0.1,half", "--blend-shares must be comma-separated numbers strictly between 0"),
    ("--blend-shares", "0.5,2", "--blend-shares must be numbers strictly between 0 and 1"),
    ("--checkpoint", "best", "--checkpoint must be one of no-rise, fewest, last, got 'best'"),
    ("--change-scales", "0.5,twice", "--change-scales must be comma-separated numbers above 0"),
    ("--change-scales", "0.5,-1", "--change-scales must be numbers above 0 and at most 4"),
    ("--anchor-weight", "-1", "--anchor-weight must be a finite number in [0, inf), got -1"),
    ("--rank-by", "best", "--rank-by must be one of failures, triggers, got 'best'"),
])
def test_cli_refuses_a_bad_setting_in_one_line_before_opening_anything(
        tmp_path, user_zoo, flag, value, words):
    """In this process (the black-box refusal above starts a process of its own)."""
    result = compd("repair", "--run", "no-such-run", "--db", str(tmp_path / "missing.sqlite"),
                   flag, value)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_small_selection_of_eight_triggers_makes_no_figure_worse(runs, user_zoo):
    """Eight hand-picked triggers, default settings: four trained on (one of them picks the
    epoch), four held out. Every figure of the report is at least as good as before, and the
    registered pruned model keeps its masks."""
    path, ids = runs
    run_id = ids["lenet5-prune90"]
    with Store(path) as store:
        found = [r.seed.position for r in store.load_results(run_id, details=False) if r.found]
        store.set_selection(run_id, found[:8], name="eight")
        report = repair_run(store, run_id, RepairSettings(research_max_queries=300),
                            selection="eight")
    assert report.triggers == 8 and len(report.heldout_positions) == 4
    assert report.validation_triggers == 1 and report.mined_triggers >= 100
    assert report.heldout_repaired_rate > report.heldout_repaired_before
    assert report.train_repaired_rate > report.train_repaired_before
    assert report.accuracy_after >= report.accuracy_before
    assert report.disagreements_after <= report.disagreements_before
    assert report.corrupted_disagreements_after <= report.corrupted_disagreements_before
    assert report.profile_share_after <= report.profile_share_before
    assert report.research_success_after <= report.research_success_before
    assert report.verdict == "better" and report.verdict_reasons == []
    assert report.registered and load_pair(report.repaired_pair).name == report.repaired_pair
    _assert_keeps_the_masks(load_pair("lenet5-prune90").compressed.module,
                            load_pair(report.repaired_pair).compressed.module)


def test_the_profile_of_a_run_that_asked_for_a_sure_original_counts_only_such_deviations(
        tmp_path, user_zoo):
    """A run searched with a minimum margin for the original is profiled with that margin:
    the deviations it excluded do not count against (or for) its repair."""
    sure = Criterion(min_margin_original=0.8)
    with Store(tmp_path / "sure.sqlite") as store:
        summary = run_campaign(CampaignSpec(
            pair="lenet5-prune90", strategy="compd", seeds=SEEDS, rng_seed=3,
            settings=SearchSettings(max_queries=1000, criterion=sure)), store)
        report = repair_run(store, summary.run_id, replace(
            QUICK, epochs=1, research=True, research_max_queries=200, profile_budget=32,
            profile_queries=200), register="never")
        trained = set(report.train_positions)
        seeds = [r.seed for r in store.load_results(summary.run_id) if r.seed.position not in trained]
    pair, stop = load_pair("lenet5-prune90"), threading.Event()
    strict = deviation_share(pair, seeds, 32, 200, 3, stop)
    asked = deviation_share(pair, seeds, 32, 200, 3, stop, sure)
    assert report.profile_seeds == len(seeds)
    assert report.profile_share_before == asked
    assert (strict - asked) * len(seeds) >= 2, (strict, asked)  # what the strict profile adds
