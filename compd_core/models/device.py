"""Which torch device a pair's models run on: ``cpu``, ``cuda`` or ``auto`` (cuda when there is
one), checked once, with an error that says how to fix a wrong choice."""

from __future__ import annotations

from typing import Literal

import torch

from compd_core.errors import ConfigError

DeviceChoice = Literal["cpu", "cuda", "auto"]
DEVICE_CHOICES: tuple[str, ...] = ("cpu", "cuda", "auto")
DEFAULT_MAX_BATCH_ON = {"cpu": 256, "cuda": 4096}  # a GPU wants wide batches to be worth its launch cost


def resolve_device(choice: str) -> str:
    """``cpu`` or ``cuda``: what ``choice`` means on this machine, or a ``ConfigError``."""
    if choice not in DEVICE_CHOICES:
        raise ConfigError(f"unknown device {choice!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda needs a CUDA GPU, but torch.cuda.is_available() is False on this "
            "machine (no GPU, or a CPU build of torch); use --device cpu or --device auto"
        )
    return choice
