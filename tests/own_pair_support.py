"""A pair given as files, made from the shipped zoo: what a user brings to every command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from compd_core.paths import mnist_path, sample_models_dir
from cli_support import compd as in_process
from compd_core.zoo import load_pair

SEEDS = "0,1,2,3,4,5,6,7"  # dataset indices of the shipped test split


@dataclass(frozen=True)
class FilePair:
    original: Path  # LeNet-5, TorchScript
    compressed: Path  # its distilled student, TorchScript: a PyTorch module repair can train
    onnx: Path  # the zoo's ONNX int8 LeNet-5: searchable, not fine-tunable
    data: Path  # a copy of the shipped mnist.npz (x_train/y_train, x_test/y_test)


def write_file_pair(root: Path) -> FilePair:
    """The shipped LeNet-5 and its distilled student saved as TorchScript, the ONNX int8 model
    and the MNIST archive, copied into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    files = FilePair(root / "lenet5.pt", root / "lenet5-distilled.pt", root / "lenet5-int8.onnx",
                     root / "mnist.npz")
    torch.jit.script(load_pair("lenet5-int8-static").original.module).save(str(files.original))
    torch.jit.script(load_pair("lenet5-distilled").compressed.module).save(str(files.compressed))
    shutil.copyfile(sample_models_dir() / "lenet5" / "onnx-int8.onnx", files.onnx)
    shutil.copyfile(mnist_path(), files.data)
    return files


def compd(*args: str | Path) -> subprocess.CompletedProcess:
    """The ``compd`` command line, run in this process (``cli_support``)."""
    return in_process(*map(str, args))
