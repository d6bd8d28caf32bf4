"""Repair (CompD, Li et al., ACML 2024): fine-tune a compressed model on hand-picked triggers,
judged on triggers it never saw."""

from compd_core.repair.events import (
    EpochFinished,
    RepairEvent,
    RepairProgress,
    ResearchProgress,
    StageStarted,
)
from compd_core.repair.report import RepairReport
from compd_core.repair.run import (
    REGISTER_CHOICES,
    Repair,
    chosen_triggers,
    fine_tunable,
    fine_tunable_source,
    repair_run,
)
from compd_core.repair.settings import (RepairSettings, default_change_scales, default_epochs, default_head_grid,
                                       default_lr, for_compression)
from compd_core.repair.split import TriggerSplit, split_triggers
from compd_core.repair.verdict import Verdict

__all__ = [
    "REGISTER_CHOICES",
    "EpochFinished",
    "Repair",
    "RepairEvent",
    "RepairProgress",
    "RepairReport",
    "RepairSettings",
    "ResearchProgress",
    "StageStarted",
    "TriggerSplit",
    "Verdict",
    "chosen_triggers",
    "default_change_scales",
    "default_epochs",
    "default_head_grid",
    "default_lr",
    "fine_tunable",
    "fine_tunable_source",
    "for_compression",
    "repair_run",
    "split_triggers",
]
