"""Plotly figures of a characterization; the dashboard shows them, ``export`` saves them."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import roc_curve

from compd_core.characterize.analysis import (
    CONDITIONS,
    MODELS,
    CharacterizationReport,
    PairComparison,
)
from compd_core.characterize.indicators import INDICATORS
from compd_core.characterize.tables import comparison_by_corruption, severity_matrix

_COLOURS = {"margin": "#1f77b4", "entropy": "#ff7f0e", "gini": "#2ca02c",
            "least_confidence": "#d62728"}
_DASH = {"compressed": "solid", "original": "dot"}


def disagreement_heatmap(report: CharacterizationReport) -> go.Figure:
    """Disagreement rate (%) per corruption and severity."""
    matrix = severity_matrix(report) * 100.0
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=[f"severity {s}" for s in matrix.columns],
            y=list(matrix.index),
            colorscale="Reds",
            zmin=0.0,
            colorbar={"title": "disagree %"},
            text=matrix.round(2).to_numpy(),
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}: %{z:.2f}%<extra></extra>",
        )
    )
    fig.update_layout(
        title=(
            f"{report.pair}: disagreement under shift "
            f"(clean {report.clean_disagreement_rate:.2%}, "
            f"shifted mean {report.shifted_disagreement_rate:.2%})"
        ),
        yaxis={"autorange": "reversed"},
        height=max(320, 28 * len(matrix) + 140),
    )
    return fig


def roc_figure(report: CharacterizationReport) -> go.Figure:
    """ROC curve of every indicator and model, clean and shifted side by side."""
    titles = [f"{c} data (best AUROC {_best(report, c)})" for c in CONDITIONS]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, shared_yaxes=True)
    in_legend: set[str] = set()
    for col, condition in enumerate(CONDITIONS, start=1):
        scores = report.scores[condition]
        if scores.disagree.any() and not scores.disagree.all():
            for name in INDICATORS:
                for model in MODELS:
                    fpr, tpr, _ = roc_curve(scores.disagree, scores.risk[name][model])
                    label = f"{name} ({model})"
                    value = report.auroc[condition][name][model]
                    fig.add_trace(
                        go.Scatter(
                            x=fpr, y=tpr, mode="lines", name=label, legendgroup=label,
                            showlegend=label not in in_legend,
                            hovertemplate=f"{label}, {condition}: AUROC {value:.3f}<extra></extra>",
                            line={"color": _COLOURS[name], "dash": _DASH[model]},
                        ),
                        row=1, col=col,
                    )
                    in_legend.add(label)
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False, hoverinfo="skip",
                       line={"color": "grey", "dash": "dash", "width": 1}),
            row=1, col=col,
        )
    fig.update_xaxes(title_text="false positive rate", range=[0, 1])
    fig.update_yaxes(title_text="true positive rate", range=[0, 1], col=1)
    fig.update_layout(
        title=f"{report.pair}: which indicator predicts disagreement",
        height=520, margin={"t": 110},
    )
    return fig


def _best(report: CharacterizationReport, condition: str) -> str:
    values = [(v, f"{name}, {model}") for name, by_model in report.auroc[condition].items()
              for model, v in by_model.items() if not math.isnan(v)]
    if not values:
        return "undefined"
    value, label = max(values)
    return f"{value:.3f}: {label}"


def per_class_figure(report: CharacterizationReport) -> go.Figure:
    """Disagreement rate (%) per true class, clean against shifted."""
    labels = [c.label for c in report.per_class]
    fig = go.Figure([
        go.Bar(name="clean", x=labels, y=[100 * c.clean_rate for c in report.per_class]),
        go.Bar(name="shifted", x=labels, y=[100 * c.shifted_rate for c in report.per_class]),
    ])
    fig.update_layout(barmode="group", title=f"{report.pair}: disagreement by true class",
                      xaxis_title="class", yaxis_title="disagree %")
    return fig


def comparison_figure(comparison: PairComparison) -> go.Figure:
    """Disagreement rate (%) per corruption (mean over severities), one bar per pair."""
    wide = comparison_by_corruption(comparison) * 100.0
    fig = go.Figure(
        [go.Bar(name=pair, x=list(wide.index), y=wide[pair].to_numpy()) for pair in wide.columns]
    )
    fig.update_layout(
        barmode="group",
        title="disagreement side by side" + ("" if comparison.shared_original
                                             else " (pairs do not share an original)"),
        xaxis_title="data", yaxis_title="disagree %",
    )
    return fig
