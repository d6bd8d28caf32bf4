"""A repair's figures and its before/after table, built from the engine's events and report."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from compd_core.repair import EpochFinished, RepairReport
from dashboard.components.charts import FOUND_COLOUR, SEARCHING_COLOUR

BEFORE_COLOUR = "#b7bfca"
AFTER_COLOUR = SEARCHING_COLOUR


def training_figure(epochs: Sequence[EpochFinished], height: int = 320) -> go.Figure:
    """Loss per epoch (left) and the share of triggers repaired, trained-on and held-out (right)."""
    x = [e.epoch for e in epochs]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "triggers repaired"))
    fig.add_scatter(x=x, y=[e.loss for e in epochs], mode="lines+markers", name="loss",
                    line=dict(color="#555"), row=1, col=1)
    fig.add_scatter(x=x, y=[e.train_repaired_rate for e in epochs], mode="lines+markers",
                    name="trained-on triggers", line=dict(color=AFTER_COLOUR, dash="dot"),
                    row=1, col=2)
    fig.add_scatter(x=x, y=[e.heldout_repaired_rate for e in epochs], mode="lines+markers",
                    name="held-out triggers", line=dict(color=FOUND_COLOUR), row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(x) <= 20 else None)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.4, x=0))
    return fig


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _count(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _profile_label(linf: float | None) -> str:
    if linf is None:  # the repair ran without its re-search
        return "Seeds with a strict deviation (not re-searched)"
    return f"Seeds with a strict deviation within L-inf {255 * linf:.0f}/255"


def before_after_table(report: RepairReport) -> pd.DataFrame:
    """The numbers a repair is judged by, before and after, as text ready to show."""
    rows = [
        ("Compressed model's test accuracy", _rate(report.accuracy_before),
         _rate(report.accuracy_after)),
        ("Test images the models disagree on", _count(report.disagreements_before),
         _count(report.disagreements_after)),
        (f"Corrupted test images they disagree on (of {_count(report.corrupted_images)})",
         _count(report.corrupted_disagreements_before), _count(report.corrupted_disagreements_after)),
        ("Held-out triggers repaired", _rate(report.heldout_repaired_before),
         _rate(report.heldout_repaired_rate)),
        ("Trained-on triggers repaired", _rate(report.train_repaired_before),
         _rate(report.train_repaired_rate)),
        ("Re-search: seeds that deviate", _rate(report.research_success_before),
         _rate(report.research_success_after)),
        ("Re-search: median queries to deviate", _count(report.research_median_queries_before),
         _count(report.research_median_queries_after)),
        (_profile_label(report.profile_linf),
         _rate(report.profile_share_before), _rate(report.profile_share_after)),
    ]
    return pd.DataFrame(rows, columns=["measure", "before", "after"])


def before_after_figure(report: RepairReport, height: int = 320) -> go.Figure:
    """The rates of the table as grouped bars (counts have other scales and stay in the table)."""
    measures = [("test accuracy", report.accuracy_before, report.accuracy_after),
                ("held-out repaired", report.heldout_repaired_before, report.heldout_repaired_rate),
                ("trained-on repaired", report.train_repaired_before, report.train_repaired_rate),
                ("re-search success", report.research_success_before,
                 report.research_success_after),
                ("deviate within L-inf budget", report.profile_share_before,
                 report.profile_share_after)]
    shown = [m for m in measures if m[1] is not None and m[2] is not None]
    fig = go.Figure()
    for name, index, colour in (("before", 1, BEFORE_COLOUR), ("after", 2, AFTER_COLOUR)):
        values = [float(m[index]) for m in shown]  # type: ignore[arg-type]
        fig.add_bar(x=[m[0] for m in shown], y=values, name=name, marker_color=colour,
                    text=[f"{v:.0%}" for v in values], textposition="outside")
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    fig.update_layout(height=height, barmode="group", margin=dict(l=10, r=10, t=36, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
