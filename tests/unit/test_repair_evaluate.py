"""Repair's shares are exact ratios of counts, so a threshold like 0.9 means what it says."""

from __future__ import annotations

import statistics

import pytest
import torch

from compd_core.repair.evaluate import agreement_rate, strictly_agrees, unrepaired_margin
from compd_core.repair.report import RepairReport, unrepaired_words


def test_45_agreeing_of_50_digits_is_exactly_ninety_percent(int8_pair, mnist_test):
    prediction = int8_pair.predict(mnist_test.images)
    agrees = strictly_agrees(prediction.compressed, prediction.labels_original)
    disagreeing = (~agrees).nonzero().flatten()
    assert len(disagreeing) >= 5, "the shipped int8 pair disagrees on a few test digits"
    chosen = torch.cat([disagreeing[:5], agrees.nonzero().flatten()[:45]])
    assert float(agrees[chosen].float().mean()) != 0.9  # the float32 mean this guards against
    assert agreement_rate(int8_pair, mnist_test.images[chosen]) == 0.9
    assert agreement_rate(int8_pair, mnist_test.images[:0]) == 0.0


def test_the_unrepaired_margin_is_the_originals_median_margin_where_the_models_still_differ(
        int8_pair, mnist_test):
    prediction = int8_pair.predict(mnist_test.images)
    agrees = strictly_agrees(prediction.compressed, prediction.labels_original)
    chosen = torch.cat([(~agrees).nonzero().flatten()[:5], agrees.nonzero().flatten()[:45]])
    top_two = prediction.original[chosen[:5]].topk(2, dim=1).values
    expected = statistics.median((top_two[:, 0] - top_two[:, 1]).tolist())
    assert 0 < expected < 1
    assert unrepaired_margin(int8_pair, mnist_test.images[chosen]) == pytest.approx(expected)
    assert unrepaired_margin(int8_pair, mnist_test.images[chosen[5:]]) is None  # all agree
    assert unrepaired_margin(int8_pair, mnist_test.images[:0]) is None


def _report(rate: float | None, margin: float | None) -> RepairReport:
    return RepairReport(run_id="r", selection="all", pair_before="p", repaired_pair=None,
                        stopped=False, triggers=100, train_positions=list(range(50)),
                        heldout_positions=list(range(50, 100)), heldout_repaired_rate=rate,
                        heldout_unrepaired_margin=margin)


def test_the_words_say_how_sure_the_original_is_where_the_repair_missed():
    unsure = unrepaired_words(_report(0.9, 0.012))
    assert unsure.startswith("At the 5 held-out triggers left unrepaired")
    assert "0.012" in unsure and "nearly undecided" in unsure and unsure.endswith(".")
    sure = unrepaired_words(_report(0.98, 0.4))
    assert "the 1 held-out trigger left" in sure and "undecided there" not in sure
    assert unrepaired_words(_report(1.0, None)) == ""
    assert unrepaired_words(_report(None, None)) == ""  # stopped before it was measured
