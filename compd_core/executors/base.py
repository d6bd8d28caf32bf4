"""The executor interface: who searches a campaign's seeds, and what a worker is given.

A campaign hands an executor its seeds and a ``SearchWork`` (what every worker needs to search
them: small, picklable, never a loaded model); the executor yields each ``SeedResult`` as it is
final. Only the campaign's process writes the store, so whatever runs the seeds, a result is
committed the moment it reaches that process.

A whole job (a repair, a characterization) goes the same way as one ``JobTask``: a small,
picklable description that does its work when called, wherever the executor runs it, and
tells its events to the caller's sink.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import torch

from compd_core.events import EventSink, JobKind
from compd_core.models.pair import ModelPair
from compd_core.search.results import Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext

MIN_CHUNK = 64  # fewer seeds per chunk leave the engine's batched forward passes half empty
MAX_CHUNK = 256  # the engine searches at most this many chains at once


class PairSource(Protocol):
    """A serialisable description of a pair that can build it (a run's stored pair)."""

    def load(self) -> ModelPair: ...


@dataclass(frozen=True)
class PairLoader:
    """How a worker builds its own pair: a zoo id or a ``PairSource``, and the device.

    Picklable and a few bytes long, so it travels with every task; a loaded ``ModelPair`` never
    does (its models stay where they were loaded).
    """

    source: str | Any  # a zoo pair id, or a ``PairSpec`` (any picklable object with ``load()``)
    device: str = "cpu"  # 'cpu' or 'cuda', as ``resolve_device`` decided

    def __call__(self) -> ModelPair:
        if isinstance(self.source, str):
            from compd_core.zoo import load_pair

            pair = load_pair(self.source)
        else:
            pair = self.source.load()
        return pair.on(self.device) if self.device != "cpu" else pair


@dataclass(frozen=True)
class SearchWork:
    """Everything a worker needs besides the seeds; a seed's result depends on nothing else."""

    loader: PairLoader
    strategy: str
    settings: SearchSettings
    rng_seed: int


Job = tuple[SearchWork, Sequence[Seed], SearchContext]  # one campaign's part of a multi-pair run
T = TypeVar("T", covariant=True)


class JobTask(Protocol[T]):
    """A whole job as a small picklable value (no loaded model, no open store, no lock).

    Called, it does the work: it tells its progress to ``emit``, ends after its current unit
    once ``stop`` is set (its ``Stopped`` event still told), and returns its result.
    """

    kind: JobKind

    def local_files(self) -> list[str]:
        """The files on this machine that the task reads (a store, model files, a dataset):
        where a cluster's other machines cannot see them, the task runs in this process."""
        ...

    def __call__(self, emit: EventSink, stop: threading.Event) -> T: ...


def files_read(pairs: Sequence[Any], dataset: str) -> list[str]:
    """A ``JobTask``'s ``local_files``: the pairs' own files (``PairSpec.local_files``) and the
    dataset's file, unless it is one of the shipped datasets, each once."""
    from compd_core.data.named import is_named
    from compd_core.data.resolve import npz_split

    files = [path for pair in pairs for path in pair.local_files()]
    if not is_named(dataset):
        files.append(str(npz_split(dataset)[0]))
    return list(dict.fromkeys(files))


class Executor(ABC):
    """Runs a campaign's seeds and yields each result as soon as it is final.

    It honours ``context.stop`` like a strategy does: it ends after the current unit and hands
    back the seeds that unit cut short (exit reason ``STOPPED``).
    """

    name: str

    @abstractmethod
    def run(self, work: SearchWork, seeds: Sequence[Seed], context: SearchContext) -> Iterator[SeedResult]:
        """Search ``seeds``; ``context`` carries the driver's pair, events and stop signal."""

    @abstractmethod
    def run_job(self, task: JobTask[Any], emit: EventSink, stop: threading.Event) -> Any:
        """Run one whole job and return its result; its events reach ``emit`` while it runs,
        ``stop`` ends it after its current unit, and a ``CompdError`` it raises is raised here."""

    def run_many(self, jobs: Sequence[Job]) -> Iterator[tuple[int, SeedResult]]:
        """Search several campaigns' seeds (a campaign over several pairs); yields each result
        with the index of its job. Here one job after the other; once a job's stop signal is
        set, the jobs not started yet stay unsearched."""
        for k, (work, seeds, context) in enumerate(jobs):
            if context.stop.is_set():
                return
            for result in self.run(work, seeds, context):
                yield k, result


def chunk_size(seeds: int, workers: int) -> int:
    """Seeds per task: about four tasks per worker (so results stream back while the others
    run), but never fewer than ``MIN_CHUNK`` nor more than ``MAX_CHUNK`` seeds."""
    return max(MIN_CHUNK, min(MAX_CHUNK, math.ceil(seeds / max(1, 4 * workers))))


def chunked(seeds: Sequence[Seed], size: int) -> list[list[Seed]]:
    """Seeds in chunks of ``size``, each ready to be pickled (see ``compact_seed``)."""
    return [[compact_seed(s) for s in seeds[start : start + size]] for start in range(0, len(seeds), size)]


def _own(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor that owns exactly its values: pickling a view sends its whole storage (a seed
    image is a view of its dataset, a chain step's image one of a 256-image batch)."""
    return tensor.clone()


def compact_seed(seed: Seed) -> Seed:
    return replace(seed, image=_own(seed.image))


def compact_result(result: SeedResult) -> SeedResult:
    """``result`` with tensors of its own, so that it pickles to its own size: measured on
    ``compd`` results, 11 MB per seed with the batch storages its chain steps view."""
    trigger = result.trigger
    if trigger is not None:
        trigger = Trigger(_own(trigger.image), _own(trigger.probs_original),
                          _own(trigger.probs_compressed), trigger.l2, trigger.linf)
    chain = [replace(step, image=_own(step.image)) for step in result.chain]
    return replace(result, seed=compact_seed(result.seed), trigger=trigger, chain=chain)
