"""A characterization as flat tables: what the CSV files hold and what the dashboard shows."""

from __future__ import annotations

import math

import pandas as pd

from compd_core.characterize.analysis import (
    CONDITIONS,
    MODELS,
    CharacterizationReport,
    PairComparison,
)
from compd_core.characterize.corruptions import parameter_table
from compd_core.characterize.indicators import INDICATORS


def cells_table(report: CharacterizationReport) -> pd.DataFrame:
    """One row per cell, the clean split first (severity 0)."""
    return pd.DataFrame([c.to_dict() for c in (report.clean, *report.cells)])


def auroc_table(report: CharacterizationReport) -> pd.DataFrame:
    """AUROC per condition, indicator and model, with its rank within (condition, model)."""
    rows = [
        {"condition": cond, "indicator": name, "model": model,
         "auroc": report.auroc[cond][name][model]}
        for cond in CONDITIONS
        for name in INDICATORS
        for model in MODELS
    ]
    table = pd.DataFrame(rows)
    table["rank"] = (
        table.groupby(["condition", "model"])["auroc"]
        .rank(ascending=False, method="min")
        .astype("Int64")
    )
    return table


def per_class_table(report: CharacterizationReport) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "class": c.label,
                "n": c.n,
                "clean_disagreements": c.clean_disagreements,
                "clean_rate": c.clean_rate,
                "shifted_disagreements": c.shifted_disagreements,
                "shifted_rate": c.shifted_rate,
            }
            for c in report.per_class
        ]
    )


def severity_matrix(report: CharacterizationReport) -> pd.DataFrame:
    """Disagreement rate, corruptions as rows and severities as columns (NaN where not run)."""
    by = report.by_corruption()
    return pd.DataFrame(
        [[by.get(name, {}).get(str(s), math.nan) for s in report.severities]
         for name in report.corruptions],
        index=pd.Index(report.corruptions, name="corruption"),
        columns=pd.Index(list(report.severities), name="severity"),
    )


def comparison_table(comparison: PairComparison) -> pd.DataFrame:
    return pd.DataFrame(comparison.rows())


def comparison_by_corruption(comparison: PairComparison) -> pd.DataFrame:
    """Corruptions as rows, pairs as columns: the side-by-side view."""
    long = pd.DataFrame(comparison.by_corruption())
    wide = long.pivot(index="corruption", columns="pair", values="rate")
    order = list(dict.fromkeys(long["corruption"]))
    return wide.loc[order, [r.pair for r in comparison.reports]]


def corruption_parameters() -> pd.DataFrame:
    """The documented parameter table of every corruption."""
    return pd.DataFrame(parameter_table())
