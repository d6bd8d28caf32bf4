"""Repair's shares are exact ratios of counts, so a threshold like 0.9 means what it says."""

from __future__ import annotations

import torch

from compd_core.repair.evaluate import agreement_rate, strictly_agrees


def test_45_agreeing_of_50_digits_is_exactly_ninety_percent(int8_pair, mnist_test):
    prediction = int8_pair.predict(mnist_test.images)
    agrees = strictly_agrees(prediction.compressed, prediction.labels_original)
    disagreeing = (~agrees).nonzero().flatten()
    assert len(disagreeing) >= 5, "the shipped int8 pair disagrees on a few test digits"
    chosen = torch.cat([disagreeing[:5], agrees.nonzero().flatten()[:45]])
    assert float(agrees[chosen].float().mean()) != 0.9  # the float32 mean this guards against
    assert agreement_rate(int8_pair, mnist_test.images[chosen]) == 0.9
    assert agreement_rate(int8_pair, mnist_test.images[:0]) == 0.0
