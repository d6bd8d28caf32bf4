"""Indicators and AUROC against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compd_core.characterize import indicators as I
from compd_core.errors import InvalidInputError

# Rows: a confident call, a tie between two classes, a certain call, a three-way hesitation.
P = torch.tensor(
    [
        [0.7, 0.2, 0.1],
        [0.5, 0.5, 0.0],
        [1.0, 0.0, 0.0],
        [0.4, 0.35, 0.25],
    ]
)


def test_margin_by_hand() -> None:
    assert torch.allclose(I.margin(P), torch.tensor([0.5, 0.0, 1.0, 0.05]), atol=1e-6)


def test_entropy_by_hand() -> None:
    first = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))  # 0.80182
    last = -(0.4 * math.log(0.4) + 0.35 * math.log(0.35) + 0.25 * math.log(0.25))  # 1.08070
    expected = torch.tensor([first, math.log(2), 0.0, last])
    assert torch.allclose(I.entropy(P), expected, atol=1e-6)
    assert abs(first - 0.80182) < 1e-5 and abs(last - 1.08053) < 1e-5


def test_gini_by_hand() -> None:
    # 1 - (0.49 + 0.04 + 0.01); 1 - (0.25 + 0.25); 1 - 1; 1 - (0.16 + 0.1225 + 0.0625)
    assert torch.allclose(I.gini(P), torch.tensor([0.46, 0.5, 0.0, 0.655]), atol=1e-6)


def test_least_confidence_by_hand() -> None:
    assert torch.allclose(I.least_confidence(P), torch.tensor([0.3, 0.5, 0.0, 0.6]), atol=1e-6)


def test_risk_scores_point_towards_disagreement() -> None:
    """Every risk score ranks the certain row lowest and the hesitant rows highest."""
    for name in I.INDICATORS:
        risk = I.risk_score(name, P)
        assert int(risk.argmin()) == 2, name
        assert float(risk[2]) == pytest.approx(0.0, abs=1e-6), name
    assert torch.allclose(I.risk_score("margin", P), 1 - I.margin(P))
    assert torch.equal(I.risk_score("entropy", P), I.entropy(P))


def test_auroc_by_hand() -> None:
    # Positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 (positive, negative)
    # pairs, 3 are ordered right, so AUROC = 3/4.
    assert I.auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # A tie counts one half: pairs (0.5 vs 0.5) = 0.5, (0.9 vs 0.5) = 1 -> (0.5 + 1) / 2.
    assert I.auroc([0.5, 0.5, 0.9], [False, True, True]) == pytest.approx(0.75)
    # Perfect and reversed rankings.
    assert I.auroc(torch.tensor([0.1, 0.2, 0.9]), torch.tensor([0, 0, 1])) == 1.0
    assert I.auroc(torch.tensor([0.9, 0.2, 0.1]), torch.tensor([0, 0, 1])) == 0.0


def test_auroc_of_indicators_on_the_hand_case() -> None:
    """Say the tie (row 1) and the three-way hesitation (row 3) disagree.

    Margin, Gini and least confidence put both above the other rows (AUROC 1). Entropy does
    not: the tie has entropy ln 2 = 0.693, below the confident row's 0.802, so one of the four
    (disagreeing, agreeing) pairs is ordered wrong and AUROC = 3/4.
    """
    disagree = np.array([False, True, False, True])
    expected = {"margin": 1.0, "entropy": 0.75, "gini": 1.0, "least_confidence": 1.0}
    for name, value in expected.items():
        assert I.auroc(I.risk_score(name, P), disagree) == pytest.approx(value), name


def test_auroc_is_nan_with_one_class_only() -> None:
    assert math.isnan(I.auroc([0.1, 0.2], [False, False]))
    assert math.isnan(I.auroc([0.1, 0.2], [True, True]))
    assert math.isnan(I.auroc([], []))


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="K >= 2"):
        I.margin(torch.ones((3, 1)))
    with pytest.raises(InvalidInputError):
        I.entropy(torch.ones(3))
    with pytest.raises(InvalidInputError, match="3 scores but 2"):
        I.auroc([0.1, 0.2, 0.3], [True, False])
