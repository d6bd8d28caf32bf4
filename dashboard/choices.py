"""What a user chose, as small frozen values: safe to keep in session state and to hash for caches.

The objects these describe (models, datasets) live in ``resources``; a choice only says how to
build them, so two sessions that choose the same pair share one set of loaded models.
"""

from __future__ import annotations

from dataclasses import dataclass

from compd_core.pair_spec import PairSpec

DEFAULT_PAIR = "lenet5-int8-static"  # the shipped pair the dashboard opens on (and the demo uses)


# The pair a session works on is compd_core's own description of a pair (zoo id or own files),
# the one stored with every run: a page rebuilds a run's pair from it.
PairChoice = PairSpec


def default_pair() -> PairChoice:
    return PairSpec.zoo(DEFAULT_PAIR)


@dataclass(frozen=True)
class DatasetChoice:
    """Where images come from: ``mnist``, ``mnist:train``, an image folder or an .npz path
    (``file.npz:train`` for the train split of an archive with x_train/x_test)."""

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
