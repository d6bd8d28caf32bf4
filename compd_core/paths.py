"""Where the shipped sample models and data live.

The repository keeps them in ``sample_models/`` beside the package. ``COMPD_SAMPLE_MODELS``
overrides the location (for an installed, non-editable package or a rebuilt zoo elsewhere).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compd_core.errors import ConfigError

ENV_VAR = "COMPD_SAMPLE_MODELS"


def sample_models_dir() -> Path:
    """Directory holding the zoo's manifest, weights and the MNIST archive."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "sample_models"


def mnist_path() -> Path:
    """The shipped real MNIST digits (uint8 .npz, fixed train/test split)."""
    return sample_models_dir() / "mnist.npz"


def default_db_path() -> Path:
    """Results database used when the user names none: ``./compd.sqlite``."""
    return Path(os.environ.get("COMPD_DB", "compd.sqlite")).expanduser()


def writable_output_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if missing and prove it takes files, before any work is done, so that
    a long run never ends in a PermissionError at its last step."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{option} {path} cannot be written ({reason}); give a folder you can write to"
        ) from exc
    return path
