"""Measure a pair on a dataset: accuracy of each model, agreement, and latency."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.models.base import Classifier
from compd_core.models.pair import ModelPair


@dataclass(frozen=True)
class PairEvaluation:
    """Per-input predictions of both models on a dataset and the numbers derived from them."""

    labels: torch.Tensor
    probs_original: torch.Tensor
    probs_compressed: torch.Tensor

    @property
    def pred_original(self) -> torch.Tensor:
        return self.probs_original.argmax(1)

    @property
    def pred_compressed(self) -> torch.Tensor:
        return self.probs_compressed.argmax(1)

    @property
    def accuracy_original(self) -> float:
        return float((self.pred_original == self.labels).float().mean())

    @property
    def accuracy_compressed(self) -> float:
        return float((self.pred_compressed == self.labels).float().mean())

    @property
    def disagreement_indices(self) -> torch.Tensor:
        """Positions (in the dataset) where the top-1 labels differ."""
        return torch.nonzero(self.pred_original != self.pred_compressed).flatten()

    @property
    def disagreements(self) -> int:
        return len(self.disagreement_indices)

    @property
    def agreement_rate(self) -> float:
        return 1.0 - self.disagreements / len(self.labels)


def evaluate_pair(pair: ModelPair, dataset: ImageDataset) -> PairEvaluation:
    """Both models' probabilities on every image of ``dataset``."""
    prediction = pair.predict(dataset.images)
    return PairEvaluation(dataset.labels, prediction.original, prediction.compressed)


def latency_ms(model: Classifier, input_shape: tuple[int, int, int], batch: int = 256,
               repeats: int = 5) -> float:
    """Median milliseconds for one batch of ``batch`` images (after one warm-up call)."""
    x = torch.rand((batch, *input_shape), generator=torch.Generator().manual_seed(0))
    model.predict_proba(x)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(x)
        timings.append((time.perf_counter() - start) * 1000.0)
    return float(sorted(timings)[len(timings) // 2])
