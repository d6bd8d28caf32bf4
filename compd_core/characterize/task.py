"""A characterization as a job any executor can run: pairs and dataset by description.

The dashboard hands this to the server's executor, so a characterization runs beside searches
in a Ray worker when the server is set to Ray, and in the caller's thread otherwise; either
way the task loads its own pairs and data, which never travel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

from compd_core.characterize.analysis import PairComparison, compare_pairs
from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError
from compd_core.events import EventSink, JobKind
from compd_core.executors.base import files_read
from compd_core.pair_spec import PairSpec


@dataclass(frozen=True)
class CharacterizeTask:
    """``compare_pairs`` over ``pairs`` (the first is the one studied) on ``dataset``, a
    dataset spec as ``load_dataset`` takes it, in the first pair's input shape and classes."""

    kind: ClassVar[JobKind] = "characterize"
    pairs: tuple[PairSpec, ...]
    dataset: str
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.pairs:
            raise ConfigError("a characterization needs at least one pair")

    def local_files(self) -> list[str]:
        return files_read(self.pairs, self.dataset)

    def __call__(self, emit: EventSink, stop: threading.Event) -> PairComparison:
        pairs = [spec.load() for spec in self.pairs]
        data = load_dataset(self.dataset, pairs[0].input_shape, pairs[0].class_names)
        return compare_pairs(pairs, data, self.corruptions, self.severities, self.seed, emit, stop)
