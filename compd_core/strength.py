"""How convincing triggers are, in numbers every view shares: margins and the size of the change.

A sceptic accepts a trigger when the original is clearly sure of the seed's label, the
compressed model clearly says something else, and the change is small. The campaign summary,
the exports, the CLI, the dashboard and the HTML report all describe triggers through these
helpers, so they agree on the words and the numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from compd_core.search.results import Trigger

STRONG_MARGIN = 0.2  # both margins at least this: the original clearly sure, the compressed clearly different
# Below this median margin the original itself hesitates on a run's triggers. On models with
# rounded weights (int8 static, ONNX int8, bf16) every strict trigger the search found had an
# original's margin of at most 0.11, and no seed had one at 0.2 (bench/RESULTS.md).
HESITANT_MARGIN = 0.1
TIE_TEXT = "tie: not a deviation under the strict criterion"


@dataclass(frozen=True)
class ChangeSize:
    """How far a trigger is from its seed, in the units a person can check on the image."""

    l2: float  # on [0, 1] pixels
    max_levels: int  # largest change of any pixel, in grey levels of 255
    pixels_changed: int  # pixels with at least one channel changed by at least one grey level
    pixels: int  # pixels in the image (H x W, whatever the channels)

    def describe(self) -> str:
        """E.g. 'L2 1.20; largest pixel change 32/255; 14 of 784 pixels changed'."""
        if self.pixels_changed == 0:
            return "identical to its seed (no pixel changed)"
        return (f"L2 {self.l2:.2f}; largest pixel change {self.max_levels}/255; "
                f"{self.pixels_changed} of {self.pixels} pixels changed")


def change_size(seed: torch.Tensor, image: torch.Tensor) -> ChangeSize:
    """The change from ``seed`` to ``image`` (both (C, H, W) in [0, 1])."""
    levels = torch.round((image.float() - seed.float()).abs() * 255.0).amax(0)
    return ChangeSize(float((image.float() - seed.float()).norm()), int(levels.max()),
                      int((levels >= 1).sum()), levels.numel())


def margin_text(value: float) -> str:
    """A margin with two decimals; a positive one too small for them reads '<0.01', never '0.00'
    (which would look like a tie)."""
    return "<0.01" if 0 < value < 0.005 else f"{value:.2f}"


def is_strong(trigger: Trigger, minimum: float = STRONG_MARGIN) -> bool:
    m_o, m_c = trigger.margins
    return m_o >= minimum and m_c >= minimum


@dataclass(frozen=True)
class StrengthSummary:
    """Margins of a run's triggers, summarised; ``not_strict`` counts stored ties of older runs."""

    triggers: int
    median_margin_original: float | None
    median_margin_compressed: float | None
    strong: int  # both margins >= STRONG_MARGIN
    strong_share: float | None
    not_strict: int  # a tie decides a label: no deviation under the strict criterion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """Median margins, the share of strong triggers, and the ties an older run stored."""
        if not self.triggers:
            return "no triggers, so no margins"
        line = (f"median margins: original {margin_text(self.median_margin_original)}, compressed "
                f"{margin_text(self.median_margin_compressed)}; both >= {STRONG_MARGIN}: {self.strong} of "
                f"{self.triggers} triggers ({self.strong_share:.0%})")
        if self.not_strict:
            line += f"; {self.not_strict} stored: {TIE_TEXT}"
        return line

    def caveat(self) -> str | None:
        """What a sceptic would say first, said by the tool: on most triggers the original
        itself hesitates, so they lie on its own decision boundary. None when it is sure."""
        if not self.triggers or self.median_margin_original is None:
            return None
        if self.median_margin_original >= HESITANT_MARGIN:
            return None
        return (f"The original itself hesitates on most of these triggers (median margin "
                f"{margin_text(self.median_margin_original)}, under {HESITANT_MARGIN}): they lie on "
                "its own decision boundary, where the digit is ambiguous to it. Models with rounded "
                "weights (int8, bf16) deviate only there; a search with a minimum original's margin "
                "(--min-margin-original, or the Search page's field) shows whether this pair has "
                "deviations where the original is sure.")


def summarize_strength(triggers: Iterable[Trigger]) -> StrengthSummary:
    found = list(triggers)
    margins = [t.margins for t in found]
    strong = sum(1 for t in found if is_strong(t))
    return StrengthSummary(
        triggers=len(found),
        median_margin_original=float(statistics.median(m[0] for m in margins)) if found else None,
        median_margin_compressed=float(statistics.median(m[1] for m in margins)) if found else None,
        strong=strong,
        strong_share=strong / len(found) if found else None,
        not_strict=sum(1 for t in found if not t.is_strict),
    )
