"""Whether a repair made the compressed model better by the user's own thresholds, in words.

A repair is a trade: it moves weights to fix some inputs and may break others. The verdict
says first, in plain sentences, every way in which the result is worse than the thresholds
allow, so that nothing is registered as "repaired" on the strength of the shown triggers alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compd_core.repair.settings import RepairSettings

Outcome = Literal["better", "worse", "unchanged"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...]  # one plain sentence per threshold missed; empty when better

    @property
    def better(self) -> bool:
        return self.outcome == "better"


def judge(
    settings: RepairSettings,
    *,
    heldout_repaired: float,
    accuracy_before: float,
    accuracy_after: float,
    disagreements_before: int,
    disagreements_after: int,
    corrupted_before: int,
    corrupted_after: int,
    unchanged: bool = False,
) -> Verdict:
    """Compare the measured numbers with the thresholds of ``settings``. ``unchanged`` when no
    epoch beat the model before training on the validation data: the model was kept as it
    was, which is neither a repair nor a step back, and the verdict says exactly that."""
    if unchanged:
        return Verdict("unchanged", (
            "No training epoch did better than the unrepaired model on the validation data "
            "without adding disagreements there, so the model was kept exactly as it was: "
            "nothing is repaired and nothing is worse.",))
    reasons = []
    if heldout_repaired < settings.min_heldout_repaired:
        reasons.append(
            f"only {heldout_repaired:.0%} of the held-out triggers are repaired (at least "
            f"{settings.min_heldout_repaired:.0%} asked): it did not generalise to triggers it "
            "never saw."
        )
    drop = accuracy_before - accuracy_after
    if drop > settings.max_accuracy_drop + 1e-12:
        reasons.append(
            f"test accuracy fell by {100 * drop:.2f} points ({accuracy_before:.2%} -> "
            f"{accuracy_after:.2%}; at most {100 * settings.max_accuracy_drop:.2f} allowed)."
        )
    rise = settings.max_disagreement_rise
    allowed = "no rise allowed" if rise == 0 else f"at most {rise} more allowed"
    for what, before, after in (("test", disagreements_before, disagreements_after),
                                ("corrupted-test", corrupted_before, corrupted_after)):
        if after - before > rise:
            reasons.append(f"the models now disagree on more {what} images ({before} -> {after}; "
                           f"{allowed}).")
    # each reason is a sentence of its own: the CLI and the page join them into one paragraph
    sentences = tuple(reason[0].upper() + reason[1:] for reason in reasons)
    return Verdict("worse" if sentences else "better", sentences)
