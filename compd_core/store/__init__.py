"""The one place that talks to the results database: runs, seeds, triggers, chains, repairs.

Everything lives in ONE SQLite file so that a user can copy, share or delete a campaign's
results as a single thing, and so that the dashboard can read while a search writes.

Concurrency: every thread gets its own connection (created on first use, closed when the
store closes or when its thread has ended), the file is in WAL mode, and every write is one
``BEGIN IMMEDIATE`` transaction. A writer therefore never blocks readers, readers see whole
seeds or nothing (each read is one snapshot transaction), and two writers wait on each other
for up to ``BUSY_TIMEOUT_S`` instead of failing.

Durability: ``save_result`` commits before it returns; with ``synchronous=NORMAL`` in WAL mode a
committed seed survives the process being killed (only an OS crash or power cut may lose the
last few commits), so a SIGKILLed campaign loses nothing it had already reported.

Ownership: a running run records the process searching it (pid and host) and ``updated`` is
its heartbeat, so a run whose process is gone reads as "interrupted", and a second resume of a
run that is being searched is refused instead of searching the same seeds twice.

Integrity: opening a file runs SQLite's ``quick_check``; a damaged file is refused at once
rather than accepting writes that cannot be read back.

Images are stored as PNG bytes (1 channel as L, 3 as RGB) because every searched input lies on
the 8-bit grid: PNG is lossless there and the bytes open in any viewer. An image that is not
on the grid (or has another channel count) is stored as an .npy float array instead, so a
round trip is exact either way.
"""

from compd_core.store.database import Store
from compd_core.store.images import decode_image, encode_image
from compd_core.store.ownership import STALE_AFTER_S
from compd_core.store.records import (
    DEFAULT_SELECTION,
    RUN_STATUSES,
    RepairRecord,
    RunRecord,
    RunStatus,
    SeedPlan,
)
from compd_core.store.schema import BUSY_TIMEOUT_S, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_SELECTION",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "RepairRecord",
    "RunRecord",
    "RunStatus",
    "SeedPlan",
    "Store",
    "decode_image",
    "encode_image",
]
