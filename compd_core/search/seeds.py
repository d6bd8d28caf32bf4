"""Pick seed images for a search: at random or lowest margin first, from agreeing inputs."""

from __future__ import annotations

from typing import Literal

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.errors import ConfigError
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import log_margin
from compd_core.search.results import Seed

Order = Literal["random", "margin"]


def select_seeds(
    pair: ModelPair,
    dataset: ImageDataset,
    count: int,
    seed: int = 0,
    order: Order = "random",
    only_correct: bool = True,
) -> list[Seed]:
    """``count`` seeds on which both models agree (and, by default, are right).

    A seed where the models already disagree is not a search problem. ``order='margin'`` puts
    the inputs with the smallest margin of the compressed model first: Hu et al. (CAIN 2023)
    found the margin the best predictor of disagreement, so these deviate soonest.
    """
    if count < 1:
        raise ConfigError(f"the number of seeds must be >= 1, got {count}")
    prediction = pair.predict(dataset.images)
    labels = prediction.labels_original
    eligible = ~prediction.disagree
    if only_correct:
        eligible &= labels == dataset.labels
    candidates = torch.nonzero(eligible).flatten()
    if len(candidates) < count:
        raise ConfigError(
            f"only {len(candidates)} inputs of {dataset.name} are eligible seeds; ask for at most that many"
        )
    if order == "margin":
        margins = log_margin(prediction.compressed[candidates], labels[candidates])
        chosen = candidates[margins.argsort()[:count]]
    elif order == "random":
        generator = torch.Generator().manual_seed(seed)
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
    else:
        raise ConfigError(f"seed order must be 'random' or 'margin', got {order!r}")
    return seeds_from(dataset, chosen, labels[chosen])


def seeds_from(dataset: ImageDataset, positions: torch.Tensor, reference: torch.Tensor) -> list[Seed]:
    """Wrap dataset positions as seeds with the original's labels as reference."""
    return [
        Seed(
            position=i,
            index=int(dataset.indices[p]),
            image=dataset.images[p],
            label=int(reference[i]),
            true_label=int(dataset.labels[p]),
        )
        for i, p in enumerate(positions.tolist())
    ]
