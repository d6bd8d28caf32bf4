"""What a user chose, as small frozen values: safe to keep in session state and to hash for caches.

The objects these describe (models, datasets) live in ``resources``; a choice only says how to
build them, so two sessions that choose the same pair share one set of loaded models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PAIR = "lenet5-int8-static"  # the shipped pair the dashboard opens on (and the demo uses)


@dataclass(frozen=True)
class PairChoice:
    """A shipped zoo pair (``zoo_id``), or two model files with their input shape and classes."""

    zoo_id: str | None = DEFAULT_PAIR
    original_path: str | None = None
    compressed_path: str | None = None
    input_shape: tuple[int, int, int] = (1, 28, 28)
    class_names: tuple[str, ...] | None = None  # own files only; None = "0", "1", ... by output size

    @property
    def is_zoo(self) -> bool:
        return self.zoo_id is not None

    @property
    def name(self) -> str:
        """The name runs are stored under: the zoo id, or both file names."""
        if self.zoo_id is not None:
            return self.zoo_id
        return f"{Path(self.original_path or '?').name} vs {Path(self.compressed_path or '?').name}"


@dataclass(frozen=True)
class DatasetChoice:
    """Where images come from: ``mnist``, ``mnist:train``, an image folder or an .npz path."""

    spec: str = "mnist"
    label: str = "MNIST test split"
    uploaded: bool = False  # the spec is a copy of a file uploaded in the browser


@dataclass(frozen=True)
class Upload:
    """One uploaded image, already converted to the pair's input shape (uint8, C x H x W)."""

    name: str
    pixels: bytes  # raw uint8 buffer, so the value stays hashable and immutable
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class ParkedUpload:
    """An uploaded image a finished job no longer holds in memory: its pixels wait in a file of
    the uploads folder (see ``uploads.release_uploads``)."""

    name: str
    path: str
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class SessionChoices:
    """What a session had chosen when it started a job, so that a new session opened on the
    job's link (a reload) can pick up the same pair, dataset, picked seeds and uploads."""

    pair: PairChoice
    dataset: DatasetChoice
    picks: tuple[int, ...] = ()
    uploads: tuple[Upload, ...] = ()
    parked_uploads: tuple[ParkedUpload, ...] = ()  # a finished job's uploads, on disk
