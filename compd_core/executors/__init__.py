"""Who searches a campaign's seeds: this process (the default) or the workers of a Ray cluster."""

from __future__ import annotations

from compd_core.errors import ConfigError
from compd_core.executors.base import Executor, PairLoader, PairSource, SearchWork, chunk_size
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


__all__ = ["EXECUTORS", "Executor", "InProcessExecutor", "PairLoader", "PairSource",
           "SearchWork", "chunk_size", "make_executor"]
