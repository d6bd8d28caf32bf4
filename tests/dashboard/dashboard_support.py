"""Helpers shared by the dashboard's tests (imported by name: pytest puts this folder on the path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAIR = "lenet5-int8-static"


@dataclass(frozen=True)
class StoredRun:
    db: Path
    run_id: str


_KILLED_AFTER_ONE_SEED = """
import os, signal, sys
from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.pair_spec import PairSpec
from compd_core.search.events import SeedFinished
from compd_core.search.settings import SearchSettings
from compd_core.store import Store

finished = []

def die_after_first_seed(event):
    if isinstance(event, SeedFinished):
        finished.append(event)
        if len(finished) == 2:  # the first seed is stored by now, the second not yet
            os.kill(os.getpid(), signal.SIGKILL)  # as a server killed mid-search

{spec}
run_campaign(spec, Store(sys.argv[1]), emit=die_after_first_seed)
"""


def search_killed_after_one_seed(db: Path, spec: str) -> int:
    """Run the campaign that the code ``spec`` assigns to ``spec`` into ``db`` in another
    process, killed (SIGKILL) once its first seed is stored; returns the exit code."""
    import subprocess
    import sys

    script = _KILLED_AFTER_ONE_SEED.replace("{spec}", spec)
    return subprocess.run([sys.executable, "-c", script, str(db)], timeout=300).returncode


def finish_jobs(timeout: float = 180.0) -> None:
    """Wait for every search the app started (searches run in worker threads)."""
    from dashboard import jobs

    jobs.join_all(timeout)


def resume_on_runs_page(db: Path, run_id: str):
    """Press Resume on the Runs page in a fresh session, wait for the search, and return the
    run and its results as stored."""
    from compd_core.store import Store

    at = AppTest.from_file(str(APP), default_timeout=120)
    open_page(at, "runs")
    at.button(key="resume-interrupted").click().run()
    assert not at.exception and not at.error
    finish_jobs()
    with Store(db) as store:
        return store.get_run(run_id), store.load_results(run_id)


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


def tensors_in(root: object) -> list[str]:
    """Paths to every torch tensor reachable from ``root`` through attributes and containers."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(value: object, path: str) -> None:
        if id(value) in seen or isinstance(value, (str, bytes, int, float, bool, type(None))):
            return
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            found.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}[{key!r}]")
        elif isinstance(value, (list, tuple, set, frozenset)):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, torch.nn.Module):  # its weights, packed int8 ones included
            found.extend(f"{path}.{name}" for name in value.state_dict())
        elif hasattr(value, "__dict__") and not isinstance(value, (type, ModuleType)):
            for name, item in vars(value).items():
                walk(item, f"{path}.{name}")

    walk(root, "job")
    return found


def progress_line(at: AppTest) -> str:
    """The text of the one progress bar a live job panel draws (its header's)."""
    (bar,) = at.get("progress")
    return bar.proto.text
