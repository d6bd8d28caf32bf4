"""Which indicator predicts a disagreement, readably: one model at a time, the AUROCs as bars,
and its ROC curves (AUROC in the legend) only when asked for. Eight curves in one plot all
bunch up near the top left and cannot be told apart."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st
from sklearn.metrics import roc_curve

from compd_core.characterize.analysis import CONDITIONS, MODELS, CharacterizationReport
from compd_core.characterize.indicators import INDICATORS
from dashboard.components.trigger_view import PLOTLY_CONFIG

CONDITION_COLOURS = {"clean": "#1f77b4", "shifted": "#ff7f0e"}
INDICATOR_COLOURS = {"margin": "#1f77b4", "entropy": "#ff7f0e", "gini": "#2ca02c",
                     "least_confidence": "#d62728"}
MODEL_LABELS = {"compressed": "the compressed model", "original": "the original model"}


def auroc_bars(report: CharacterizationReport, model: str) -> go.Figure:
    """AUROC of each indicator computed on ``model``'s outputs, clean and shifted side by side."""
    fig = go.Figure()
    for condition in CONDITIONS:
        values = [report.auroc[condition][name][model] for name in INDICATORS]
        fig.add_trace(go.Bar(
            x=list(INDICATORS), y=values, name=f"{condition} data",
            marker_color=CONDITION_COLOURS[condition],
            text=["—" if math.isnan(v) else f"{v:.3f}" for v in values], textposition="outside",
            hovertemplate=f"%{{x}}, {condition}: AUROC %{{y:.3f}}<extra></extra>",
        ))
    fig.add_hline(y=0.5, line={"color": "grey", "dash": "dash", "width": 1},
                  annotation_text="chance", annotation_position="bottom right")
    fig.update_layout(
        title=f"{report.pair}: AUROC of each indicator on {MODEL_LABELS[model]}",
        barmode="group", yaxis={"title": "AUROC", "range": [0, 1.08]}, height=400,
    )
    return fig


def roc_curves(report: CharacterizationReport, model: str, condition: str) -> go.Figure:
    """One ROC curve per indicator, for one model and one condition."""
    scores = report.scores[condition]
    fig = go.Figure()
    if scores.disagree.any() and not scores.disagree.all():
        for name in INDICATORS:
            fpr, tpr, _ = roc_curve(scores.disagree, scores.risk[name][model])
            fig.add_trace(go.Scatter(
                x=fpr, y=tpr, mode="lines", line={"color": INDICATOR_COLOURS.get(name)},
                name=f"{name} (AUROC {report.auroc[condition][name][model]:.3f})",
            ))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", hoverinfo="skip",
                             line={"color": "grey", "dash": "dash", "width": 1}))
    fig.update_layout(
        title=f"{report.pair}: ROC curves on {condition} data, {MODEL_LABELS[model]}",
        xaxis={"title": "false positive rate", "range": [0, 1]},
        yaxis={"title": "true positive rate", "range": [0, 1]}, height=450,
    )
    return fig


def render_indicators(report: CharacterizationReport) -> None:
    """The model chooser, the AUROC bars, and the curves behind a toggle."""
    st.subheader("Which indicator warns of a disagreement")
    models = list(reversed(MODELS))  # the compressed model first: it is the one deployed
    model = st.radio("Indicators computed on", models, horizontal=True,
                     format_func=MODEL_LABELS.__getitem__) or models[0]
    st.plotly_chart(auroc_bars(report, model), key="characterize-auroc", config=PLOTLY_CONFIG)
    if st.toggle("Show the ROC curves"):
        condition = st.radio("Data", list(CONDITIONS), horizontal=True) or CONDITIONS[0]
        st.plotly_chart(roc_curves(report, model, condition), key="characterize-roc",
                        config=PLOTLY_CONFIG)
