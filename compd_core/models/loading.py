"""Load a user's own model file (or callable) as a classifier, choosing the adapter by kind."""

from __future__ import annotations

import zipfile
from pathlib import Path

from compd_core.errors import ModelLoadError
from compd_core.models.adapters import CallableClassifier, OnnxClassifier, TorchScriptClassifier
from compd_core.models.base import Classifier

ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


def load_classifier(
    source: str | Path,
    input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None = None,
    *,
    allow_code: bool = False,
) -> Classifier:
    """A TorchScript archive, an ONNX file, or ``module:function`` (with ``allow_code``)."""
    text = str(source)
    path = Path(text).expanduser()
    if ":" in text and not path.exists() and not text.lower().endswith(ONNX_SUFFIXES):
        return CallableClassifier(text, input_shape, class_names, allow_code=allow_code)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return OnnxClassifier(path, input_shape, class_names)
    if suffix in TORCHSCRIPT_SUFFIXES or zipfile.is_zipfile(path):
        _refuse_plain_state_dict(path)
        return TorchScriptClassifier(path, input_shape, class_names)
    raise ModelLoadError(
        f"{path.name}: unknown model format {suffix!r}; give a TorchScript archive "
        "(.pt saved with torch.jit.save) or an ONNX file (.onnx)"
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
            "with torch.jit.script(model).save(path) or to ONNX"
        )
