"""Helpers shared by the dashboard's tests (imported by name: pytest puts this folder on the path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAIR = "lenet5-int8-static"


@dataclass(frozen=True)
class StoredRun:
    db: Path
    run_id: str


def finish_jobs(timeout: float = 180.0) -> None:
    """Wait for every search the app started (searches run in worker threads)."""
    from dashboard import jobs

    jobs.join_all(timeout)


def open_page(at: AppTest, name: str) -> AppTest:
    """Run the app once (st.navigation registers its pages), then open one page."""
    at.run()
    at.switch_page(f"views/{name}.py")
    return at.run()


def column_formats(table) -> dict[str, str]:
    """The number format each column of an ``st.dataframe`` is shown with (from its config)."""
    import json

    config = json.loads(table.proto.columns)
    return {name: c.get("type_config", {}).get("format", "") for name, c in config.items()}


def readable_header(name: str) -> bool:
    """A column header written for people: capitalised words, no snake_case."""
    return "_" not in name and name[:1].isupper()
