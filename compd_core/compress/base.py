"""The interface every compression recipe implements.

A recipe knows four things about one kind of compression: how to make it from a trained float
model, how to store and rebuild it without pickled classes, which differentiable module stands
in for it (for gradients and fine-tuning), and how to turn a fine-tuned stand-in back into the
served form. The zoo build, the zoo loader and repair all go through these four.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from compd_core.errors import WhiteBoxRequiredError


@dataclass
class Compressed:
    """A compressed model as served, plus its differentiable stand-in where it has one.

    ``served`` is an ``nn.Module`` for PyTorch recipes or a file path for black-box formats.
    """

    served: nn.Module | Path
    standin: nn.Module | None


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling any class (safe for untrusted files)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class Recipe(ABC):
    """One kind of compression (see module docstring)."""

    kind: str
    description: str
    white_box: bool = True

    @abstractmethod
    def compress(
        self, original: nn.Module, arch: str, train_images: torch.Tensor,
        train_labels: torch.Tensor, seed: int,
    ) -> Compressed:
        """Make the compressed model from a trained float ``original`` (left untouched)."""

    @abstractmethod
    def save(self, compressed: Compressed, directory: Path, stem: str) -> dict[str, str]:
        """Write the files; return role -> file name (relative to ``directory``)."""

    @abstractmethod
    def load(self, arch: str, files: dict[str, Path]) -> Compressed:
        """Rebuild from the files that ``save`` wrote."""

    def trainable(self, compressed: Compressed) -> nn.Module:
        """A deep copy of the differentiable form that fine-tuning updates."""
        if compressed.standin is None:
            raise WhiteBoxRequiredError(
                f"a {self.kind} model is a black box and cannot be fine-tuned here; "
                "repair needs a PyTorch compressed model (int8, pruned, distilled or bf16)"
            )
        return self.copy_module(compressed.standin)

    def copy_module(self, module: nn.Module) -> nn.Module:
        """An independent copy of a module of this recipe (trainable weights stay leaves)."""
        import copy

        return copy.deepcopy(module)

    def finalize(self, trained: nn.Module, calibration: torch.Tensor) -> Compressed:
        """Turn a fine-tuned ``trainable`` back into the served form."""
        trained.eval()
        return Compressed(served=trained, standin=trained)


def saved_bytes(recipe: Recipe, compressed: Compressed) -> dict[str, bytes]:
    """``compressed`` as the bytes of the files ``recipe.save`` writes (role -> bytes): how a
    model travels between processes without pickling its classes."""
    with tempfile.TemporaryDirectory(prefix="compd-model-") as folder:
        files = recipe.save(compressed, Path(folder), "model")
        return {role: (Path(folder) / name).read_bytes() for role, name in files.items()}


def loaded_from_bytes(recipe: Recipe, arch: str, files: dict[str, bytes]) -> Compressed:
    """The model ``saved_bytes`` packed, rebuilt by ``recipe.load``."""
    with tempfile.TemporaryDirectory(prefix="compd-model-") as folder:
        paths = {}
        for role, data in files.items():
            paths[role] = Path(folder) / role
            paths[role].write_bytes(data)
        return recipe.load(arch, paths)
