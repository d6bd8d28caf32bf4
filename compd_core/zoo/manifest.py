"""The zoo's manifest: what each stored pair is, how it was made and what it measured."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from compd_core.errors import ModelLoadError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
LOCK_TIMEOUT_S = 120.0  # a registration holds the lock for milliseconds; 2 minutes means stuck


@dataclass(frozen=True)
class OriginalEntry:
    """A trained float model that pairs are made from."""

    name: str
    arch: str
    file: str  # relative to the zoo directory
    accuracy: float
    size_bytes: int
    parameters: int
    format: str = "torch"  # torch: a state dict of ``arch``; keras: a Keras 3 file
    dataset: str = "mnist"  # a shipped dataset name: its classes, its seeds, its test split


@dataclass(frozen=True)
class PairEntry:
    """One original/compressed pair and its measurements on its dataset's test split (the
    original's ``dataset``)."""

    id: str
    original: str  # name of an OriginalEntry
    compression: str  # recipe kind, see compd_core.compress.RECIPES
    description: str
    arch: str  # architecture of the compressed model (students differ from the original)
    files: dict[str, str]  # role -> file, relative to the zoo directory
    accuracy_original: float
    accuracy_compressed: float
    disagreements: int  # top-1 disagreements on the test split
    size_bytes: int  # serialized size of the compressed model
    latency_ms_original: float  # one batch of 256, median of 5, on the build machine
    latency_ms_compressed: float
    white_box: bool
    derived_from: str | None = None  # the pair a repaired pair was made from
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    originals: dict[str, OriginalEntry]
    pairs: list[PairEntry]
    dataset: str = "mnist"
    seed: int = 0
    format_version: int = FORMAT_VERSION
    platform: dict[str, Any] = field(default_factory=dict)  # where the numbers were measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "dataset": self.dataset,
            "seed": self.seed,
            "platform": self.platform,
            "originals": {k: asdict(v) for k, v in self.originals.items()},
            "pairs": [asdict(p) for p in self.pairs],
        }


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ModelLoadError(f"no zoo manifest at {path}; rebuild the zoo with `compd zoo build`")
    try:
        raw = json.loads(path.read_text())
        return Manifest(
            originals={k: OriginalEntry(**v) for k, v in raw["originals"].items()},
            pairs=[PairEntry(**p) for p in raw["pairs"]],
            dataset=raw.get("dataset", "mnist"),
            seed=raw.get("seed", 0),
            format_version=raw.get("format_version", FORMAT_VERSION),
            platform=raw.get("platform", {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path} is not a valid zoo manifest: {exc}") from exc


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write through a temporary file of its own and an atomic replace, so a crash mid-write
    never leaves a half manifest and two writers never share a temporary file."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{MANIFEST_NAME}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(manifest.to_dict(), indent=2) + "\n")
        os.replace(tmp, directory / MANIFEST_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def manifest_lock(directory: Path) -> Iterator[None]:
    """Hold the directory's manifest lock (across processes) for a read-change-write."""
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / f".{MANIFEST_NAME}.lock", timeout=LOCK_TIMEOUT_S):
        yield


def update_manifest(directory: Path, change: Callable[[Manifest], Manifest]) -> Manifest:
    """Read, change and write the manifest under its lock: concurrent registrations all land.

    A missing manifest starts empty.
    """
    with manifest_lock(directory):
        current = (read_manifest(directory) if (directory / MANIFEST_NAME).is_file()
                   else Manifest(originals={}, pairs=[]))
        changed = change(current)
        write_manifest(directory, changed)
        return changed
