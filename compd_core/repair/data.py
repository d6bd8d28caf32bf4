"""The fine-tuning data: the chosen triggers, label-preserving variants around them, and the
clean training split, all labelled by the original model.

Variants are made with the search's own operators, so the repair sees the kind of change the
search exploits, not only the few inputs it happened to stop at. A variant is kept only when
the original still gives the seed's label: otherwise the mutation changed what the digit is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from compd_core.characterize.analysis import corruption_seed
from compd_core.characterize.corruptions import resolve_corruptions
from compd_core.models.base import Classifier
from compd_core.mutations.base import MutationOperator

PREDICT_BATCH = 1024  # bounds memory when labelling thousands of variants at once


@dataclass(frozen=True)
class LabelledImages:
    """Images with the original's probabilities (soft targets) and top-1 labels (hard targets)."""

    images: torch.Tensor  # (N, C, H, W) in [0, 1]
    probs: torch.Tensor  # (N, K) the original's probabilities
    labels: torch.Tensor  # (N,) the original's top-1

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class TriggerSet:
    """The trigger part of the training data and how it was made."""

    data: LabelledImages
    triggers: int
    variants_made: int
    variants_kept: int


def probabilities(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    """A classifier's probabilities in chunks of ``PREDICT_BATCH``."""
    if len(images) == 0:
        return torch.empty((0, model.info.num_classes))
    return torch.cat([
        model.predict_proba(images[start : start + PREDICT_BATCH]).to(torch.float32)
        for start in range(0, len(images), PREDICT_BATCH)
    ])


def labelled(model: Classifier, images: torch.Tensor) -> LabelledImages:
    """Label images with ``model``'s own predictions."""
    probs = probabilities(model, images)
    return LabelledImages(images, probs, probs.argmax(1))


def make_variants(
    images: torch.Tensor,
    count: int,
    max_steps: int,
    operators: Sequence[MutationOperator],
    generator: torch.Generator,
) -> torch.Tensor:
    """``count`` mutants of each image (grouped by image), each stacking 1..``max_steps``
    randomly chosen operators, like a short search chain."""
    if count == 0 or len(images) == 0:
        return images[:0].clone()
    batch = images.repeat_interleave(count, 0)
    steps = torch.randint(1, max_steps + 1, (len(batch),), generator=generator)
    for step in range(max_steps):
        active = torch.nonzero(steps > step).flatten()
        choices = torch.randint(0, len(operators), (len(active),), generator=generator)
        for index in torch.unique(choices).tolist():
            rows = active[choices == index]
            batch[rows] = operators[index](batch[rows], generator).images
    return batch


def along_change(seeds: torch.Tensor, triggers: torch.Tensor, scales: Sequence[float]) -> torch.Tensor:
    """Each trigger's own change from its seed, scaled (grouped by scale, kept inside [0, 1]):
    the direction the search found, nearer the seed and beyond the trigger."""
    if not scales or len(triggers) == 0:
        return triggers[:0].clone()
    change = triggers - seeds
    return torch.cat([(seeds + scale * change).clamp(0.0, 1.0) for scale in scales])


def trigger_set(
    original: Classifier,
    triggers: torch.Tensor,
    seeds: torch.Tensor,
    reference_labels: torch.Tensor,
    variants_per_trigger: int,
    variant_steps: int,
    operators: Sequence[MutationOperator],
    generator: torch.Generator,
    change_scales: Sequence[float] = (),
) -> TriggerSet:
    """The triggers plus their kept variants (operator mutants, then scaled changes), labelled
    by the original; a variant is kept where the original still gives the seed's label."""
    variants = torch.cat([make_variants(triggers, variants_per_trigger, variant_steps, operators, generator),
                          along_change(seeds, triggers, change_scales)])
    variant_probs = probabilities(original, variants)
    references = torch.cat([reference_labels.repeat_interleave(variants_per_trigger),
                            reference_labels.repeat(len(change_scales))])
    keep = variant_probs.argmax(1) == references
    trigger_probs = probabilities(original, triggers)
    probs = torch.cat([trigger_probs, variant_probs[keep]])
    data = LabelledImages(torch.cat([triggers, variants[keep]]), probs, probs.argmax(1))
    return TriggerSet(data, len(triggers), len(variants), int(keep.sum()))


def corrupted_copies(images: torch.Tensor, severities: Sequence[int], seed: int) -> torch.Tensor:
    """One corrupted copy of each image: a seeded random corruption of ``characterize`` at a
    seeded random severity, so the teacher is also followed under the shifts users meet."""
    corruptions = resolve_corruptions(None)
    generator = torch.Generator().manual_seed(seed)
    which = torch.randint(0, len(corruptions), (len(images),), generator=generator)
    levels = torch.tensor(list(severities))[
        torch.randint(0, len(severities), (len(images),), generator=generator)]
    out = images.clone()
    for index, corruption in enumerate(corruptions):
        for severity in torch.unique(levels[which == index]).tolist():
            rows = torch.nonzero((which == index) & (levels == severity)).flatten()
            draws = torch.Generator().manual_seed(corruption_seed(seed, corruption.name))
            out[rows] = corruption.apply(images[rows], int(severity), draws)
    return out


def every_corruption(images: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    """Every corruption of ``characterize`` applied to every image at one severity, stacked."""
    return torch.cat([
        corruption.apply(images, severity, torch.Generator().manual_seed(
            corruption_seed(seed, corruption.name)))
        for corruption in resolve_corruptions(None)
    ])
