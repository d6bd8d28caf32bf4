"""Where the shipped sample models and data live.

The repository keeps them in ``sample_models/`` beside the package. ``COMPD_SAMPLE_MODELS``
overrides the location (for an installed, non-editable package or a rebuilt zoo elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

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
