"""Files uploaded in the browser, kept on disk because the model and dataset loaders take paths.

A file is stored under a folder named by its content hash (the same bytes map to the same path,
so every session shares one set of loaded models) and under a short, safe version of its name
(a browser may send a name of any length or with any characters). Nothing is kept for ever:
when the server starts, files older than a day go, then the oldest until the folder is under
its size cap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import streamlit as st

from compd_core.errors import ConfigError
from dashboard.choices import ParkedUpload, SessionChoices, Upload

logger = logging.getLogger(__name__)

MAX_AGE_S = 24 * 3600.0  # an upload serves one working session; a day is generous
MAX_TOTAL_BYTES = 1024**3  # the whole folder; the oldest files go first beyond it
MAX_STEM_CHARS = 80  # file systems refuse names over 255 bytes; keep well below

_cleaned = False
_cleaned_lock = threading.Lock()


def uploads_dir() -> Path:
    """``$COMPD_UPLOADS``, else ~/.cache/compd/uploads (created on first use)."""
    root = Path(os.environ.get("COMPD_UPLOADS", Path.home() / ".cache" / "compd" / "uploads"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def limit_mb() -> int:
    """The largest upload this server accepts, in MB (``compd dashboard`` sets it)."""
    return int(st.get_option("server.maxUploadSize"))


def safe_name(name: str) -> str:
    """A name the file system accepts: letters, digits, ``.-_`` only, the stem cut short,
    the extension (which picks the loader) kept."""
    base = Path(name.replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    clean_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:MAX_STEM_CHARS] or "upload"
    clean_suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix)[:16].lower()
    return f"{clean_stem}.{clean_suffix}" if clean_suffix else clean_stem


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded file and return its path; refuse one over the server's limit."""
    limit = limit_mb()
    if len(data) > limit * 1024**2:
        raise ConfigError(
            f"{name[:80]} is {len(data) / 1024**2:,.0f} MB; uploads are limited to {limit} MB: "
            "type the file's path on this machine instead"
        )
    return _keep(name, data)


def _keep(name: str, data: bytes) -> Path:
    """Write ``data`` once under its content hash and a safe version of ``name``."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = uploads_dir() / digest / safe_name(name)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        partial.replace(target)  # a reader never sees half a file
    return target


def release_uploads(choices: SessionChoices) -> SessionChoices:
    """The same choices without uploaded pixels in memory: a finished job keeps its uploads as
    files (their raw uint8 buffers) that a reloaded page reads back with ``unpark_uploads``."""
    if not choices.uploads:
        return choices
    parked = tuple(ParkedUpload(u.name, str(_keep(f"{u.name}.u8", u.pixels)), u.shape)
                   for u in choices.uploads)
    return replace(choices, uploads=(), parked_uploads=choices.parked_uploads + parked)


def unpark_uploads(choices: SessionChoices) -> list[Upload]:
    """A job's uploads, read back from their files; one cleaned away since is left out."""
    items = list(choices.uploads)
    for parked in choices.parked_uploads:
        try:
            items.append(Upload(parked.name, Path(parked.path).read_bytes(), parked.shape))
        except OSError:
            logger.info("upload %s of a finished job is gone from %s", parked.name, parked.path)
    return items


def clean_uploads(
    root: Path, *, now: float | None = None, max_age_s: float = MAX_AGE_S,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Path]:
    """Delete files older than ``max_age_s``, then the oldest until the rest fit in
    ``max_total_bytes``; return what was deleted."""
    now = time.time() if now is None else now
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
    deleted = [p for p in files if now - p.stat().st_mtime > max_age_s]
    kept = [p for p in files if p not in deleted]
    total = sum(p.stat().st_size for p in kept)
    for path in kept:
        if total <= max_total_bytes:
            break
        total -= path.stat().st_size
        deleted.append(path)
    for path in deleted:
        path.unlink(missing_ok=True)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return deleted


def clean_once() -> None:
    """Clean the uploads folder once per server process (its first page view)."""
    global _cleaned
    with _cleaned_lock:
        if _cleaned:
            return
        _cleaned = True
    try:
        removed = clean_uploads(uploads_dir())
    except OSError as exc:  # housekeeping must never keep the dashboard from starting
        logger.warning("could not clean the uploads folder: %s", exc)
        return
    if removed:
        logger.info("removed %d old or surplus uploaded file(s)", len(removed))
