"""The honest before/after account of one repair (see bench/REPAIR.md for what each number means)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Below this margin for the seed's label the original is nearly undecided itself: the repair
# benchmark's int8 and bf16 triggers have medians of 0.002-0.043, and a search that asks the
# original for 0.1 finds deviations its repairs fix far more often (bench/REPAIR.md).
UNSURE_MARGIN = 0.1


@dataclass(frozen=True)
class RepairReport:
    """Every number is measured on the served models (int8 as converted, not the fake-quant twin).

    "Repaired" means the compressed model now gives the original's label on the trigger. The
    held-out triggers never touched training, and the test numbers leave out the seed images of
    the training triggers, so nothing the repair was shown is counted in its favour. Fields are
    None when a stop ended the repair before they were measured.
    """

    run_id: str
    selection: str  # the selection's name, or "all" when every trigger of the run was used
    pair_before: str
    repaired_pair: str | None  # the new pair's id; None when the repair was stopped
    stopped: bool
    triggers: int  # triggers chosen for the repair (both parts)
    train_positions: list[int]  # seed positions of the triggers trained on
    heldout_positions: list[int]  # seed positions of the held-out triggers
    verdict: str | None = None  # "better", "worse" or "unchanged" (model kept as it was); None when stopped
    verdict_reasons: list[str] = field(default_factory=list)  # one plain sentence per threshold missed
    registered: bool = False  # whether the repaired pair was added to the user zoo
    validation_triggers: int | None = None  # training triggers kept for checkpoint choice
    mined_triggers: int | None = None  # deviations found on the training split (all parts)
    variants_made: int | None = None
    variants_kept: int | None = None  # the original still gave the seed's label on these
    trigger_set_images: int | None = None  # training triggers plus kept variants
    clean_images: int | None = None  # teacher images: clean training digits and corrupted copies
    validation_images: int | None = None  # teacher images kept for checkpoint choice
    learning_rate: float | None = None  # the one used: the user's, or the compression's default
    change_scales: list[float] = field(default_factory=list)  # scaled trigger changes learned
    head_range: list[float] | None = None  # logits the int8 head's narrowed output grid spans; None: as served
    head_step_before: float | None = None  # the head's output step, in logits, as served
    head_step_after: float | None = None  # and after narrowing
    head_grid_dropped: bool = False  # narrowing was asked for, but the grid alone added validation disagreements
    rank_by: str | None = None  # how the kept candidate won: "failures" or "triggers" (fewest left first)
    epochs_run: int = 0
    best_epoch: int | None = None  # the epoch kept (0 = no epoch beat the unrepaired model)
    best_share: float | None = None  # of that epoch's step from the starting weights (1 = all of it)
    final_loss: float | None = None
    heldout_repaired_before: float | None = None  # 0 unless a trigger no longer deviates
    heldout_repaired_rate: float | None = None
    heldout_unrepaired_margin: float | None = None  # original's median margin at the unrepaired held-out
    train_repaired_before: float | None = None
    train_repaired_rate: float | None = None
    test_images: int | None = None  # the test split minus the training triggers' seeds
    accuracy_original: float | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    disagreements_before: int | None = None
    disagreements_after: int | None = None
    corrupted_images: int | None = None  # every corruption of `characterize`, severity 3, same images
    corrupted_disagreements_before: int | None = None
    corrupted_disagreements_after: int | None = None
    profile_linf: float | None = None  # the deviation profile's L-inf budget
    profile_seeds: int | None = None
    profile_share_before: float | None = None  # seeds deviating strictly within the budget (run's margins)
    profile_share_after: float | None = None
    research_strategy: str | None = None
    research_seeds: int | None = None  # the run's seeds minus the training triggers' seeds
    research_max_queries: int | None = None
    research_success_before: float | None = None
    research_success_after: float | None = None
    research_median_queries_before: float | None = None
    research_median_queries_after: float | None = None
    research_queries_per_trigger_before: float | None = None
    research_queries_per_trigger_after: float | None = None
    seconds: float | None = None
    repair_id: int | None = None  # the store's id for this repair

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kept_words(report: RepairReport) -> str:
    """Which weights a repair kept, in words: an epoch, and how far toward it when not all the
    way; and the int8 head's output grid when it was narrowed, or why not when it was asked to be."""
    share = report.best_share
    part = "" if share is None or share == 1 or not report.best_epoch else (
        f", {share:.0%} of the way from the starting weights")
    grid = "" if report.head_range is None else (
        f"; the int8 head's output step {report.head_step_before:.3g} -> {report.head_step_after:.3g} "
        f"(logits {report.head_range[0]:.3g} to {report.head_range[1]:.3g}, where its top-1 is decided)")
    if report.head_grid_dropped:
        grid = "; the int8 head's output grid as served (narrowed, it alone added validation disagreements)"
    ranked = ", the fewest validation triggers left" if report.rank_by == "triggers" and report.best_epoch else ""
    return f"epoch {report.best_epoch} of {report.epochs_run} kept{part}{ranked}{grid}"


def training_words(report: RepairReport) -> str:
    """The learning rate and scaled changes a repair used, in brackets: the compression may
    have chosen them rather than the user."""
    words = [] if report.learning_rate is None else [f"learning rate {report.learning_rate:g}"]
    if report.change_scales:
        words.append("scaled trigger changes " + ", ".join(f"{a:g}" for a in report.change_scales))
    return f" ({'; '.join(words)})" if words else ""


def unrepaired_words(report: RepairReport) -> str:
    """Where the held-out triggers a repair left unrepaired lie, in words: at a median margin
    near 0 the original itself is undecided there, which a user should know before reading the
    held-out share as the repair's failure alone. Empty when every held-out trigger is repaired."""
    margin, rate = report.heldout_unrepaired_margin, report.heldout_repaired_rate
    if margin is None or rate is None:
        return ""
    left = round(len(report.heldout_positions) * (1 - rate))
    words = (f"At the {left} held-out trigger{'s' if left != 1 else ''} left unrepaired, the "
             f"original's own margin for the seed's label is {margin:.3f} (median; 0 undecided, "
             "1 certain)")
    if margin < UNSURE_MARGIN:
        words += (": the original is nearly undecided there itself. A search that asks it for a "
                  f"margin of at least {UNSURE_MARGIN:g} finds deviations where it is sure")
    return words + "."
