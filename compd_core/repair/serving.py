"""Turn a fine-tuned stand-in back into the model that is served, leaving the stand-in as it is."""

from __future__ import annotations

import copy

import torch
from torch import nn

from compd_core.compress.base import Compressed, Recipe
from compd_core.compress.pruning import detach_derived_weights


def served_form(recipe: Recipe, trained: nn.Module, calibration: torch.Tensor) -> Compressed:
    """The served model of a copy of ``trained`` (which stays trainable and unchanged)."""
    detach_derived_weights(trained)
    return recipe.finalize(copy.deepcopy(trained), calibration)
