"""Load a user's own model file (or callable) as a classifier, choosing the adapter by format.

Formats: TFLite (.tflite), Keras 3 (.keras, .h5), torch.export programs (.pt2), ONNX (.onnx),
TorchScript (.pt and friends, kept for existing files) and ``module:function`` callables.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from compd_core.errors import ModelLoadError
from compd_core.models.adapters import CallableClassifier, OnnxClassifier, TorchScriptClassifier
from compd_core.models.base import Classifier
from compd_core.models.keras_model import KERAS_SUFFIXES, KerasClassifier
from compd_core.models.tflite import TFLiteClassifier
from compd_core.models.torch_export import EXPORT_SUFFIXES, ExportedProgramClassifier, is_exported_program

ONNX_SUFFIXES = (".onnx",)
TFLITE_SUFFIXES = (".tflite",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
FILE_SUFFIXES = (*TFLITE_SUFFIXES, *KERAS_SUFFIXES, *EXPORT_SUFFIXES, *ONNX_SUFFIXES)


def load_classifier(
    source: str | Path,
    input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None = None,
    *,
    allow_code: bool = False,
    name: str | None = None,
) -> Classifier:
    """A model file of a known format, or ``module:function`` (with ``allow_code``)."""
    text = str(source)
    path = Path(text).expanduser()
    if ":" in text and not path.exists() and not text.lower().endswith(FILE_SUFFIXES):
        return CallableClassifier(text, input_shape, class_names, allow_code=allow_code)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in TFLITE_SUFFIXES:
        return TFLiteClassifier(path, input_shape, class_names, name=name)
    if suffix in KERAS_SUFFIXES:
        return KerasClassifier(path, input_shape, class_names, name=name)
    if suffix in ONNX_SUFFIXES:
        return OnnxClassifier(path, input_shape, class_names, name=name)
    if suffix in EXPORT_SUFFIXES or is_exported_program(path):  # a .pt2 saved as .pt, too
        return ExportedProgramClassifier(path, input_shape, class_names)
    if suffix in TORCHSCRIPT_SUFFIXES or zipfile.is_zipfile(path):
        _refuse_plain_state_dict(path)
        return TorchScriptClassifier(path, input_shape, class_names)
    raise ModelLoadError(
        f"{path.name}: unknown model format {suffix!r}; give a TFLite (.tflite), Keras "
        "(.keras, .h5), torch.export (.pt2), ONNX (.onnx) or TorchScript (.pt) file"
    )


def _refuse_plain_state_dict(path: Path) -> None:
    """A state dict (torch.save) has no architecture; say so instead of a cryptic failure."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{path} is corrupt or not a TorchScript archive") from exc
    if not any(name.endswith("/code/") or "/code/" in name for name in names):
        raise ModelLoadError(
            f"{path} holds weights without code (a torch.save state dict); export the model "
            "with torch.export.save(torch.export.export(model, (example,)), 'model.pt2') "
            "(or to ONNX)"
        )
