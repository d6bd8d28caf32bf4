"""Search settings for tests, with the criterion's fields given as plain keywords."""

from __future__ import annotations

from dataclasses import fields

from compd_core.search.criterion import Criterion
from compd_core.search.settings import SearchSettings

_CRITERION_FIELDS = {f.name for f in fields(Criterion)}


def search_settings(*, max_linf: float | None = None, criterion: str = "valid", **options) -> SearchSettings:
    """``SearchSettings`` where ``max_linf``, ``max_l2`` and the margins build its ``Criterion``."""
    rules = {k: options.pop(k) for k in list(options) if k in _CRITERION_FIELDS}
    return SearchSettings(criterion=Criterion(kind=criterion, max_linf=max_linf, **rules),  # type: ignore[arg-type]
                          **options)
