"""Mutating a batch in which each row has its own operator (DiffChaser's population)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compd_core.mutations.base import MutationOperator, MutationResult


@dataclass
class GroupedMutation:
    """A batch in which each row was mutated by its own operator.

    Parameters are looked up per row on demand: a search reads them only for accepted rows.
    """

    images: torch.Tensor
    _parts: dict[int, tuple[torch.Tensor, MutationResult]]
    _choices: torch.Tensor

    def params_of(self, row: int) -> dict:
        rows, result = self._parts[int(self._choices[row])]
        return result.params[int(torch.searchsorted(rows, row))]


def apply_grouped(
    operators: list[MutationOperator], choices: torch.Tensor, images: torch.Tensor,
    generator: torch.Generator,
) -> GroupedMutation:
    """Mutate row i of ``images`` with operator ``choices[i]``: one call per operator used."""
    out = torch.empty_like(images)
    parts: dict[int, tuple[torch.Tensor, MutationResult]] = {}
    for index in torch.unique(choices).tolist():
        rows = torch.nonzero(choices == index).flatten()
        result = operators[index](images[rows], generator)
        out[rows] = result.images
        parts[index] = (rows, result)
    return GroupedMutation(out, parts, choices)
