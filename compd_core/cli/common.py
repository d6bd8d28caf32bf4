"""Pieces every ``compd`` command shares: JSON output, consoles, option parsing."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from compd_core.errors import ConfigError
from compd_core.rng import check_seed

# Human output goes to stderr so that ``--json`` output on stdout stays machine-readable.
console = Console(stderr=True, highlight=False)
# Tables and reports a user asked for go to stdout.
# Wide enough for the zoo table when stdout is a pipe (Rich would assume 80 columns).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def print_json(payload: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout (NaN/inf become null, so it always parses)."""
    sys.stdout.write(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")


def parse_csv_ints(text: str, name: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3], with an error naming the option when it is not that."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated whole numbers, got {text!r}") from exc


def parse_csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def seed_option(value: int | None) -> int | None:
    """Typer callback for every ``--seed``: refuse what no random generator accepts (None: the
    option was left out, e.g. on a resume that takes the run's own seed)."""
    return None if value is None else check_seed(value, "--seed")
