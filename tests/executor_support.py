"""A pair loader whose compressed model kills its Ray worker once, in the middle of a chunk, and
a whole job that kills its worker (imported by name in the workers: tests/ is on their path),
and how tests compare searches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from compd_core.events import Progress
from compd_core.executors import PairLoader
from compd_core.models.pair import ModelPair
from compd_core.search.results import SeedResult
from compd_core.store import Store

DIE_ON_CALL = 4  # the worker has searched a few steps of its chunk when it dies


class DiesOnce:
    """Wraps a classifier; on its ``DIE_ON_CALL``-th batch the process exits at once, unless
    ``marker`` exists. Creating the marker is atomic, so exactly one worker ever dies."""

    def __init__(self, model, marker: str) -> None:
        self.model, self.marker, self.calls = model, marker, 0
        self.info = model.info

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == DIE_ON_CALL:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(1)  # what a killed or crashed worker looks like to Ray
        return self.model.predict_proba(x)

    def __getattr__(self, name: str):
        """Everything else is the wrapped model's (its differentiable stand-in too, so the
        search runs the boundary probes it runs on the unwrapped pair)."""
        return getattr(self.model, name)


@dataclass(frozen=True)
class DyingPairLoader(PairLoader):
    """The zoo pair, with a compressed model that kills the first worker to use it once."""

    marker: str = ""

    def __call__(self) -> ModelPair:
        pair = super().__call__()
        return ModelPair(pair.original, DiesOnce(pair.compressed, self.marker), name=pair.name)


@dataclass(frozen=True)
class CountingPairLoader(PairLoader):
    """The zoo pair; every load leaves a file in ``folder`` that names the process and pair,
    so a test sees how often each worker loaded each pair (a driver's loads count too)."""

    folder: str = ""

    def __call__(self) -> ModelPair:
        name = f"{os.getpid()}-{self.source.name}-{time.monotonic_ns()}"
        open(os.path.join(self.folder, name), "w").close()
        return super().__call__()

    @staticmethod
    def loads(folder: Path) -> dict[tuple[int, str], int]:
        """(process id, pair) -> how many times that process loaded that pair."""
        counts: dict[tuple[int, str], int] = {}
        for entry in folder.iterdir():
            pid, rest = entry.name.split("-", 1)
            key = (int(pid), rest.rsplit("-", 1)[0])
            counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass(frozen=True)
class DyingTask:
    """A whole job whose process exits once it has told its first progress, as a worker
    killed for its memory does."""

    kind = "characterize"

    def local_files(self) -> list[str]:
        return []

    def __call__(self, emit, stop):
        emit(Progress("characterize", "cell", 1, 2, "clean"))
        os._exit(1)


def by_position(results: list[SeedResult]) -> dict[int, SeedResult]:
    return {r.seed.position: r for r in results}


def same_search(a: SeedResult, b: SeedResult) -> bool:
    """The same seed searched the same way: queries, iterations, exit, and the exact trigger."""
    if (a.seed.index, a.queries, a.iterations, a.exit_reason) != (b.seed.index, b.queries,
                                                                   b.iterations, b.exit_reason):
        return False
    if a.trigger is None or b.trigger is None:
        return a.trigger is None and b.trigger is None
    return torch.equal(a.trigger.image, b.trigger.image)


def resume_finishes(db: Path, run_id: str, before: dict[int, SeedResult], seeds: int,
                    env: dict[str, str], *options: str) -> None:
    """``compd search --resume RUN`` searches exactly the seeds a killed search left, and
    leaves the stored ones as they were."""
    resumed = subprocess.run([sys.executable, "-m", "compd_core", "search", "--resume", run_id,
                              "--db", str(db), "--json", *options], capture_output=True,
                             text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["seeds"] == seeds - len(before)  # only the missing ran
    with Store(db, read_only=True) as store:
        after = by_position(store.load_results(run_id))
        assert store.get_run(run_id).status == "finished"
    assert sorted(after) == list(range(seeds))
    assert all(same_search(after[p], before[p]) for p in before)  # nothing stored was redone
