"""What the store hands out: a run with its counts, its fixed seed plan, and its repairs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from compd_core.errors import StoreError
from compd_core.pair_spec import PairSpec
from compd_core.search.settings import SearchSettings
from compd_core.store.json_values import dumps

DEFAULT_SELECTION = "default"

RunStatus = Literal["running", "finished", "stopped"]
# What a run reads as: "interrupted" is a run left "running" by a process that is gone.
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "stopped", "interrupted")


@dataclass(frozen=True)
class SeedPlan:
    """The seeds a run searches, fixed when it starts: position i is dataset image
    ``indices[i]`` with reference label ``labels[i]``. A resume reuses it instead of drawing
    seeds again, so every position keeps its image."""

    order: str
    indices: tuple[int, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.labels) or not self.indices:
            raise StoreError(
                f"a seed plan needs one label per seed, got {len(self.indices)} indices and "
                f"{len(self.labels)} labels"
            )

    def to_json(self) -> str:
        return dumps({"order": self.order, "indices": list(self.indices),
                      "labels": list(self.labels)})

    @classmethod
    def from_json(cls, text: str) -> SeedPlan:
        data = json.loads(text)
        return cls(str(data["order"]), tuple(int(i) for i in data["indices"]),
                   tuple(int(label) for label in data["labels"]))


@dataclass(frozen=True)
class RunRecord:
    """One campaign as stored, with counts of what it has found so far."""

    id: str
    pair: str
    strategy: str
    settings: SearchSettings
    seed_count: int
    rng_seed: int
    dataset: str
    status: str
    created: float
    updated: float
    finished: float | None
    wall_seconds: float
    note: str
    seeds_done: int
    found: int
    queries: int  # over all seeds done
    seed_plan: SeedPlan | None = None  # None: a run stored before plans were kept
    owner: str | None = None  # "pid@host" of the process searching it, while running
    pair_spec: PairSpec | None = None  # own files; None: ``pair`` is a zoo id

    def pair_source(self) -> PairSpec:
        """How to rebuild this run's pair: its stored files, else the zoo pair it names."""
        return self.pair_spec if self.pair_spec is not None else PairSpec.zoo(self.pair)

    @property
    def found_rate(self) -> float:
        """Found / seeds done (0 before the first seed ends)."""
        return self.found / self.seeds_done if self.seeds_done else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (settings as a dict)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("seed_plan", "pair_spec")}
        data["settings"] = asdict(self.settings)
        data["pair_spec"] = self.pair_source().to_dict()
        data["seed_order"] = None if self.seed_plan is None else self.seed_plan.order
        data["found_rate"] = self.found_rate
        return data


@dataclass(frozen=True)
class RepairRecord:
    """One repair of a run's selection: which pair came out, with what settings and effect."""

    id: int
    run_id: str
    selection: str
    pair_before: str
    pair_after: str
    settings: dict[str, Any]
    report: dict[str, Any]
    created: float
