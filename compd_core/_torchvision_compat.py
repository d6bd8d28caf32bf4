"""Make ``import torchvision`` work when its compiled extension cannot load.

The torchvision 0.28.0 wheel on the package registry is a CUDA build. On a CPU-only torch its
extension fails to load and the import dies with ``operator torchvision::nms does not exist``,
because torchvision registers Python fallbacks for ``nms``/``qnms`` that need the operator
schemas. Defining those two schemas first makes the pure-Python parts (transforms v2, datasets,
models) importable. Where the extension loads normally this module does nothing.
"""

from __future__ import annotations

import importlib.util
import logging

import torch

_log = logging.getLogger(__name__)
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor",
)
_library: torch.library.Library | None = None


def _extension_loads() -> bool:
    """True when torchvision's own compiled operators are usable."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # nothing to patch: torchvision is absent
    try:
        torch.ops.load_library(_extension_path(spec.submodule_search_locations[0]))
    except (OSError, RuntimeError, FileNotFoundError):
        return False
    return True


def _extension_path(package_dir: str) -> str:
    import glob
    import os

    found = sorted(glob.glob(os.path.join(package_dir, "_C*.so")))
    if not found:
        raise FileNotFoundError("torchvision has no compiled extension")
    return found[0]


def install() -> None:
    """Define the missing operator schemas once, only where the extension cannot load."""
    global _library
    if _library is not None or _extension_loads():
        return
    _library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        _library.define(schema)
    _log.debug("torchvision extension unavailable; defined nms/qnms schemas")


install()
