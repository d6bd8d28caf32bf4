"""A pair loader whose compressed model kills its Ray worker once, in the middle of a chunk
(imported by name in the workers: tests/ is on their path)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from compd_core.executors import PairLoader
from compd_core.models.pair import ModelPair

DIE_ON_CALL = 4  # the worker has searched a few steps of its chunk when it dies


class DiesOnce:
    """Wraps a classifier; on its ``DIE_ON_CALL``-th batch the process exits at once, unless
    ``marker`` exists. Creating the marker is atomic, so exactly one worker ever dies."""

    def __init__(self, model, marker: str) -> None:
        self.model, self.marker, self.calls = model, marker, 0
        self.info = model.info

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == DIE_ON_CALL:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(1)  # what a killed or crashed worker looks like to Ray
        return self.model.predict_proba(x)


@dataclass(frozen=True)
class DyingPairLoader(PairLoader):
    """The zoo pair, with a compressed model that kills the first worker to use it once."""

    marker: str = ""

    def __call__(self) -> ModelPair:
        pair = super().__call__()
        return ModelPair(pair.original, DiesOnce(pair.compressed, self.marker), name=pair.name)
