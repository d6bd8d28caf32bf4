"""Pick seed images for a search: at random or lowest margin first, from agreeing inputs."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal

import torch

from compd_core.data.dataset import ImageDataset
from compd_core.errors import ConfigError
from compd_core.models.pair import ModelPair
from compd_core.search.criterion import log_margin
from compd_core.search.results import Seed

Order = Literal["random", "margin", "balanced", "explicit"]
EXPLICIT_ORDER = "explicit"  # the seeds are dataset indices the user listed, in their order


def check_seed_count(count: object) -> None:
    """Refuse a number of seeds that is not a whole number >= 1, before any work starts."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ConfigError(f"the number of seeds must be a whole number >= 1, got {count!r}")


def select_seeds(
    pair: ModelPair,
    dataset: ImageDataset,
    count: int,
    seed: int = 0,
    order: Order = "random",
    only_correct: bool = True,
) -> list[Seed]:
    """``count`` seeds on which both models agree (and, by default, are right).

    A seed where the models already disagree is not a search problem. ``order='balanced'`` takes
    the same number of seeds of every class (random within a class, classes interleaved), so a
    benchmark's numbers are not dominated by the easiest digits. ``order='margin'`` puts
    the inputs with the smallest margin of the compressed model first: Hu et al. (CAIN 2023)
    found the margin the best predictor of disagreement, so these deviate soonest.
    """
    check_seed_count(count)
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
    elif order == "balanced":
        chosen = _balanced(candidates, labels[candidates], count, pair.num_classes, seed)
    else:
        raise ConfigError(f"seed order must be 'random', 'margin' or 'balanced', got {order!r}")
    return seeds_from(dataset, chosen, labels[chosen])


def check_seed_indices(indices: Sequence[int], dataset: ImageDataset) -> torch.Tensor:
    """Dataset positions of the listed dataset indices; duplicates and unknown indices refused."""
    if not indices:
        raise ConfigError("give at least one seed index, e.g. --seed-indices 3,17,42")
    seen: set[int] = set()
    repeated = sorted({i for i in indices if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if repeated:
        raise ConfigError(f"seed indices {repeated[:5]} are listed twice; give each image once")
    where = {int(index): position for position, index in enumerate(dataset.indices.tolist())}
    missing = [i for i in indices if i not in where]
    if missing:
        raise ConfigError(
            f"seed indices {missing[:5]} are not in {dataset.name}, which holds indices "
            f"{min(where)}..{max(where)}; pick indices in that range"
        )
    return torch.tensor([where[int(i)] for i in indices], dtype=torch.long)


def explicit_seeds(pair: ModelPair, dataset: ImageDataset, indices: Sequence[int]) -> list[Seed]:
    """The listed dataset images as seeds, in the given order, each labelled by the original.

    An image the two models already disagree on is refused: it is a deviation already, not a
    starting point to search from.
    """
    positions = check_seed_indices(indices, dataset)
    prediction = pair.predict(dataset.images[positions])
    disagree = torch.nonzero(prediction.disagree).flatten().tolist()
    if disagree:
        shown = [int(indices[i]) for i in disagree[:5]]
        raise ConfigError(
            f"the models already disagree on seed indices {shown}; "
            "they are deviations already, not seeds: leave them out"
        )
    return seeds_from(dataset, positions, prediction.labels_original)


def _balanced(
    candidates: torch.Tensor, labels: torch.Tensor, count: int, num_classes: int, seed: int
) -> torch.Tensor:
    """``count`` candidates, as many of each class as possible, classes taken in turn."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(candidates), generator=generator)
    by_class = [shuffled[labels[shuffled] == c].tolist() for c in range(num_classes)]
    per_class = -(-count // num_classes)
    if any(len(rows) < per_class for rows in by_class):
        short = [c for c, rows in enumerate(by_class) if len(rows) < per_class]
        raise ConfigError(
            f"class-balanced seeds need {per_class} eligible inputs per class, but classes "
            f"{short} have fewer; ask for fewer seeds or use seed order 'random'"
        )
    interleaved = [by_class[c][i] for i in range(per_class) for c in range(num_classes)]
    return candidates[torch.tensor(interleaved[:count], dtype=torch.long)]


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
