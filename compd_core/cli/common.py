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


def print_json(payload: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Print exactly one JSON value on stdout (NaN/inf become null, so it always parses)."""
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


# -- the pair, its data and its seeds: the same options on every command ------------------------

PAIR_HELP = "A zoo pair id (see `compd zoo list`); or give --original and --compressed."
ORIGINAL_HELP = "Original model file (TorchScript .pt, .onnx; module:function with --allow-code)."
COMPRESSED_HELP = "Compressed model file, in the same formats as --original."
ALLOW_CODE_HELP = "Allow module:function models (this runs that Python code)."
DATASET_HELP = ("mnist or fashion-mnist (a shipped test split; add :train for the other part), "
                "an image folder, or an .npz (x/y, or x_test/y_test: add :train for its train "
                "split). Default: the zoo pair's own dataset, else mnist.")
SEED_INDICES_HELP = ("Search exactly these dataset images: 3,17,42 or @file.txt (one index per "
                     "line).")


def dataset_option_value(text: str) -> str:
    """A dataset as stored with a run: shipped names as they are, paths made absolute so that
    the run reloads from any folder."""
    from compd_core.data.named import is_named
    from compd_core.data.resolve import npz_split

    if is_named(text):
        return text
    path, split = npz_split(text)
    absolute = str(path.resolve())
    return absolute if split is None else f"{absolute}:{split}"


def default_dataset(dataset: str | None, pair: str | None) -> str:
    """The dataset given, or else the zoo pair's own (a Fashion-MNIST pair searches clothes),
    or else mnist."""
    if dataset:
        return dataset
    if pair:
        from compd_core.zoo.loading import pair_dataset

        return pair_dataset(pair)
    return "mnist"


def pair_spec_from_options(pair: str | None, original: str | None, compressed: str | None,
                           dataset: str, allow_code: bool = False):
    """A ``PairSpec`` from ``--pair`` or ``--original``/``--compressed`` (exactly one way).

    Own files take the dataset's image shape and named classes; their hashes are recorded now.
    """
    from compd_core.data.resolve import load_dataset
    from compd_core.pair_spec import PairSpec

    if pair and (original or compressed):
        raise ConfigError("give either --pair or --original with --compressed, not both")
    if pair:
        return PairSpec.zoo(pair)
    if not (original and compressed):
        missing = "--compressed" if original else "--original" if compressed else None
        raise ConfigError(
            f"{missing} is missing: give both model files" if missing else
            "give --pair ID (see `compd zoo list`) or both --original and --compressed"
        )
    images = load_dataset(dataset, input_shape=None)  # own models take the dataset's shape
    return PairSpec.files_for_dataset(original, compressed, images,
                                      allow_code=allow_code).with_hashes()


def warn_changed_files(spec, *, refuse_missing: bool = True) -> None:
    """Say on the console which model files changed since a run recorded them; a file that is
    gone is refused (raises) unless ``refuse_missing`` is False (readers of stored results)."""
    for note in spec.changed_files(refuse_missing=refuse_missing):
        console.print(f"[yellow]warning:[/] {note}", soft_wrap=True)  # one line per file


def parse_seed_indices(text: str | None) -> tuple[int, ...] | None:
    """``3,17,42`` or ``@file.txt`` (one index per line; blank lines skipped) -> indices.

    Non-integers and negative numbers are refused with the offending item named.
    """
    if text is None:
        return None
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            items = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"--seed-indices {text}: cannot read {path} ({exc.__class__.__name__}); give a "
                "text file with one dataset index per line"
            ) from exc
        where = f"{path}"
    else:
        items = parse_csv(text)
        where = "--seed-indices"
    if not items:
        raise ConfigError(f"{where} lists no seed index; give e.g. 3,17,42")
    indices = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ConfigError(
                f"{where}: {item!r} is not a whole number; list dataset indices such as 3,17,42"
            ) from None
        if value < 0:
            raise ConfigError(f"{where}: {value} is negative; dataset indices start at 0")
        indices.append(value)
    return tuple(indices)  # repeats and indices past the dataset: see search.seeds
