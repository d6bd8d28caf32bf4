"""Repair (CompD, Li et al., ACML 2024): fine-tune a compressed model on hand-picked triggers,
judged on triggers it never saw."""

from compd_core.repair.events import (
    EpochFinished,
    RepairEvent,
    RepairFinished,
    RepairSink,
    ResearchProgress,
    StageStarted,
)
from compd_core.repair.report import RepairReport
from compd_core.repair.run import chosen_triggers, fine_tunable_source, repair_run
from compd_core.repair.settings import RepairSettings
from compd_core.repair.split import TriggerSplit, split_triggers

__all__ = [
    "EpochFinished",
    "RepairEvent",
    "RepairFinished",
    "RepairReport",
    "RepairSettings",
    "RepairSink",
    "ResearchProgress",
    "StageStarted",
    "TriggerSplit",
    "chosen_triggers",
    "fine_tunable_source",
    "repair_run",
    "split_triggers",
]
