"""Random seeds a user gives: whole numbers that torch and numpy generators both accept."""

from __future__ import annotations

from compd_core.errors import ConfigError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


def check_seed(value: int, name: str = "--seed") -> int:
    """``value`` if it lies in 0..2**63-1, else a ConfigError that says the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{name} must be a whole number from 0 to 2**63-1, got {value!r}")
    return value
