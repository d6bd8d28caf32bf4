"""What a model is to this package: a black box from images in [0, 1] to class probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """Metadata a pair needs to check that two models are comparable, and to show them."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W) of one image
    num_classes: int
    class_names: tuple[str, ...]
    kind: str  # adapter family: torch, torchscript, onnx, callable
    size_bytes: int | None = None  # serialized size, for the zoo table and model cards


@runtime_checkable
class Classifier(Protocol):
    """Maps a float32 batch (N, C, H, W) in [0, 1] to probabilities (N, K).

    Preprocessing such as normalisation belongs inside the adapter, so every caller feeds
    the same raw images.
    """

    @property
    def info(self) -> ModelInfo: ...

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class WhiteBoxClassifier(Classifier, Protocol):
    """A classifier that can also hand out a differentiable module producing logits.

    For a quantized model that module is its fake-quant stand-in; for a pruned model the masked
    float model; for a float model (distilled, bf16, original) the model itself.
    """

    def differentiable(self) -> nn.Module: ...
