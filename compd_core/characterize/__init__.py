"""Characterization (Hu et al., CAIN 2023): where and why a compressed model disagrees,
clean and under natural distribution shift, and which indicator predicts it.

Tables, figures and file export live in ``tables``, ``figures`` and ``export``; they are not
imported here so that the analysis itself does not pull in plotly.
"""

from compd_core.characterize.analysis import (
    CONDITIONS,
    MODELS,
    CellResult,
    CharacterizationReport,
    ClassRates,
    PairComparison,
    ScoreSet,
    characterize,
    compare_pairs,
    compare_reports,
    corruption_seed,
    lowest_margin_indices,
)
from compd_core.characterize.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    Corruption,
    check_severities,
    corruption_names,
    parameter_table,
    resolve_corruptions,
)
from compd_core.characterize.indicators import (
    INDICATORS,
    auroc,
    entropy,
    gini,
    least_confidence,
    margin,
    risk_score,
)

__all__ = [
    "CONDITIONS",
    "CORRUPTIONS",
    "INDICATORS",
    "MODELS",
    "SEVERITIES",
    "CellResult",
    "CharacterizationReport",
    "ClassRates",
    "Corruption",
    "PairComparison",
    "ScoreSet",
    "auroc",
    "characterize",
    "check_severities",
    "compare_pairs",
    "compare_reports",
    "corruption_names",
    "corruption_seed",
    "entropy",
    "gini",
    "least_confidence",
    "lowest_margin_indices",
    "margin",
    "parameter_table",
    "resolve_corruptions",
    "risk_score",
]
