"""A repair as a job any executor can run: the store file, the run and the settings.

The dashboard hands this to the server's executor, so a repair trains beside searches in a Ray
worker when the server is set to Ray, and in the caller's thread otherwise. The task only
reads the store (``register="never"``); it returns the finished ``Repair``, which the caller
attaches to its own store to register the repaired pair when the user confirms.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

from compd_core.events import EventSink, JobKind
from compd_core.repair.run import Repair
from compd_core.repair.settings import RepairSettings
from compd_core.store import Store


@dataclass(frozen=True)
class RepairTask:
    """Repair run ``run_id`` of the store at ``store_path`` on ``selection`` (None: its
    hand-picked triggers, or all of them), training and judging but registering nothing."""

    kind: ClassVar[JobKind] = "repair"
    store_path: str
    run_id: str
    settings: RepairSettings
    selection: str | None = None

    def local_files(self) -> list[str]:
        with Store(self.store_path, read_only=True) as store:
            spec = store.get_run(self.run_id).pair_source()
        return [self.store_path, *spec.local_files()]

    def __call__(self, emit: EventSink, stop: threading.Event) -> Repair:
        """The finished (or stopped) repair, released: its report and, unless stopped, the
        repaired model ``register`` needs."""
        with Store(self.store_path, read_only=True) as store:
            repair = Repair(store, self.run_id, self.settings, self.selection, emit=emit, stop=stop)
            repair.execute(register="never")
        repair.release()
        return repair
