"""Per-input uncertainty indicators from probabilities, and how well they flag disagreement.

Hu et al. (CAIN 2023) ask which cheap, black-box signal best predicts that a compressed model will
disagree with its original on an input. The four indicators, for probabilities p (N, K) with
p1 >= p2 the two largest:

| indicator | value | risk score (higher = more likely to disagree) |
|---|---|---|
| margin | p1 - p2 | 1 - margin |
| entropy | -sum p log p (natural log, 0 log 0 = 0) | entropy |
| gini | 1 - sum p^2 | gini |
| least_confidence | 1 - p1 | least_confidence |

AUROC only depends on the order of the scores, so ``1 - margin`` ranks exactly as ``-margin``;
it is used so that every risk score is non-negative. An AUROC of 0.5 is chance; 1.0 means
every disagreeing input scores higher than every agreeing one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from compd_core.errors import InvalidInputError

Indicator = Callable[[torch.Tensor], torch.Tensor]


def _check(p: torch.Tensor) -> torch.Tensor:
    if not isinstance(p, torch.Tensor) or p.ndim != 2 or p.shape[1] < 2:
        raise InvalidInputError(
            "indicators need probabilities of shape (N, K) with K >= 2 classes, got "
            f"{getattr(p, 'shape', type(p).__name__)}"
        )
    return p.to(torch.float32)


def margin(p: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability: small when the model hesitates between two classes."""
    top = _check(p).topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats; ``special.entr`` makes 0 log 0 = 0 without NaN."""
    return torch.special.entr(_check(p)).sum(1)


def gini(p: torch.Tensor) -> torch.Tensor:
    """Gini impurity 1 - sum p^2: the chance two independent draws from p differ."""
    p = _check(p)
    return 1.0 - (p * p).sum(1)


def least_confidence(p: torch.Tensor) -> torch.Tensor:
    """1 - top-1 probability."""
    return 1.0 - _check(p).amax(1)


INDICATORS: dict[str, Indicator] = {
    "margin": margin,
    "entropy": entropy,
    "gini": gini,
    "least_confidence": least_confidence,
}


def risk_score(name: str, p: torch.Tensor) -> torch.Tensor:
    """The indicator oriented so that higher means more likely to disagree (see module table)."""
    value = INDICATORS[name](p)
    return 1.0 - value if name == "margin" else value


def auroc(risk: np.ndarray | torch.Tensor, disagree: np.ndarray | torch.Tensor) -> float:
    """Area under the ROC curve of ``risk`` for predicting ``disagree``; NaN if one class only.

    With no disagreement (or nothing but disagreement) there is nothing to rank, so the AUROC
    is undefined; callers report that instead of failing.
    """
    y = np.asarray(disagree, dtype=bool).ravel()
    scores = np.asarray(risk, dtype=np.float64).ravel()
    if len(y) != len(scores):
        raise InvalidInputError(f"{len(scores)} scores but {len(y)} disagreement flags")
    if len(y) == 0 or y.all() or not y.any():
        return math.nan
    return float(roc_auc_score(y, scores))
