"""bfloat16: the same network with weights and activations in bf16 (8 bits of mantissa).

The stand-in is a float32 copy of the bf16-rounded weights, so gradients are computed in full
precision on exactly the served weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compd_core.compress.base import Compressed, Recipe, load_state
from compd_core.models.architectures import build_architecture


def _as_bf16(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(torch.bfloat16).eval()


def _as_fp32(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(torch.float32).eval()


class BFloat16(Recipe):
    kind = "bf16"
    description = "bfloat16 weights and activations"

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        served = _as_bf16(original)
        return Compressed(served=served, standin=_as_fp32(served))

    def save(self, compressed, directory, stem):  # noqa: D102
        files = {"model": f"{stem}.pt"}
        torch.save(compressed.served.state_dict(), directory / files["model"])  # type: ignore[union-attr]
        return files

    def load(self, arch, files):  # noqa: D102
        served = build_architecture(arch).to(torch.bfloat16)
        served.load_state_dict(load_state(files["model"]))
        served.eval()
        return Compressed(served=served, standin=_as_fp32(served))

    def trainable(self, compressed):  # noqa: D102
        return super().trainable(compressed).train()

    def finalize(self, trained, calibration):  # noqa: D102
        served = _as_bf16(trained)
        return Compressed(served=served, standin=_as_fp32(served))
