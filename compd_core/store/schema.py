"""The database's layout: its tables, its version and the steps that upgrade older files,
and the per-thread connections every read and write goes through."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compd_core.errors import StoreError

# The layout's version lives in the file's header (PRAGMA user_version). Version 1 kept it in a
# `schema_version` table instead; opening such a file for writing upgrades it in place.
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 30.0  # a writer holds the lock for one seed (milliseconds); 30 s means "stuck"

# Columns added to `runs` in version 3, each with its type (new files get them from SCHEMA_SQL).
_ADDED_RUN_COLUMNS = (
    ("seed_plan", "TEXT"),  # JSON SeedPlan: the exact seeds, so a resume searches the same images
    ("owner_pid", "INTEGER"),  # the process searching the run while it is "running"
    ("owner_host", "TEXT"),
)
# Columns added to `runs` in version 4.
_ADDED_RUN_COLUMNS_4 = (
    ("pair_spec", "TEXT"),  # JSON PairSpec: the files (with hashes) a run's pair is rebuilt from
)

SCHEMA_SQL = """
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


class Connections:
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


def stored_version(connection: sqlite3.Connection) -> tuple[int, set[str]]:
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



def optional_column(row: sqlite3.Row, column: str) -> Any:
    """A column added in a later schema version; None where a read-only open left a file old."""
    return row[column] if column in row.keys() else None
