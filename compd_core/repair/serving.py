"""Turn a fine-tuned stand-in back into the model that is served, leaving the stand-in as it is."""

from __future__ import annotations

import torch
from torch import nn

from compd_core.compress.base import Compressed, Recipe
from compd_core.compress.pruning import detach_derived_weights
from compd_core.models.architectures import build_architecture

RECALIBRATED_KINDS = ("int8-static",)  # post-training quantization: calibrating again is its recipe


def served_form(recipe: Recipe, trained: nn.Module, calibration: torch.Tensor,
                arch: str | None = None) -> Compressed:
    """The served model of a copy of ``trained`` (which stays trainable and unchanged).

    With ``arch`` given, a post-training-quantized model is quantized again from its fine-tuned
    float weights, observers calibrated on ``calibration`` (scales that fit the new weights and
    activations, not the ones of the model before fine-tuning).
    """
    detach_derived_weights(trained)
    if arch is not None and recipe.kind in RECALIBRATED_KINDS:
        float_model = build_architecture(arch)
        weights = {k: v for k, v in trained.state_dict().items() if k in float_model.state_dict()}
        float_model.load_state_dict(weights)
        compressed = recipe.compress(float_model, arch, calibration, torch.empty(0), 0)
        return Compressed(served=compressed.served, standin=trained)
    return recipe.finalize(recipe.copy_module(trained), calibration)
