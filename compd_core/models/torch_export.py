"""``torch.export`` programs (``.pt2``), the recommended way to hand a PyTorch model over.

Save one with a batch dimension that may vary::

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (torch.zeros(2, 1, 28, 28),),
                                  dynamic_shapes=({0: batch},))
    torch.export.save(program, "model.pt2")

A program exported with a fixed batch size is run in chunks of that size. ``torch.export.load``
unpickles any payload the archive marks as pickled (weights, constants, custom objects), and
retries its sample inputs without ``weights_only``; so before loading, the archive is checked to
hold plain tensors only and sample inputs that load with ``weights_only=True``, and refused
otherwise. A float program is differentiable, so gradient search can use it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch

from compd_core.errors import ModelLoadError
from compd_core.models.adapters import OutputKind, TorchClassifier, existing_file, first_line, module_info

EXPORT_SUFFIXES = (".pt2",)


def is_exported_program(path: Path) -> bool:
    """``torch.export.save`` archives carry an ``archive_format`` entry; TorchScript ones do not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/archive_format") or name == "archive_format"
                       for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def refuse_pickled_payloads(path: Path) -> None:
    """Raise ``ModelLoadError`` where loading the archive would unpickle Python objects."""
    from torch.export.pt2_archive.constants import TENSOR_CONSTANT_FILENAME_PREFIX

    pickled: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(("model_weights_config.json", "model_constants_config.json")):
                    config = json.loads(archive.read(name)).get("config", {})
                    constants = name.endswith("model_constants_config.json")
                    pickled += [fqn for fqn, meta in config.items() if meta.get("use_pickle") or (
                        constants and not str(meta.get("path_name", "")).startswith(
                            TENSOR_CONSTANT_FILENAME_PREFIX))]
                elif "/sample_inputs/" in name and not _loads_safely(archive.read(name)):
                    pickled.append(name.rsplit("/", 1)[-1])
    except (zipfile.BadZipFile, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{path} is not a torch.export archive: {first_line(exc)}") from exc
    if pickled:
        raise ModelLoadError(
            f"{path} holds pickled Python objects ({', '.join(sorted(pickled)[:3])}), which could "
            "run code when loaded, so compd does not load it; export a model whose weights and "
            "constants are plain tensors"
        )


def _loads_safely(data: bytes) -> bool:
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # weights_only refuses anything but tensors and plain containers
        return False
    return True


class _Program(torch.nn.Module):
    """An exported program's module, run in chunks of ``batch`` images where it was exported
    for exactly that many (None: any batch size)."""

    def __init__(self, module: torch.nn.Module, batch: int | None) -> None:
        super().__init__()
        self.program = module
        self.batch = batch

    def train(self, mode: bool = True) -> _Program:
        """An exported graph is frozen in the mode it was exported in and refuses ``eval()``."""
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch is None:
            return self.program(x)
        outs = []
        for start in range(0, len(x), self.batch):
            chunk = x[start : start + self.batch]
            missing = self.batch - len(chunk)
            if missing:  # pad the last chunk with blank images, then drop their rows
                chunk = torch.cat([chunk, chunk.new_zeros((missing, *chunk.shape[1:]))])
            outs.append(self.program(chunk)[: self.batch - missing])
        return torch.cat(outs)


class ExportedProgramClassifier(TorchClassifier):
    """A ``.pt2`` program saved with ``torch.export.save``."""

    def __init__(
        self,
        path: str | Path,
        input_shape: tuple[int, int, int],
        class_names: tuple[str, ...] | None = None,
        *,
        output: OutputKind = "auto",
    ) -> None:
        path = existing_file(path)
        refuse_pickled_payloads(path)
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # torch raises RuntimeError/KeyError/zip errors alike
            raise ModelLoadError(
                f"{path} is not a loadable torch.export program (save one with "
                f"torch.export.save): {first_line(exc)}"
            ) from exc
        module = _Program(program.module(), _fixed_batch_size(program, path, input_shape))
        info = module_info(module, path, input_shape, class_names, "torch-export")
        super().__init__(module, info, output=output)


def _fixed_batch_size(
    program: torch.export.ExportedProgram, path: Path, input_shape: tuple[int, int, int]
) -> int | None:
    """The batch size the program was exported for, or None when it may vary."""
    user_inputs = program.graph_signature.user_inputs
    nodes = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs]
    if len(nodes) != 1:
        raise ModelLoadError(f"{path} takes {len(nodes)} inputs; an image classifier takes one batch")
    value = nodes[0].meta.get("val")
    shape = tuple(getattr(value, "shape", ()))
    if len(shape) != 4:
        raise ModelLoadError(f"{path} takes inputs of shape {shape}; expected (N, C, H, W)")
    fixed = [d for d in shape[1:] if isinstance(d, int)]
    if len(fixed) == 3 and tuple(fixed) != tuple(input_shape):
        raise ModelLoadError(
            f"{path} was exported for images of shape {tuple(shape[1:])} but the data has "
            f"{input_shape}; export it again with an example batch of the data's size"
        )
    return shape[0] if isinstance(shape[0], int) else None
