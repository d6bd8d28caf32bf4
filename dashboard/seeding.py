"""Which images can seed a search: filtering the gallery and assembling hand-picked seeds.

Plain functions of tensors (no Streamlit), so the Seeds and Search pages share one definition
of "eligible" with the engine: the original must be right and the two models must agree,
otherwise there is nothing to search for (``compd_core.search.seeds.select_seeds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from compd_core.data.dataset import ImageDataset
from compd_core.models.evaluate import PairEvaluation
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import log_margin
from dashboard.choices import Upload

GalleryOrder = Literal["dataset order", "lowest margin first"]


@dataclass(frozen=True)
class GalleryFilter:
    """What the Seeds page's filters ask for; empty tuples mean "any"."""

    true_classes: tuple[int, ...] = ()
    original_labels: tuple[int, ...] = ()
    agreeing_only: bool = False
    order: GalleryOrder = "dataset order"


def margins(evaluation: PairEvaluation) -> torch.Tensor:
    """The compressed model's log-margin for the original's label, per image: small = close to
    flipping (the engine orders seeds by the same number)."""
    return log_margin(evaluation.probs_compressed, evaluation.pred_original)


def gallery_positions(evaluation: PairEvaluation, rule: GalleryFilter) -> np.ndarray:
    """Dataset positions that pass the filter, in the order asked for."""
    keep = torch.ones(len(evaluation.labels), dtype=torch.bool)
    if rule.true_classes:
        keep &= torch.isin(evaluation.labels, torch.tensor(rule.true_classes))
    if rule.original_labels:
        keep &= torch.isin(evaluation.pred_original, torch.tensor(rule.original_labels))
    if rule.agreeing_only:
        keep &= evaluation.pred_original == evaluation.pred_compressed
    positions = torch.nonzero(keep).flatten()
    if rule.order == "lowest margin first":
        positions = positions[margins(evaluation)[positions].argsort(stable=True)]
    return positions.numpy()


def eligible(evaluation: PairEvaluation) -> torch.Tensor:
    """Boolean per image: the original is right and both models agree (a searchable seed)."""
    agree = evaluation.pred_original == evaluation.pred_compressed
    return agree & (evaluation.pred_original == evaluation.labels)


def random_picks(candidates: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` of the candidate positions, drawn without replacement by an injected seed."""
    generator = np.random.default_rng(seed)
    chosen = generator.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return [int(candidates[i]) for i in sorted(chosen)]


def upload_tensor(items: Sequence[Upload]) -> torch.Tensor:
    """Uploaded images as a float (N, C, H, W) batch in [0, 1]."""
    arrays = [np.frombuffer(u.pixels, dtype=np.uint8).reshape(u.shape) for u in items]
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0)


@dataclass(frozen=True)
class SeedSet:
    """Hand-picked seeds as one dataset for ``run_campaign``, and what was left out and why."""

    dataset: ImageDataset | None
    dropped: list[str] = field(default_factory=list)


def compose_seeds(
    source: ImageDataset,
    evaluation: PairEvaluation,
    positions: Sequence[int],
    uploads: Sequence[Upload],
    pair: ModelPair,
) -> SeedSet:
    """Picked dataset images plus uploads, keeping only searchable ones.

    An uploaded image has no true label; the original's answer stands in for it, so it is
    searchable whenever the two models agree. Uploads get negative source indices (-1, -2, …)
    so they are never mistaken for dataset images in exports.
    """
    dropped: list[str] = []
    ok = eligible(evaluation)
    kept = [p for p in sorted(positions) if bool(ok[p])]
    dropped += [f"image #{int(source.indices[p])}: the models already disagree or the original "
                "is wrong" for p in sorted(positions) if not bool(ok[p])]
    images = [source.images[kept]] if kept else []
    labels = [source.labels[kept]] if kept else []
    indices = [source.indices[kept]] if kept else []
    if uploads:
        batch = upload_tensor(uploads)
        prediction = pair.predict(batch)
        agree = ~prediction.disagree
        dropped += [f"{u.name}: the two models already disagree on it"
                    for u, a in zip(uploads, agree.tolist()) if not a]
        images.append(batch[agree])
        labels.append(prediction.labels_original[agree])
        indices.append(-1 - torch.nonzero(agree).flatten())
    if not images or sum(len(i) for i in images) == 0:
        return SeedSet(None, dropped)
    dataset = ImageDataset(
        images=torch.cat(images), labels=torch.cat(labels), class_names=source.class_names,
        name=f"{source.name} (hand-picked)", indices=torch.cat(indices),
    )
    return SeedSet(dataset, dropped)
