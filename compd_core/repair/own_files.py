"""Repair of a pair given as the user's own files.

The compressed model must be a PyTorch module with float weights (a TorchScript archive): it is
fine-tuned as it is and the result is saved as a new TorchScript file in the user zoo's folder.
Any other format is searchable but refused here in plain words, before any work.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from compd_core.compress.base import Compressed, Recipe
from compd_core.errors import ConfigError, WhiteBoxRequiredError
from compd_core.models.adapters import TorchScriptClassifier
from compd_core.models.pair import ModelPair
from compd_core.pair_spec import PairSpec, is_callable_source
from compd_core.zoo.loading import user_zoo_dir

_FORMAT_NAMES = {"onnx": "ONNX", "tflite": "TFLite", "keras": "Keras", "callable": "Python callable"}
_HOW = ("fine-tuning needs the compressed model as a PyTorch module; {what} cannot be fine-tuned "
        "here: {path} stays searchable, but to repair it give the PyTorch model it was made from "
        "(a TorchScript .pt with float or fake-quant weights) as --compressed and search again")


class TorchScriptFile(Recipe):
    """A user's own TorchScript compressed model: served as it is, fine-tuned as it is."""

    kind = "torchscript"
    description = "the user's own TorchScript compressed model"

    def compress(self, original: nn.Module, arch: str, train_images: torch.Tensor,
                 train_labels: torch.Tensor, seed: int) -> Compressed:
        raise ConfigError("an own TorchScript model is given, not made: there is nothing to compress")

    def save(self, compressed: Compressed, directory: Path, stem: str) -> dict[str, str]:
        directory.mkdir(parents=True, exist_ok=True)
        torch.jit.save(compressed.served, str(directory / f"{stem}.pt"))  # type: ignore[arg-type]
        return {"model": f"{stem}.pt"}

    def copy_module(self, module: nn.Module) -> nn.Module:
        """Through TorchScript's own format: a deep copy of a script module loses its leaves."""
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)  # type: ignore[arg-type]
        buffer.seek(0)
        return torch.jit.load(buffer, map_location="cpu")

    def load(self, arch: str, files: dict[str, Path]) -> Compressed:
        module = torch.jit.load(str(files["model"]), map_location="cpu")
        return Compressed(served=module.eval(), standin=module)


def fine_tunable_file(spec: PairSpec, pair: ModelPair) -> Compressed:
    """The compressed model of a file pair, loaded afresh for training, or a plain refusal."""
    path = spec.compressed or ""
    if is_callable_source(path):
        raise WhiteBoxRequiredError(_HOW.format(what="a module:function callable", path=path))
    if not isinstance(pair.compressed, TorchScriptClassifier):
        kind = pair.compressed.info.kind
        what = f"{_FORMAT_NAMES.get(kind, kind)} files"
        raise WhiteBoxRequiredError(_HOW.format(what=what, path=path))
    loaded = TorchScriptFile().load("", {"model": Path(path)})
    if not any(p.is_floating_point() for p in loaded.served.parameters()):  # type: ignore[union-attr]
        raise WhiteBoxRequiredError(_HOW.format(
            what="a model without float weights (an int8 TorchScript export holds packed "
                 "integer weights only)", path=path))
    return loaded


def save_repaired_file(compressed: Compressed, spec: PairSpec, pair_id: str) -> PairSpec:
    """Write the repaired model under the user zoo's ``files/<pair_id>/`` and return the pair
    of the original file and the repaired one (searchable with --original/--compressed)."""
    directory = user_zoo_dir() / "files" / pair_id
    files = TorchScriptFile().save(compressed, directory, "compressed")
    return PairSpec.files(spec.original or "", directory / files["model"], spec.input_shape,
                          spec.class_names, allow_code=spec.allow_code).with_hashes()
