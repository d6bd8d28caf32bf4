"""Who is searching a run: a running run records its process (pid and host) and ``updated``
is its heartbeat, so a run whose process is gone reads as "interrupted" and a second resume
of a run being searched is refused."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time

from compd_core.store.schema import optional_column

STALE_AFTER_S = 15 * 60.0  # a run on another host with no write for this long has no owner

# Runs this process is searching (database path, run id): a second resume from another thread
# of the same process is refused like one from another process.
CLAIMS: set[tuple[str, str]] = set()
CLAIMS_LOCK = threading.Lock()


def owner_label(row: sqlite3.Row) -> str:
    """The process a running run names as its owner, for messages ("pid on host")."""
    pid, host = optional_column(row, "owner_pid"), optional_column(row, "owner_host")
    return f"{pid} on {host}" if pid else "unknown"


def searched_by_this_process(row: sqlite3.Row) -> bool:
    """Whether the run's recorded owner is this very process."""
    return (optional_column(row, "owner_pid") == os.getpid()
            and optional_column(row, "owner_host") == socket.gethostname())


def owner_alive(row: sqlite3.Row) -> bool:
    """Whether the process that marked a run "running" still exists.

    On this host the pid answers; for another host (a shared file) or a run stored before
    owners were recorded, only the heartbeat can: a write within ``STALE_AFTER_S``.
    """
    pid, host = optional_column(row, "owner_pid"), optional_column(row, "owner_host")
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
