"""Global L1 unstructured pruning with ``torch.nn.utils.prune``, fine-tuned, masks kept.

The stored state dict holds ``weight_orig`` and ``weight_mask`` for every pruned layer, so a
loaded (or repaired) model keeps exactly the same zeros.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from compd_core.compress.base import Compressed, Recipe, load_state
from compd_core.compress.training import TrainSettings, train
from compd_core.models.architectures import build_architecture

ROUNDS = 6  # prune gradually: one-shot 90% pruning of LeNet-5 costs ~2 points, 6 rounds < 1
EPOCHS_PER_ROUND = 2  # fine-tuning after each round recovers what the round cost
FINAL_EPOCHS = 6  # a last, longer fine-tune at the final sparsity


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def detach_derived_weights(model: nn.Module) -> None:
    """Recompute each pruned layer's ``weight = weight_orig * weight_mask`` without autograd.

    The pruning hook leaves ``weight`` as a non-leaf tensor after a forward pass with
    gradients, which ``copy.deepcopy`` refuses; the values do not change.
    """
    with torch.no_grad():
        for module, name in prunable(model):
            if hasattr(module, f"{name}_mask"):
                setattr(module, name, getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask"))


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over the prunable layers."""
    weights = [getattr(m, name) for m, name in prunable(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


class GlobalL1Pruning(Recipe):
    """Prune ``amount`` of all conv and linear weights by magnitude, then fine-tune."""

    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.kind = f"prune{round(amount * 100)}"
        self.description = (
            f"{round(amount * 100)}% global L1 unstructured pruning in {ROUNDS} rounds, "
            f"fine-tuned {EPOCHS_PER_ROUND} epochs each and {FINAL_EPOCHS} at the end, masks kept"
        )

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        model = copy.deepcopy(original)
        # Each round removes the same fraction of the remaining weights: (1-f)^ROUNDS = 1-amount.
        per_round = 1.0 - (1.0 - self.amount) ** (1.0 / ROUNDS)
        for round_index in range(ROUNDS):
            prune.global_unstructured(
                prunable(model), pruning_method=prune.L1Unstructured, amount=per_round
            )
            settings = TrainSettings(epochs=EPOCHS_PER_ROUND, lr=1e-3, seed=seed + round_index)
            train(model, train_images, train_labels, settings)
        train(model, train_images, train_labels,
              TrainSettings(epochs=FINAL_EPOCHS, lr=1e-3, seed=seed + ROUNDS))
        return Compressed(served=model.eval(), standin=model)

    def save(self, compressed, directory, stem):  # noqa: D102
        files = {"model": f"{stem}.pt"}
        torch.save(compressed.served.state_dict(), directory / files["model"])  # type: ignore[union-attr]
        return files

    def load(self, arch, files):  # noqa: D102
        model = build_architecture(arch)
        for module, name in prunable(model):
            prune.identity(module, name)
        model.load_state_dict(load_state(files["model"]))
        model.eval()
        return Compressed(served=model, standin=model)

    def trainable(self, compressed):  # noqa: D102
        if isinstance(compressed.standin, nn.Module):
            detach_derived_weights(compressed.standin)
        return super().trainable(compressed).train()

    def finalize(self, trained, calibration):  # noqa: D102
        detach_derived_weights(trained)
        return super().finalize(trained, calibration)
