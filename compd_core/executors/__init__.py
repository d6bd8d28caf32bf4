"""Who searches a campaign's seeds: this process (the default) or the workers of a Ray cluster."""

from __future__ import annotations

import os

from compd_core.errors import ConfigError
from compd_core.executors.base import (
    Executor,
    Job,
    JobTask,
    PairLoader,
    PairSource,
    SearchWork,
    chunk_size,
)
from compd_core.executors.inprocess import InProcessExecutor

EXECUTORS = ("inprocess", "ray")


def make_executor(name: str, *, address: str | None = None, workers: int | None = None,
                  chunk: int | None = None) -> Executor:
    """An executor by name; ``address``, ``workers`` and ``chunk`` apply to Ray only."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    if name == "inprocess":
        if address is not None or workers is not None or chunk is not None:
            raise ConfigError("--address, --workers and --chunk apply to --executor ray only; "
                              "add --executor ray or leave them out")
        return InProcessExecutor()
    from compd_core.executors.ray_executor import RayExecutor

    return RayExecutor(address, workers, chunk=chunk)


def executor_from_environment() -> Executor:
    """The executor a server's jobs use: ``$COMPD_EXECUTOR`` (inprocess or ray), with
    ``$COMPD_RAY_ADDRESS`` and ``$COMPD_RAY_WORKERS`` for Ray."""
    workers = os.environ.get("COMPD_RAY_WORKERS")
    if workers is not None and not workers.strip().isdigit():
        raise ConfigError(f"COMPD_RAY_WORKERS must be a whole number >= 1, got {workers!r}")
    try:
        return make_executor(os.environ.get("COMPD_EXECUTOR", "inprocess"),
                             address=os.environ.get("COMPD_RAY_ADDRESS"),
                             workers=None if workers is None else int(workers))
    except ConfigError as exc:
        raise ConfigError(f"the server's executor settings (COMPD_EXECUTOR, COMPD_RAY_*): {exc}") from exc


__all__ = ["EXECUTORS", "Executor", "InProcessExecutor", "Job", "JobTask", "PairLoader", "PairSource",
           "SearchWork", "chunk_size", "executor_from_environment", "make_executor"]
