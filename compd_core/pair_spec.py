"""What a pair is, as a small serialisable value: a zoo id, or two model files (or callables)
with the input shape and classes they take.

It is stored with every run, so every command and page rebuilds the same ``ModelPair`` from it
(resume, repair, export, the dashboard). Files are recorded with their SHA-256 when a run
starts: a file that changed since is reported in plain words, one that is gone is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compd_core.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from compd_core.data.dataset import ImageDataset

logger = logging.getLogger(__name__)

DEFAULT_INPUT_SHAPE = (1, 28, 28)
_HASH_CHUNK = 1 << 20


class ModelFileMissingError(ModelLoadError):
    """A model file a stored run was searched with no longer exists."""


def is_callable_source(source: str) -> bool:
    """``module:function`` rather than a path (a Windows drive letter or an existing file is a
    path)."""
    return ":" in source and not Path(source).expanduser().exists() and not (
        len(source) > 1 and source[1] == ":")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (a large model never sits in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PairSpec:
    """A shipped or registered zoo pair (``zoo_id``), or two model files given by the user.

    Frozen and hashable, so the dashboard can key its model cache on it. Hashes are None until
    ``with_hashes`` records them (and always None for ``module:function`` callables).
    """

    zoo_id: str | None = None
    original: str | None = None  # a model file, or module:function with allow_code
    compressed: str | None = None
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE
    class_names: tuple[str, ...] | None = None  # None: "0", "1", ... by the models' output size
    allow_code: bool = False  # module:function models run the user's code: opt-in
    original_sha256: str | None = None
    compressed_sha256: str | None = None

    def __post_init__(self) -> None:
        has_files = self.original is not None or self.compressed is not None
        if self.zoo_id is not None and has_files:
            raise ConfigError("give either a zoo pair or two model files, not both")
        if self.zoo_id is None and not (self.original and self.compressed):
            raise ConfigError(
                "give a zoo pair id (see `compd zoo list`) or both an original and a "
                "compressed model file"
            )
        if len(self.input_shape) != 3 or any(int(n) < 1 for n in self.input_shape):
            raise ConfigError(f"an input shape is (channels, height, width), got {self.input_shape}")

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def zoo(cls, pair_id: str) -> PairSpec:
        return cls(zoo_id=pair_id)

    @classmethod
    def files(
        cls, original: str | Path, compressed: str | Path,
        input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
        class_names: tuple[str, ...] | None = None, *, allow_code: bool = False,
    ) -> PairSpec:
        """Two model files (stored as absolute paths, so a run reloads from any folder)."""
        return cls(original=_absolute(str(original)), compressed=_absolute(str(compressed)),
                   input_shape=tuple(int(n) for n in input_shape),  # type: ignore[arg-type]
                   class_names=None if class_names is None else tuple(class_names),
                   allow_code=allow_code)

    @classmethod
    def files_for_dataset(
        cls, original: str | Path, compressed: str | Path, dataset: ImageDataset, *,
        allow_code: bool = False,
    ) -> PairSpec:
        """Two model files that take the dataset's images. Named classes (cat/, dog/) name the
        outputs in order; numbered ones (5/ 6/ 7/, an .npz's labels) are output indices, which
        the dataset check maps by number."""
        numbered = all(name.isdigit() for name in dataset.class_names)
        return cls.files(original, compressed, dataset.image_shape,
                         None if numbered else dataset.class_names, allow_code=allow_code)

    def with_hashes(self) -> PairSpec:
        """This spec with the SHA-256 of both files as they are now (what a run records)."""
        if self.is_zoo:
            return self
        return replace(self, original_sha256=self._hash_of(self.original),
                       compressed_sha256=self._hash_of(self.compressed))

    @staticmethod
    def _hash_of(source: str | None) -> str | None:
        if source is None or is_callable_source(source):
            return None
        path = Path(source)
        if not path.is_file():
            raise ModelFileMissingError(f"model file {path} does not exist")
        return file_sha256(path)

    # -- reading -------------------------------------------------------------------------------

    @property
    def is_zoo(self) -> bool:
        return self.zoo_id is not None

    @property
    def name(self) -> str:
        """The name runs are listed under: the zoo id, or both file names."""
        if self.zoo_id is not None:
            return self.zoo_id
        return f"{_short(self.original)} vs {_short(self.compressed)}"

    def model_files(self) -> list[tuple[str, str, str | None]]:
        """(role, path, recorded hash) of each model that is a file (callables have none)."""
        if self.is_zoo:
            return []
        return [(role, source, digest) for role, source, digest in (
            ("original", self.original, self.original_sha256),
            ("compressed", self.compressed, self.compressed_sha256),
        ) if source is not None and not is_callable_source(source)]

    def local_files(self) -> list[str]:
        """What of this machine the pair is built from: its model files (a ``module:function``
        names its code), or the user zoo's folder for a pair registered there. A shipped zoo
        pair needs none: it ships with compd wherever compd is installed."""
        if self.zoo_id is None:
            return [source for source in (self.original, self.compressed) if source]
        from compd_core.paths import sample_models_dir
        from compd_core.zoo.loading import find_entry

        directory = find_entry(self.zoo_id)[0]
        return [] if directory == sample_models_dir() else [str(directory)]

    def changed_files(self, *, refuse_missing: bool = True) -> list[str]:
        """One plain sentence per model file that differs from when the run recorded it.

        A file that is gone raises ``ModelFileMissingError`` (the pair cannot be rebuilt); with
        ``refuse_missing=False`` it is reported like a change (for readers that need no model,
        such as an export). Each sentence is also logged as a warning.
        """
        notes = []
        for role, source, recorded in self.model_files():
            path = Path(source)
            if not path.is_file():
                message = (f"the {role} model file {path} is gone since this run was searched; "
                           "put it back (or start a new run on the files you have now)")
                if refuse_missing:
                    raise ModelFileMissingError(message)
                notes.append(message)
            elif recorded is not None and file_sha256(path) != recorded:
                notes.append(
                    f"the {role} model file {path} changed since this run was searched (its "
                    f"SHA-256 was {recorded[:12]}…, it is {file_sha256(path)[:12]}… now); "
                    "results may differ from the stored ones"
                )
        for note in notes:
            logger.warning(note)
        return notes

    def load(self, max_batch: int | None = None):
        """A fresh ``ModelPair`` (own query counter): the one way every caller builds one."""
        from compd_core.models.pair import DEFAULT_MAX_BATCH, ModelPair

        if self.zoo_id is not None:
            from compd_core.zoo import load_pair

            return load_pair(self.zoo_id, max_batch=max_batch or DEFAULT_MAX_BATCH)
        original, compressed = self.load_classifiers()
        # None: the pair sizes its batches by its input (fewer images of 224x224 than of digits)
        return ModelPair(original, compressed, name=self.name, max_batch=max_batch)

    def load_classifiers(self):
        """(original, compressed) classifiers of a file pair (each call loads them afresh)."""
        from compd_core.models.loading import load_classifier

        if self.zoo_id is not None:
            pair = self.load()
            return pair.original, pair.compressed
        return tuple(
            load_classifier(source or "", self.input_shape, self.class_names,
                            allow_code=self.allow_code)
            for source in (self.original, self.compressed)
        )

    # -- storing -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        if self.zoo_id is not None:
            return {"zoo_id": self.zoo_id}
        return {
            "original": self.original, "compressed": self.compressed,
            "input_shape": list(self.input_shape),
            "class_names": None if self.class_names is None else list(self.class_names),
            "allow_code": self.allow_code, "original_sha256": self.original_sha256,
            "compressed_sha256": self.compressed_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairSpec:
        if data.get("zoo_id") is not None:
            return cls(zoo_id=str(data["zoo_id"]))
        names = data.get("class_names")
        return cls(
            original=data.get("original"), compressed=data.get("compressed"),
            input_shape=tuple(int(n) for n in data.get("input_shape", DEFAULT_INPUT_SHAPE)),  # type: ignore[arg-type]
            class_names=None if names is None else tuple(str(n) for n in names),
            allow_code=bool(data.get("allow_code", False)),
            original_sha256=data.get("original_sha256"),
            compressed_sha256=data.get("compressed_sha256"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> PairSpec:
        return cls.from_dict(json.loads(text))


def _absolute(source: str) -> str:
    return source if is_callable_source(source) else str(Path(source).expanduser().resolve())


def _short(source: str | None) -> str:
    if source is None:
        return "?"
    return source if is_callable_source(source) else Path(source).name
