"""Corrupted inputs on which the two models disagree, remade exactly as the characterization made
them, and drawn as a strip of images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from compd_core.characterize import CORRUPTIONS, corruption_seed
from compd_core.data.dataset import ImageDataset
from compd_core.models.pair import ModelPair
from dashboard.components.images import image_strip

# The characterization corrupts this many pixels per step with one generator per corruption;
# walking the dataset in the same chunks with the same generator gives the very same images.
_CHUNK_PIXELS = 2**19


@dataclass(frozen=True)
class ShiftExample:
    clean: torch.Tensor
    corrupted: torch.Tensor
    index: int  # the image's number in its dataset
    label: int
    original: int
    compressed: int


def disagreeing_examples(
    pair: ModelPair, dataset: ImageDataset, corruption: str, severity: int, seed: int, limit: int
) -> list[ShiftExample]:
    """Up to ``limit`` inputs, in dataset order, that disagree once corrupted (the run's images)."""
    shift = CORRUPTIONS[corruption]
    generator = torch.Generator().manual_seed(corruption_seed(seed, corruption))
    chunk = max(16, _CHUNK_PIXELS // int(np.prod(dataset.images.shape[1:])))
    found: list[ShiftExample] = []
    for start in range(0, len(dataset), chunk):
        clean = dataset.images[start:start + chunk]
        corrupted = shift.apply(clean, severity, generator)
        prediction = pair.predict(corrupted)
        for i in torch.nonzero(prediction.disagree).flatten().tolist():
            found.append(ShiftExample(clean[i], corrupted[i], int(dataset.indices[start + i]),
                                      int(dataset.labels[start + i]),
                                      int(prediction.labels_original[i]),
                                      int(prediction.labels_compressed[i])))
            if len(found) >= limit:
                return found
    return found


def render_examples(examples: list[ShiftExample], names: tuple[str, ...]) -> None:
    """Each example as its clean image followed by the corrupted one the models disagree on."""
    images, captions = [], []
    for e in examples:
        images += [e.clean, e.corrupted]
        captions += [f"#{e.index} clean · true {names[e.label]}",
                     f"corrupted: {names[e.original]} vs {names[e.compressed]}"]
    image_strip(images, captions, per_row=8)
