"""Rows <-> results: one seed's result as the rows of its tables, and back."""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from compd_core.errors import StoreError
from compd_core.pair_spec import PairSpec
from compd_core.search.criterion import Criterion
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store.images import decode_image, encode_image
from compd_core.store.json_values import dumps, floats
from compd_core.store.ownership import owner_alive
from compd_core.store.records import RunRecord, SeedPlan
from compd_core.store.schema import optional_column

logger = logging.getLogger(__name__)

# A run with the counts of what its seeds found so far; callers add WHERE and GROUP BY r.id.
RUN_SUMMARY = (
    "SELECT r.*, COUNT(s.position) AS seeds_done, COALESCE(SUM(s.found), 0) AS found_count, "
    "COALESCE(SUM(s.queries), 0) AS queries_total FROM runs r "
    "LEFT JOIN seeds s ON s.run_id = r.id"
)


def result_rows(run_id: str, result: SeedResult) -> tuple[tuple, tuple | None, list[tuple], tuple]:
    """One seed's rows: seeds, triggers (or None), chain_steps, traces."""
    seed = result.seed
    if not isinstance(result.exit_reason, ExitReason):
        raise StoreError(f"exit_reason must be an ExitReason, got {result.exit_reason!r}")
    seed_row = (
        run_id, int(seed.position), int(seed.index), int(seed.label),
        None if seed.true_label is None else int(seed.true_label), encode_image(seed.image),
        result.exit_reason.name, int(result.queries), int(result.iterations),
        float(result.seconds), int(result.found),
    )
    trigger_row = None
    if result.trigger is not None:
        t = result.trigger
        trigger_row = (
            run_id, int(seed.position), encode_image(t.image),
            dumps(floats(t.probs_original)), dumps(floats(t.probs_compressed)),
            t.label_original, t.label_compressed,
            float(t.l2), float(t.linf),
        )
    chain_rows = [
        (run_id, int(seed.position), step_no, int(step.iteration), step.operator,
         dumps(step.params), float(step.fitness), int(step.label_original),
         int(step.label_compressed), encode_image(step.image))
        for step_no, step in enumerate(result.chain)
    ]
    trace_blob = zlib.compress(np.asarray(result.trace, dtype="<f8").tobytes())
    return seed_row, trigger_row, chain_rows, (run_id, int(seed.position), trace_blob)


def run_record(row: sqlite3.Row) -> RunRecord:
    """A ``RUN_SUMMARY`` row as a record; settings this version does not know are dropped."""
    plan, pid = optional_column(row, "seed_plan"), optional_column(row, "owner_pid")
    spec = optional_column(row, "pair_spec")
    stored = _upgrade_settings(json.loads(row["settings"]))
    known = {f.name for f in fields(SearchSettings)}
    dropped = sorted(set(stored) - known)
    if dropped:
        logger.warning(
            "run %s: ignoring settings this version does not know: %s", row["id"], dropped
        )
    return RunRecord(
        id=row["id"], pair=row["pair"], strategy=row["strategy"],
        settings=SearchSettings(**{k: v for k, v in stored.items() if k in known}),
        seed_count=row["seed_count"], rng_seed=row["rng_seed"], dataset=row["dataset"],
        status="interrupted" if row["status"] == "running" and not owner_alive(row)
        else row["status"],
        created=row["created"], updated=row["updated"],
        finished=row["finished"], wall_seconds=row["wall_seconds"], note=row["note"],
        seeds_done=row["seeds_done"], found=row["found_count"], queries=row["queries_total"],
        seed_plan=None if plan is None else SeedPlan.from_json(plan),
        owner=f"{pid}@{optional_column(row, 'owner_host')}" if pid else None,
        pair_spec=None if spec is None else PairSpec.from_json(spec),
    )


def _upgrade_settings(stored: dict[str, Any]) -> dict[str, Any]:
    """Settings as this version reads them: older runs stored the criterion as its kind name and
    the L-inf bound beside it; they keep exactly the bound they ran with (none if none)."""
    criterion = stored.get("criterion", "valid")
    if isinstance(criterion, str):
        criterion = {"kind": criterion, "max_linf": stored.pop("max_linf", None)}
    stored["criterion"] = Criterion.from_dict(criterion)
    return stored


def trigger_from_row(row: sqlite3.Row) -> Trigger:
    """A ``triggers`` row as the trigger it stores."""
    return Trigger(
        image=decode_image(row["image"]),
        probs_original=torch.tensor(json.loads(row["probs_original"]), dtype=torch.float32),
        probs_compressed=torch.tensor(json.loads(row["probs_compressed"]), dtype=torch.float32),
        l2=row["l2"],
        linf=row["linf"],
    )


def seed_result_from_rows(
    row: sqlite3.Row, trigger: sqlite3.Row | None, chain: Sequence[sqlite3.Row], trace: bytes | None
) -> SeedResult:
    """One seed's result from its ``seeds`` row, trigger row, chain rows and trace blob."""
    try:
        reason = ExitReason[row["exit_reason"]]
    except KeyError as exc:
        raise StoreError(
            f"seed {row['position']} has an exit reason this compd does not know "
            f"({row['exit_reason']!r}); upgrade compd"
        ) from exc
    seed = Seed(row["position"], row["dataset_index"], decode_image(row["image"]), row["label"],
                row["true_label"])
    steps = [
        ChainStep(step["iteration"], step["operator"], json.loads(step["params"]),
                  float("nan") if step["fitness"] is None else step["fitness"],
                  step["label_original"], step["label_compressed"], decode_image(step["image"]))
        for step in chain
    ]
    values = [] if trace is None else np.frombuffer(zlib.decompress(trace), dtype="<f8").tolist()
    return SeedResult(seed, reason, row["queries"], row["iterations"], row["seconds"],
                      None if trigger is None else trigger_from_row(trigger), steps, values)
