"""Repair settings are checked at the door, and the verdict says in words what got worse."""

from __future__ import annotations

import math
import re

import pytest
from torch import nn

from compd_core.cli.common import out
from compd_core.cli.repair import _print_report
from compd_core.errors import ConfigError
from compd_core.repair import RepairReport, RepairSettings, for_compression
from compd_core.repair.settings import CHANGE_SCALES
from compd_core.repair.train import fine_tune
from compd_core.repair.verdict import judge


@pytest.mark.parametrize(("name", "value", "message"), [
    ("lr", math.inf, "--lr must be a finite number in \\(0, 1\\], got inf"),
    ("lr", 0.0, "--lr must be a finite number"),
    ("ce_weight", math.nan, "--ce-weight must be a finite number in \\[0, inf\\), got nan"),
    ("kl_weight", -1.0, "--kl-weight must be a finite number"),
    ("temperature", math.inf, "--temperature must be a finite number"),
    ("mix_ratio", 1.0, "--mix-ratio must be a finite number in \\[0, 0.99\\]"),
    ("heldout_fraction", 0.0, "--heldout-fraction"),
    ("validation_fraction", math.nan, "--validation-fraction"),
    ("max_accuracy_drop", -0.1, "--max-accuracy-drop"),
    ("min_heldout_repaired", 1.5, "--min-heldout-repaired"),
    ("profile_budget", 0, "--profile-budget must be a whole number >= 1"),
    ("profile_budget", 256, "--profile-budget must be a whole number of grey levels from 1 to 255"),
    ("epochs", -1, "--epochs must be a whole number >= 1, got -1"),
    ("epochs", 2.5, "--epochs must be a whole number"),
    ("epochs", True, "--epochs must be a whole number"),
    ("batch_size", 1, "--batch-size must be a whole number >= 2"),
    ("variants_per_trigger", -3, "--variants-per-trigger"),
    ("mined_seeds", -1, "--mined-seeds"),
    ("max_disagreement_rise", -1, "--max-disagreement-rise"),
    ("research_max_queries", 0, "--research-max-queries"),
    ("seed", -5, "--seed"),
])
def test_each_bad_setting_is_refused_with_its_name_and_the_allowed_range(name, value, message):
    with pytest.raises(ConfigError, match=message):
        RepairSettings(**{name: value})


def test_both_loss_weights_zero_is_refused_with_a_fix():
    with pytest.raises(ConfigError, match="both 0.*set at least one"):
        RepairSettings(ce_weight=0.0, kl_weight=0.0)


def test_the_defaults_and_edge_values_are_accepted():
    RepairSettings()
    RepairSettings(mix_ratio=0.0, ce_weight=0.0, validation_fraction=0.0, mined_seeds=0,
                   max_accuracy_drop=0.0, min_heldout_repaired=1.0, lr=1.0)


def test_a_bf16_model_gets_a_smaller_learning_rate_unless_one_is_given():
    assert RepairSettings().lr is None
    assert for_compression(RepairSettings(), "bf16").lr == 2e-5
    assert for_compression(RepairSettings(), "int8-static").lr == 5e-4
    assert for_compression(RepairSettings(), "torchscript").lr == 5e-4
    assert for_compression(RepairSettings(lr=1e-3), "bf16").lr == 1e-3
    with pytest.raises(ConfigError, match="--lr must be a finite number"):
        RepairSettings(lr="fast")  # type: ignore[arg-type]


def test_distilled_and_pruned_models_train_longer_unless_told_otherwise():
    assert RepairSettings().epochs is None
    for kind in ("distilled", "prune50", "prune90"):
        assert for_compression(RepairSettings(), kind).epochs == 24
    for kind in ("int8-static", "int8-qat", "int8-dynamic", "bf16", "onnx-int8", "torchscript"):
        assert for_compression(RepairSettings(), kind).epochs == 16
    assert for_compression(RepairSettings(epochs=3), "distilled").epochs == 3
    assert for_compression(RepairSettings(lr=1e-3), "distilled") == RepairSettings(
        lr=1e-3, epochs=24, change_scales=CHANGE_SCALES, head_grid=False)
    with pytest.raises(ConfigError, match="--epochs must be a whole number >= 1"):
        RepairSettings(epochs=0)


def test_distilled_and_pruned_models_learn_scaled_trigger_changes_unless_told_otherwise():
    assert RepairSettings().change_scales is None
    for kind in ("distilled", "prune50", "prune90"):
        assert for_compression(RepairSettings(), kind).change_scales == (0.5, 0.75, 1.25, 1.5)
    for kind in ("int8-static", "int8-qat", "int8-dynamic", "bf16", "onnx-int8", "torchscript"):
        assert for_compression(RepairSettings(), kind).change_scales == ()
    assert for_compression(RepairSettings(change_scales=()), "prune90").change_scales == ()
    assert for_compression(RepairSettings(change_scales=(2.0,)), "int8-static").change_scales == (2.0,)


def test_int8_models_with_a_quantized_head_narrow_its_grid_unless_told_otherwise():
    assert RepairSettings().head_grid is None
    for kind in ("int8-static", "int8-qat"):
        assert for_compression(RepairSettings(), kind).head_grid is True
    for kind in ("int8-dynamic", "bf16", "distilled", "prune90", "onnx-int8", "torchscript"):
        assert for_compression(RepairSettings(), kind).head_grid is False
    assert for_compression(RepairSettings(head_grid=False), "int8-static").head_grid is False
    with pytest.raises(ConfigError, match="head_grid must be True or False, got 'yes'"):
        RepairSettings(head_grid="yes")  # type: ignore[arg-type]


def test_candidates_are_ranked_by_triggers_left_unless_told_failures():
    assert RepairSettings().rank_by == "triggers"
    assert RepairSettings(rank_by="failures").rank_by == "failures"
    with pytest.raises(ConfigError, match="--rank-by must be one of failures, triggers, got 'best'"):
        RepairSettings(rank_by="best")  # type: ignore[arg-type]


@pytest.mark.parametrize("resolved", [{}, {"lr": 1e-3}, {"epochs": 2}])
def test_training_without_a_resolved_learning_rate_or_epoch_count_is_refused(resolved):
    with pytest.raises(ValueError, match="for_compression"):
        fine_tune(nn.Linear(2, 2), None, None, RepairSettings(**resolved))  # type: ignore[arg-type]


NUMBERS = dict(heldout_repaired=0.9, accuracy_before=0.978, accuracy_after=0.977,
               disagreements_before=6, disagreements_after=6, corrupted_before=374,
               corrupted_after=370)


def test_a_repair_within_every_threshold_is_better():
    verdict = judge(RepairSettings(), **NUMBERS)
    assert verdict.better and verdict.reasons == ()


@pytest.mark.parametrize(("change", "words"), [
    ({"heldout_repaired": 0.25}, "Only 25% of the held-out triggers are repaired (at least 50% asked)"),
    ({"accuracy_after": 0.974}, "Test accuracy fell by 0.40 points (97.80% -> 97.40%; at most 0.30"),
    ({"disagreements_after": 7}, "The models now disagree on more test images (6 -> 7; no rise allowed)"),
    ({"corrupted_after": 375}, "disagree on more corrupted-test images (374 -> 375"),
])
def test_each_threshold_missed_is_one_plain_sentence(change, words):
    verdict = judge(RepairSettings(), **{**NUMBERS, **change})
    assert verdict.outcome == "worse" and len(verdict.reasons) == 1
    assert words in verdict.reasons[0]


def test_the_user_sets_the_thresholds():
    numbers = {**NUMBERS, "accuracy_after": 0.974, "disagreements_after": 9}
    assert not judge(RepairSettings(), **numbers).better
    lenient = RepairSettings(max_accuracy_drop=0.005, max_disagreement_rise=3)
    assert judge(lenient, **numbers).better


def test_every_missed_threshold_is_a_sentence_of_its_own():
    """The page and the CLI join the reasons into one paragraph: each starts with a capital."""
    numbers = {**NUMBERS, "heldout_repaired": 0.25, "disagreements_after": 11, "corrupted_after": 380}
    verdict = judge(RepairSettings(max_disagreement_rise=3), **numbers)
    assert [reason.split(" ")[0] for reason in verdict.reasons] == ["Only", "The", "The"]
    assert verdict.reasons[1] == ("The models now disagree on more test images (6 -> 11; at most 3 "
                                  "more allowed).")


def test_a_repair_that_kept_the_model_unchanged_says_so():
    verdict = judge(RepairSettings(), **{**NUMBERS, "unchanged": True})
    assert verdict.outcome == "unchanged" and not verdict.better and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("No training epoch did better than the unrepaired model")
    assert "kept exactly as it was" in verdict.reasons[0]


def test_the_cli_says_an_unchanged_repair_is_unchanged_and_registers_nothing():
    with out.capture() as captured:
        _print_report(_report(verdict="unchanged", best_epoch=0,
                              verdict_reasons=["No training epoch did better than the unrepaired "
                                               "model on the validation data."]))
    lines = captured.get().splitlines()
    assert lines[0].startswith("Verdict: unchanged. No training epoch did better")
    assert lines[-1] == "not registered as a pair: it is the model you already have"


@pytest.mark.parametrize(("change", "words"), [
    ({"anchor_weight": -0.1}, "--anchor-weight must be a finite number in [0, inf)"),
    ({"blend_shares": (0.25, 1.0)}, "--blend-shares must be numbers strictly between 0 and 1"),
    ({"blend_shares": [0.25]}, "--blend-shares must be numbers strictly between 0 and 1"),
    ({"checkpoint": "latest"}, "--checkpoint must be one of no-rise, fewest, last, got 'latest'"),
    ({"change_scales": (0.5, 0.0)}, "--change-scales must be numbers above 0 and at most 4"),
    ({"change_scales": (float("nan"),)}, "--change-scales must be numbers above 0 and at most 4"),
    ({"change_scales": (1.5, 5.0)}, "--change-scales must be numbers above 0 and at most 4"),
    ({"change_scales": [0.5]}, "--change-scales must be numbers above 0 and at most 4"),
])
def test_the_conservative_settings_are_checked_at_the_door(change, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        RepairSettings(**change)


def _report(**changes) -> RepairReport:
    values = dict(run_id="r", selection="all", pair_before="lenet5-int8-static",
                  repaired_pair=None, stopped=False, triggers=8, train_positions=[1, 2, 3, 4],
                  heldout_positions=[5, 6, 7, 8], verdict="worse",
                  verdict_reasons=["The models now disagree on more test images (6 -> 9; no "
                                   "rise allowed)."], validation_triggers=1, mined_triggers=400,
                  best_epoch=5, epochs_run=8, learning_rate=5e-4, heldout_repaired_rate=0.75,
                  train_repaired_rate=1.0, accuracy_before=0.9774, accuracy_after=0.978,
                  disagreements_before=6, disagreements_after=9, test_images=1996,
                  corrupted_images=35928, corrupted_disagreements_before=380,
                  corrupted_disagreements_after=370)
    return RepairReport(**{**values, **changes})


def test_the_cli_says_the_verdict_first_and_why_a_worse_repair_was_not_registered():
    with out.capture() as captured:
        _print_report(_report())
    lines = captured.get().splitlines()
    assert lines[0] == ("Verdict: worse. The models now disagree on more test images (6 -> 9; no "
                        "rise allowed).")
    assert "6 -> 9 on 1996 test images, 380 -> 370 on 35928 corrupted ones" in captured.get()
    assert "epoch 5 of 8 kept (learning rate 0.0005)" in " ".join(captured.get().split())
    assert lines[-1].startswith("not registered as a pair because it is worse; run again with "
                                "`--register always`")


def test_the_cli_names_the_scaled_changes_a_repair_learned():
    with out.capture() as captured:
        _print_report(_report(pair_before="lenet5-prune90", change_scales=[0.5, 0.75, 1.25, 1.5]))
    assert ("epoch 5 of 8 kept (learning rate 0.0005; scaled trigger changes 0.5, 0.75, 1.25, 1.5)"
            in " ".join(captured.get().split()))


def test_the_cli_names_the_new_pair_of_a_better_repair():
    with out.capture() as captured:
        _print_report(_report(verdict="better", verdict_reasons=[], registered=True,
                              repaired_pair="lenet5-int8-static-repaired-x"))
    lines = captured.get().splitlines()
    assert lines[0].startswith("Verdict: better by every threshold")
    assert lines[-1].startswith("new pair: lenet5-int8-static-repaired-x")
