"""The one-click demo's settings, and how it picks the trigger it shows.

Kept apart from the Start page so that tests and other pages can read them without running it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compd_core.search.results import SeedResult

# The distilled student: measured on 16 random test digits, compd's guided steps find
# deviations there that meet the demo's criterion for 8 seeds within 5-8 queries each (L2
# 0.76-1.28; 11 of 16 within 2,000 queries), where the int8 pair's deviations within 64/255 all
# leave the original unsure (margins below 0.1).
DEMO_PAIR = "lenet5-distilled"
DEMO_SEEDS = 16  # random test digits (not the least sure ones: those are ambiguous to a person)
DEMO_BUDGET = 2_000  # queries per seed
DEMO_FOUND = 3  # stop after this many deviations and show the strongest, closest one
DEMO_MAX_LEVELS = 32  # no pixel changes by more than 32 grey levels of 255
DEMO_MARGIN_ORIGINAL = 0.5  # the original clearly sure of the seed's label
DEMO_MARGIN_COMPRESSED = 0.2  # the compressed model clearly prefers another class
DEMO_NOTE = f"one-click demo: stops after {DEMO_FOUND} deviations"


def strongest_closest(found: list[SeedResult]) -> SeedResult:
    """The trigger a sceptic accepts soonest: largest smaller margin, then smallest L2."""
    return min(found, key=lambda r: (-round(min(r.trigger.margins), 2), r.trigger.l2))
