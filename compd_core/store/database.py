"""``Store``: runs, seeds, triggers, chains, selections and repairs in one SQLite file."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compd_core.errors import StoreError
from compd_core.pair_spec import PairSpec
from compd_core.search.results import SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store.json_values import dumps, plain
from compd_core.store.ownership import (
    CLAIMS,
    CLAIMS_LOCK,
    owner_alive,
    owner_label,
    searched_by_this_process,
)
from compd_core.store.records import (
    DEFAULT_SELECTION,
    RepairRecord,
    RunRecord,
    RunStatus,
    SeedPlan,
)
from compd_core.store.rows import (
    RUN_SUMMARY,
    result_rows,
    run_record,
    seed_result_from_rows,
    trigger_from_row,
)
from compd_core.store.schema import (
    BUSY_TIMEOUT_S,
    MIGRATIONS,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    Connections,
    stored_version,
)


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
        self._connections = Connections(self.path, read_only)
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
                    version, tables = stored_version(self._connections.get())
                else:
                    self._connections.get().execute("PRAGMA journal_mode = WAL")
                    version, tables = stored_version(self._connections.get())
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
            version, tables = stored_version(connection)  # another process may have upgraded
            self._check_version(version, tables)
            if version == 0:
                for statement in SCHEMA_SQL.split(";"):
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
        settings_json = dumps(asdict(settings))
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
        with self._write() as connection, CLAIMS_LOCK:
            self._refuse_resume(connection, run_id)
            connection.execute(
                "UPDATE runs SET status = 'running', finished = NULL, updated = ?, "
                "owner_pid = ?, owner_host = ? WHERE id = ?",
                (time.time(), os.getpid(), socket.gethostname(), run_id),
            )
            CLAIMS.add((str(self.path.resolve()), run_id))
        return self.get_run(run_id)

    def check_resumable(self, run_id: str) -> None:
        """Raise, changing nothing, if ``resume_run`` would refuse the run right now."""
        with self._read() as connection, CLAIMS_LOCK:
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
            (str(self.path.resolve()), run_id) in CLAIMS
            or (not searched_by_this_process(row) and owner_alive(row))
        ):
            raise StoreError(
                f"run {run_id} is being searched right now by process {owner_label(row)}; "
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
        with CLAIMS_LOCK:
            CLAIMS.discard((str(self.path.resolve()), run_id))

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as connection:
            self._require_run(connection, run_id)
            row = connection.execute(
                RUN_SUMMARY + " WHERE r.id = ? GROUP BY r.id", (run_id,)
            ).fetchone()
        return run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._read() as connection:
            rows = connection.execute(
                RUN_SUMMARY + " GROUP BY r.id ORDER BY r.created DESC, r.id DESC"
            ).fetchall()
        return [run_record(row) for row in rows]

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
        rows = [result_rows(run_id, result) for result in results]
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
            seed_result_from_rows(row, triggers.get(row["position"]),
                                  chains.get(row["position"], []), traces.get(row["position"]))
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
        return None if row is None else trigger_from_row(row)

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
        settings_json = dumps(plain(settings))
        report_json = dumps(plain(report))
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
