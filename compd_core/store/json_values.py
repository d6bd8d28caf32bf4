"""Values as the database keeps them in JSON columns: tensors and arrays as lists, enums by
name, dataclasses as dicts; anything else is refused with a StoreError."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compd_core.errors import StoreError


def floats(values: torch.Tensor) -> list[float]:
    """A probability vector as plain float32 values for a JSON list."""
    return values.detach().cpu().to(torch.float32).flatten().tolist()


def plain(value: Any) -> Any:
    """A settings or report dataclass as its dict; a mapping as it is."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.name
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dumps(value: Any) -> str:
    """JSON text for a column, or a StoreError that names what could not be stored."""
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store {type(value).__name__} as JSON: {exc}") from exc
