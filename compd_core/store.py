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

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from compd_core.errors import StoreError
from compd_core.pair_spec import PairSpec
from compd_core.search.results import ChainStep, ExitReason, Seed, SeedResult, Trigger
from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings

logger = logging.getLogger(__name__)

# The layout's version lives in the file's header (PRAGMA user_version). Version 1 kept it in a
# `schema_version` table instead; opening such a file for writing upgrades it in place.
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 30.0  # a writer holds the lock for one seed (milliseconds); 30 s means "stuck"
DEFAULT_SELECTION = "default"

STALE_AFTER_S = 15 * 60.0  # a run on another host with no write for this long has no owner

RunStatus = Literal["running", "finished", "stopped"]
# What a run reads as: "interrupted" is a run left "running" by a process that is gone.
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "stopped", "interrupted")
# Columns added to `runs` in version 3, each with its type (new files get them from _SCHEMA).
_ADDED_RUN_COLUMNS = (
    ("seed_plan", "TEXT"),  # JSON SeedPlan: the exact seeds, so a resume searches the same images
    ("owner_pid", "INTEGER"),  # the process searching the run while it is "running"
    ("owner_host", "TEXT"),
)
# Columns added to `runs` in version 4.
_ADDED_RUN_COLUMNS_4 = (
    ("pair_spec", "TEXT"),  # JSON PairSpec: the files (with hashes) a run's pair is rebuilt from
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    strategy TEXT NOT NULL,
    settings TEXT NOT NULL,            -- SearchSettings as JSON
    seed_count INTEGER NOT NULL,
    rng_seed INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped')),
    created REAL NOT NULL,             -- Unix time
    updated REAL NOT NULL,             -- last write: tells a live run from an abandoned one
    finished REAL,
    wall_seconds REAL NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    seed_plan TEXT,                    -- JSON SeedPlan: the exact seeds a resume searches again
    owner_pid INTEGER,                 -- the process searching the run while it is "running"
    owner_host TEXT,
    pair_spec TEXT                     -- JSON PairSpec (NULL: `pair` is a zoo id)
);
CREATE TABLE IF NOT EXISTS seeds (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    dataset_index INTEGER NOT NULL,
    label INTEGER NOT NULL,
    true_label INTEGER,
    image BLOB NOT NULL,
    exit_reason TEXT NOT NULL,         -- ExitReason member name
    queries INTEGER NOT NULL,
    iterations INTEGER NOT NULL,
    seconds REAL NOT NULL,
    found INTEGER NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS triggers (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    image BLOB NOT NULL,
    probs_original TEXT NOT NULL,      -- JSON list
    probs_compressed TEXT NOT NULL,    -- JSON list
    label_original INTEGER NOT NULL,
    label_compressed INTEGER NOT NULL,
    l2 REAL NOT NULL,
    linf REAL NOT NULL,
    PRIMARY KEY (run_id, position),
    FOREIGN KEY (run_id, position) REFERENCES seeds(run_id, position) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS chain_steps (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    step_no INTEGER NOT NULL,
    iteration INTEGER NOT NULL,
    operator TEXT NOT NULL,
    params TEXT NOT NULL,              -- JSON object
    fitness REAL,                      -- NULL stands for NaN (SQLite stores NaN as NULL)
    label_original INTEGER NOT NULL,
    label_compressed INTEGER NOT NULL,
    image BLOB NOT NULL,
    PRIMARY KEY (run_id, position, step_no),
    FOREIGN KEY (run_id, position) REFERENCES seeds(run_id, position) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS traces (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    trace BLOB NOT NULL,               -- zlib of little-endian float64: 10k iterations stay small
    PRIMARY KEY (run_id, position),
    FOREIGN KEY (run_id, position) REFERENCES seeds(run_id, position) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS selections (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT 'default',
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, name, position),
    FOREIGN KEY (run_id, position) REFERENCES triggers(run_id, position) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS repairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    selection TEXT NOT NULL,
    pair_before TEXT NOT NULL,
    pair_after TEXT NOT NULL,
    settings TEXT NOT NULL,            -- JSON
    report TEXT NOT NULL,              -- JSON
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS repairs_by_run ON repairs(run_id);
"""


# ---------------------------------------------------------------------------------------------
# Images


def encode_image(image: torch.Tensor) -> bytes:
    """(C, H, W) float image -> PNG bytes (exact on the 8-bit grid), else .npy bytes."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise StoreError(f"an image to store must be a float tensor (C, H, W), got {shape}")
    x = image.detach().cpu().to(torch.float32)
    levels = torch.round(x * 255.0)
    on_grid = bool(torch.equal(levels / 255.0, x)) and bool(((x >= 0) & (x <= 1)).all())
    if not on_grid or x.shape[0] not in (1, 3):
        buffer = io.BytesIO()
        np.save(buffer, x.numpy(), allow_pickle=False)
        return buffer.getvalue()
    pixels = levels.to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if x.shape[0] == 1 else pixels)  # L or RGB
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_image(data: bytes) -> torch.Tensor:
    """Bytes from ``encode_image`` -> the same (C, H, W) float32 tensor."""
    if data.startswith(_PNG_MAGIC):
        with Image.open(io.BytesIO(data)) as picture:
            pixels = np.array(picture)  # a writable copy for torch
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        channels_first = np.ascontiguousarray(pixels.transpose(2, 0, 1))
        return torch.from_numpy(channels_first).to(torch.float32) / 255.0
    if data.startswith(_NPY_MAGIC):
        return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False)).to(torch.float32)
    raise StoreError("a stored image is neither PNG nor .npy; the database is damaged")


# ---------------------------------------------------------------------------------------------
# Records


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
        return _dumps({"order": self.order, "indices": list(self.indices),
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


def _result_rows(run_id: str, result: SeedResult) -> tuple[tuple, tuple | None, list[tuple], tuple]:
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
            _dumps(_floats(t.probs_original)), _dumps(_floats(t.probs_compressed)),
            t.label_original, t.label_compressed,
            float(t.l2), float(t.linf),
        )
    chain_rows = [
        (run_id, int(seed.position), step_no, int(step.iteration), step.operator,
         _dumps(step.params), float(step.fitness), int(step.label_original),
         int(step.label_compressed), encode_image(step.image))
        for step_no, step in enumerate(result.chain)
    ]
    trace_blob = zlib.compress(np.asarray(result.trace, dtype="<f8").tobytes())
    return seed_row, trigger_row, chain_rows, (run_id, int(seed.position), trace_blob)


# ---------------------------------------------------------------------------------------------
# Connections


class _Connections:
    """One connection per thread; connections of threads that have ended are closed."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self._path = path
        self._read_only = read_only
        self._lock = threading.Lock()
        self._by_thread: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._closed = False

    def get(self) -> sqlite3.Connection:
        thread = threading.current_thread()
        with self._lock:
            if self._closed:
                raise StoreError(f"the store for {self._path} has been closed; open a new Store")
            entry = self._by_thread.get(thread.ident or 0)
            if entry is not None and entry[0] is thread:
                return entry[1]
            self._close_finished_threads()
            connection = _connect(self._path, self._read_only)
            self._by_thread[thread.ident or 0] = (thread, connection)
            return connection

    def _close_finished_threads(self) -> None:
        # Streamlit runs every rerun on a new thread: without this, connections would pile up.
        for ident, (owner, connection) in list(self._by_thread.items()):
            if not owner.is_alive():
                connection.close()
                del self._by_thread[ident]

    def close_all(self) -> None:
        with self._lock:
            for _, connection in self._by_thread.values():
                connection.close()
            self._by_thread.clear()
            self._closed = True


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection; read-only ones open the file with ``mode=ro`` and can never write it."""
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    else:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    connection.execute("PRAGMA foreign_keys = ON")
    if not read_only:
        connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _drop_version_table(connection: sqlite3.Connection) -> None:
    """1 -> 2: the version moved into the file header."""
    connection.execute("DROP TABLE IF EXISTS schema_version")


def _add_run_owner_columns(connection: sqlite3.Connection) -> None:
    """2 -> 3: runs keep their exact seed list and the process searching them."""
    _add_columns(connection, _ADDED_RUN_COLUMNS)


def _add_columns(connection: sqlite3.Connection, columns: tuple[tuple[str, str], ...]) -> None:
    present = {row["name"] for row in connection.execute("PRAGMA table_info(runs)")}
    for column, kind in columns:
        if column not in present:
            connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")


def _add_pair_spec_column(connection: sqlite3.Connection) -> None:
    """3 -> 4: runs keep the description of their pair (own files and their hashes)."""
    _add_columns(connection, _ADDED_RUN_COLUMNS_4)


# MIGRATIONS[n] upgrades a version-n file to version n + 1, inside the opening transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _drop_version_table,
    2: _add_run_owner_columns,
    3: _add_pair_spec_column,
}


def _stored_version(connection: sqlite3.Connection) -> tuple[int, set[str]]:
    """The file's schema version (0: empty, -1: not compd's) and its tables."""
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )}
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return version, tables
    if "schema_version" in tables:
        row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return (row[0] or 1), tables
    return (-1 if tables else 0), tables


# ---------------------------------------------------------------------------------------------
# The store


class Store:
    """Results of searches and repairs in one SQLite file, safe for one writer and many readers.

    ``create=False`` refuses a missing file (so a mistyped ``--db`` is reported instead of
    silently creating an empty database). ``read_only=True`` (implies ``create=False``) opens the
    file with ``mode=ro``: readers need no write access and never take the write lock.
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        create = create and not read_only
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a directory; give a database file such as compd.sqlite"
            )
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"no results database at {self.path}; run a search first "
                    "or pass --db with the file your searches wrote"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = _Connections(self.path, read_only)
        try:
            self._initialise()
        except BaseException:
            self._connections.close_all()
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        self._connections.close_all()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _initialise(self) -> None:
        with self._translate():
            try:
                if self.read_only:
                    version, tables = _stored_version(self._connections.get())
                else:
                    self._connections.get().execute("PRAGMA journal_mode = WAL")
                    version, tables = _stored_version(self._connections.get())
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"{self.path} is not an SQLite database ({exc}); pass another --db, "
                    "or move that file away to start a new results database"
                ) from exc
        self._check_integrity()
        self._check_version(version, tables)
        if version == SCHEMA_VERSION or self.read_only:
            return  # nothing to write: readers and up-to-date files take no write lock
        with self._write() as connection:
            version, tables = _stored_version(connection)  # another process may have upgraded
            self._check_version(version, tables)
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            else:
                for step in range(version, SCHEMA_VERSION):
                    MIGRATIONS[step](connection)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self, version: int, tables: set[str]) -> None:
        if version < 0:
            raise StoreError(
                f"{self.path} is an SQLite database of some other program (tables: "
                f"{', '.join(sorted(tables)[:5])}); pass another --db for compd's results"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer compd (schema {version}, this one "
                f"reads {SCHEMA_VERSION}); upgrade compd or use another --db"
            )
        if version == 0 and self.read_only:
            raise StoreError(
                f"{self.path} holds no compd results yet; run a search first "
                "or pass --db with the file your searches wrote"
            )

    def _check_integrity(self) -> None:
        """Refuse a damaged file on open, before a search writes results it cannot read back."""
        with self._translate():
            rows = [row[0] for row in self._connections.get().execute("PRAGMA quick_check")]
        if rows != ["ok"]:
            lines = [line for row in rows for line in str(row).splitlines()]
            problems = [line for line in lines if not line.startswith("***")] or lines
            raise StoreError(
                f"the results database {self.path} is damaged (SQLite's check: "
                f"{problems[0][:120]}, {len(problems)} problem(s)); restore it from a copy, "
                "or pass another --db (moving the file away starts a new one)"
            )

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLite's errors into StoreErrors that say what to do."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    f"{self.path} stayed locked by another writer for {BUSY_TIMEOUT_S:.0f} s; "
                    "wait for the other search or repair to finish and try again"
                ) from exc
            raise StoreError(f"cannot use the results database {self.path}: {exc}") from exc
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path} refused a write that breaks its rules: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the results database {self.path} is damaged or not a compd database ({exc}); "
                "pass another --db, or move that file away to start a new one"
            ) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (no deadlock on upgrade)."""
        with self._translate():
            connection = self._connections.get()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read snapshot, so a reader never sees half of a seed being written."""
        with self._translate():
            connection = self._connections.get()
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    def _require_run(self, connection: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(
                f"no run {run_id!r} in {self.path}; `compd runs list` shows the runs"
            )
        return row

    # -- runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        pair: str,
        strategy: str,
        settings: SearchSettings,
        seed_count: int,
        rng_seed: int,
        dataset: str,
        *,
        note: str = "",
        seed_plan: SeedPlan | None = None,
        pair_spec: PairSpec | None = None,
    ) -> str:
        """Record a new campaign and return its id (time-stamped, e.g. 20261121-070512-ab12).

        ``pair_spec`` describes the pair (own files with their hashes); without it ``pair``
        must be a zoo id. The creating process is recorded as the run's owner until it ends
        the run.
        """
        if not isinstance(settings, SearchSettings):
            raise StoreError(f"settings must be SearchSettings, got {type(settings).__name__}")
        if not isinstance(seed_count, int) or seed_count < 1:
            raise StoreError(f"a run needs at least one seed, got seed_count={seed_count!r}")
        settings_json = _dumps(asdict(settings))
        plan_json = None if seed_plan is None else seed_plan.to_json()
        spec_json = None if pair_spec is None or pair_spec.is_zoo else pair_spec.to_json()
        for _ in range(8):
            created = time.time()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
            run_id = f"{stamp}-{secrets.token_hex(2)}"
            try:
                with self._write() as connection:
                    connection.execute(
                        "INSERT INTO runs (id, pair, strategy, settings, seed_count, rng_seed, "
                        "dataset, status, created, updated, note, seed_plan, owner_pid, "
                        "owner_host, pair_spec) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, pair, strategy, settings_json, seed_count, int(rng_seed),
                         dataset, created, created, note, plan_json, os.getpid(),
                         socket.gethostname(), spec_json),
                    )
                return run_id
            except StoreError as exc:
                if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                    raise
        raise StoreError(f"could not find a free run id in {self.path}; try again")

    def resume_run(self, run_id: str) -> RunRecord:
        """Claim a run for this process and mark it running again (``--resume``); return it.

        Refused, leaving the run as it was, when the run is complete or when another search
        (another process, or another thread of this one) is searching it right now.
        """
        with self._write() as connection, _CLAIMS_LOCK:
            self._refuse_resume(connection, run_id)
            connection.execute(
                "UPDATE runs SET status = 'running', finished = NULL, updated = ?, "
                "owner_pid = ?, owner_host = ? WHERE id = ?",
                (time.time(), os.getpid(), socket.gethostname(), run_id),
            )
            _CLAIMS.add((str(self.path.resolve()), run_id))
        return self.get_run(run_id)

    def check_resumable(self, run_id: str) -> None:
        """Raise, changing nothing, if ``resume_run`` would refuse the run right now."""
        with self._read() as connection, _CLAIMS_LOCK:
            self._refuse_resume(connection, run_id)

    def _refuse_resume(self, connection: sqlite3.Connection, run_id: str) -> None:
        row = self._require_run(connection, run_id)
        done = connection.execute(
            "SELECT COUNT(*) FROM seeds WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        if row["status"] == "finished" and done >= row["seed_count"]:
            raise StoreError(
                f"run {run_id} is already finished: all {row['seed_count']} seeds were "
                f"searched; `compd runs show {run_id}` shows its results"
            )
        if row["status"] == "running" and (
            (str(self.path.resolve()), run_id) in _CLAIMS
            or (not _this_process(row) and _owner_alive(row))
        ):
            raise StoreError(
                f"run {run_id} is being searched right now by process {_owner(row)}; "
                "wait for it to end (or stop it) before resuming"
            )

    def set_seed_plan(self, run_id: str, plan: SeedPlan) -> None:
        """Fix the seeds of a run created without them (the dashboard creates a run first)."""
        with self._write() as connection:
            row = self._require_run(connection, run_id)
            if len(plan.indices) != row["seed_count"]:
                raise StoreError(
                    f"run {run_id} has {row['seed_count']} seeds, the plan {len(plan.indices)}"
                )
            connection.execute(
                "UPDATE runs SET seed_plan = ? WHERE id = ?", (plan.to_json(), run_id)
            )

    def finish_run(self, run_id: str, status: RunStatus, wall_seconds: float) -> None:
        """End a session of a run; its wall time is ADDED, so a resumed run totals its sessions."""
        if status not in ("finished", "stopped"):
            raise StoreError(f"a run ends as 'finished' or 'stopped', not {status!r}")
        now = time.time()
        with self._write() as connection:
            self._require_run(connection, run_id)
            connection.execute(
                "UPDATE runs SET status = ?, finished = ?, updated = ?, "
                "wall_seconds = wall_seconds + ? WHERE id = ?",
                (status, now, now, float(wall_seconds), run_id),
            )
        with _CLAIMS_LOCK:
            _CLAIMS.discard((str(self.path.resolve()), run_id))

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as connection:
            self._require_run(connection, run_id)
            row = connection.execute(
                _RUN_SUMMARY + " WHERE r.id = ? GROUP BY r.id", (run_id,)
            ).fetchone()
        return _run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._read() as connection:
            rows = connection.execute(
                _RUN_SUMMARY + " GROUP BY r.id ORDER BY r.created DESC, r.id DESC"
            ).fetchall()
        return [_run_record(row) for row in rows]

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its seeds, triggers, chains, traces, selections and repairs."""
        with self._write() as connection:
            self._require_run(connection, run_id)
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -- seeds ---------------------------------------------------------------------------------

    def save_result(self, run_id: str, result: SeedResult) -> None:
        """Persist one seed's result in one transaction, committed before returning.

        Saving a position again replaces its earlier result (and drops it from selections).
        """
        self.save_results(run_id, [result])

    def save_results(self, run_id: str, results: Sequence[SeedResult]) -> None:
        """Persist several seeds' results in ONE transaction: all or none of them.

        A stopped campaign saves its unfinished seeds this way, so Stop costs one commit,
        not one per seed.
        """
        rows = [_result_rows(run_id, result) for result in results]
        if not rows:
            return
        with self._write() as connection:
            run = self._require_run(connection, run_id)
            for seed_row, trigger_row, chain_rows, trace_row in rows:
                position = seed_row[1]
                if not 0 <= position < run["seed_count"]:
                    raise StoreError(
                        f"seed position {position} is outside run {run_id!r}, which has "
                        f"{run['seed_count']} seeds (positions 0..{run['seed_count'] - 1})"
                    )
                connection.execute(
                    "DELETE FROM seeds WHERE run_id = ? AND position = ?", (run_id, position)
                )
                connection.execute(
                    "INSERT INTO seeds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", seed_row
                )
                if trigger_row is not None:
                    connection.execute(
                        "INSERT INTO triggers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", trigger_row
                    )
                connection.executemany(
                    "INSERT INTO chain_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", chain_rows
                )
                connection.execute("INSERT INTO traces VALUES (?, ?, ?)", trace_row)
            connection.execute("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), run_id))

    def finished_positions(self, run_id: str) -> set[int]:
        """Seed positions with a stored result: what ``--resume`` skips."""
        with self._read() as connection:
            self._require_run(connection, run_id)
            rows = connection.execute("SELECT position FROM seeds WHERE run_id = ?", (run_id,))
            return {row[0] for row in rows}

    def load_results(
        self, run_id: str, positions: Iterable[int] | None = None, *, details: bool = True
    ) -> list[SeedResult]:
        """Rebuild the stored results, by position; ``details=False`` skips chains and traces."""
        wanted = None if positions is None else sorted({int(p) for p in positions})
        where, args = "run_id = ?", [run_id]
        if wanted is not None:
            where += " AND position IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(wanted))
        with self._read() as connection:
            self._require_run(connection, run_id)
            seeds = connection.execute(
                f"SELECT * FROM seeds WHERE {where} ORDER BY position", args
            ).fetchall()
            triggers = {row["position"]: row for row in connection.execute(
                f"SELECT * FROM triggers WHERE {where}", args
            )}
            chains: dict[int, list[sqlite3.Row]] = {}
            traces: dict[int, bytes] = {}
            if details:
                for row in connection.execute(
                    f"SELECT * FROM chain_steps WHERE {where} ORDER BY position, step_no", args
                ):
                    chains.setdefault(row["position"], []).append(row)
                traces = {row["position"]: row["trace"] for row in connection.execute(
                    f"SELECT position, trace FROM traces WHERE {where}", args
                )}
        if wanted is not None and len(seeds) != len(wanted):
            missing = sorted(set(wanted) - {row["position"] for row in seeds})
            raise StoreError(
                f"run {run_id!r} has no result for seed positions {missing}; "
                f"`compd runs show {run_id}` lists the positions it has"
            )
        return [
            _seed_result(row, triggers.get(row["position"]), chains.get(row["position"], []),
                         traces.get(row["position"]))
            for row in seeds
        ]

    def load_trigger(self, run_id: str, position: int) -> Trigger | None:
        """The trigger found from one seed, or None when that seed's search found none."""
        with self._read() as connection:
            self._require_run(connection, run_id)
            seed = connection.execute(
                "SELECT found FROM seeds WHERE run_id = ? AND position = ?", (run_id, position)
            ).fetchone()
            if seed is None:
                raise StoreError(
                    f"run {run_id!r} has no result for seed position {position}; "
                    f"`compd runs show {run_id}` lists the positions it has"
                )
            row = connection.execute(
                "SELECT * FROM triggers WHERE run_id = ? AND position = ?", (run_id, position)
            ).fetchone()
        return None if row is None else _trigger(row)

    # -- selections ----------------------------------------------------------------------------

    def set_selection(
        self, run_id: str, positions: Iterable[int], name: str = DEFAULT_SELECTION
    ) -> None:
        """Replace a named hand-picked set of triggers (an empty set deletes it)."""
        chosen = sorted({int(p) for p in positions})
        with self._write() as connection:
            self._require_run(connection, run_id)
            found = {row[0] for row in connection.execute(
                "SELECT position FROM triggers WHERE run_id = ?", (run_id,)
            )}
            missing = [p for p in chosen if p not in found]
            if missing:
                raise StoreError(
                    f"run {run_id!r} has no trigger at seed positions {missing}; only seeds "
                    "whose search found a deviation can be selected"
                )
            connection.execute(
                "DELETE FROM selections WHERE run_id = ? AND name = ?", (run_id, name)
            )
            connection.executemany(
                "INSERT INTO selections (run_id, name, position) VALUES (?, ?, ?)",
                [(run_id, name, p) for p in chosen],
            )

    def get_selection(self, run_id: str, name: str = DEFAULT_SELECTION) -> list[int]:
        """Positions of a named selection, ascending (empty when it does not exist)."""
        with self._read() as connection:
            self._require_run(connection, run_id)
            rows = connection.execute(
                "SELECT position FROM selections WHERE run_id = ? AND name = ? ORDER BY position",
                (run_id, name),
            )
            return [row[0] for row in rows]

    def list_selections(self, run_id: str) -> list[str]:
        """Names of a run's non-empty selections."""
        with self._read() as connection:
            self._require_run(connection, run_id)
            rows = connection.execute(
                "SELECT DISTINCT name FROM selections WHERE run_id = ? ORDER BY name", (run_id,)
            )
            return [row[0] for row in rows]

    # -- repairs -------------------------------------------------------------------------------

    def save_repair(
        self,
        run_id: str,
        selection: str,
        pair_before: str,
        pair_after: str,
        settings: Mapping[str, Any] | Any,
        report: Mapping[str, Any] | Any,
    ) -> int:
        """Record a repair (settings and report: mappings or dataclasses) and return its id."""
        settings_json = _dumps(_plain(settings))
        report_json = _dumps(_plain(report))
        with self._write() as connection:
            self._require_run(connection, run_id)
            cursor = connection.execute(
                "INSERT INTO repairs (run_id, selection, pair_before, pair_after, settings, "
                "report, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, selection, pair_before, pair_after, settings_json, report_json,
                 time.time()),
            )
            return int(cursor.lastrowid or 0)

    def list_repairs(self, run_id: str) -> list[RepairRecord]:
        """A run's repairs, oldest first."""
        with self._read() as connection:
            self._require_run(connection, run_id)
            rows = connection.execute(
                "SELECT * FROM repairs WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [
            RepairRecord(row["id"], row["run_id"], row["selection"], row["pair_before"],
                         row["pair_after"], json.loads(row["settings"]), json.loads(row["report"]),
                         row["created"])
            for row in rows
        ]


# ---------------------------------------------------------------------------------------------
# Row <-> dataclass


_RUN_SUMMARY = (
    "SELECT r.*, COUNT(s.position) AS seeds_done, COALESCE(SUM(s.found), 0) AS found_count, "
    "COALESCE(SUM(s.queries), 0) AS queries_total FROM runs r "
    "LEFT JOIN seeds s ON s.run_id = r.id"
)


# Runs this process is searching (database path, run id): a second resume from another thread
# of the same process is refused like one from another process.
_CLAIMS: set[tuple[str, str]] = set()
_CLAIMS_LOCK = threading.Lock()


def _owner(row: sqlite3.Row) -> str:
    pid, host = _optional(row, "owner_pid"), _optional(row, "owner_host")
    return f"{pid} on {host}" if pid else "unknown"


def _this_process(row: sqlite3.Row) -> bool:
    return _optional(row, "owner_pid") == os.getpid() and _optional(row, "owner_host") == socket.gethostname()


def _owner_alive(row: sqlite3.Row) -> bool:
    """Whether the process that marked a run "running" still exists.

    On this host the pid answers; for another host (a shared file) or a run stored before
    owners were recorded, only the heartbeat can: a write within ``STALE_AFTER_S``.
    """
    pid, host = _optional(row, "owner_pid"), _optional(row, "owner_host")
    if pid is None or host != socket.gethostname():
        return time.time() - row["updated"] < STALE_AFTER_S
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _optional(row: sqlite3.Row, column: str) -> Any:
    """A column added in a later schema version; None where a read-only open left a file old."""
    return row[column] if column in row.keys() else None


def _run_record(row: sqlite3.Row) -> RunRecord:
    plan, pid = _optional(row, "seed_plan"), _optional(row, "owner_pid")
    spec = _optional(row, "pair_spec")
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
        status="interrupted" if row["status"] == "running" and not _owner_alive(row)
        else row["status"],
        created=row["created"], updated=row["updated"],
        finished=row["finished"], wall_seconds=row["wall_seconds"], note=row["note"],
        seeds_done=row["seeds_done"], found=row["found_count"], queries=row["queries_total"],
        seed_plan=None if plan is None else SeedPlan.from_json(plan),
        owner=f"{pid}@{_optional(row, 'owner_host')}" if pid else None,
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


def _trigger(row: sqlite3.Row) -> Trigger:
    return Trigger(
        image=decode_image(row["image"]),
        probs_original=torch.tensor(json.loads(row["probs_original"]), dtype=torch.float32),
        probs_compressed=torch.tensor(json.loads(row["probs_compressed"]), dtype=torch.float32),
        l2=row["l2"],
        linf=row["linf"],
    )


def _seed_result(
    row: sqlite3.Row, trigger: sqlite3.Row | None, chain: Sequence[sqlite3.Row], trace: bytes | None
) -> SeedResult:
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
                      None if trigger is None else _trigger(trigger), steps, values)


# ---------------------------------------------------------------------------------------------
# JSON


def _floats(values: torch.Tensor) -> list[float]:
    return values.detach().cpu().to(torch.float32).flatten().tolist()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.name
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store {type(value).__name__} as JSON: {exc}") from exc
