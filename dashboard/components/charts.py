"""Plotly figures the pages share. Functions build figures from plain values; pages draw them.

The original model is always blue and the compressed one always orange, on every page and in
the HTML report, so a viewer learns the code once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from compd_core.report import COMPRESSED_COLOUR, ORIGINAL_COLOUR

SEARCHING_COLOUR = "#1f5fa8"
FOUND_COLOUR = "#d1495b"
ENDED_COLOUR = "#b7bfca"
MAX_LINES = 40  # fitness curves drawn at once; more is a grey mat nobody can read


def _layout(fig: go.Figure, height: int, **extra) -> go.Figure:
    # No named template: copying one costs ~30 ms a figure, and Streamlit applies its own theme.
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=36, b=10),
        font=dict(size=13), legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        **extra,
    )
    return fig


def probability_figure(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, class_names: Sequence[str],
    height: int = 300,
) -> go.Figure:
    """Both models' probability for every class, side by side."""
    names = [str(n) for n in class_names]
    fig = go.Figure()
    for label, probs, colour in (("original model", probs_original, ORIGINAL_COLOUR),
                                 ("compressed model", probs_compressed, COMPRESSED_COLOUR)):
        values = [float(v) for v in probs]
        fig.add_bar(x=names, y=values, name=label, marker_color=colour,
                    text=[f"{v:.0%}" if v >= 0.05 else "" for v in values], textposition="outside",
                    hovertemplate="class %{x}: %{y:.1%}<extra>" + label + "</extra>")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title_text="probability")
    fig.update_xaxes(type="category", title_text="class")
    return _layout(fig, height, barmode="group", bargap=0.25)


def fitness_figure(
    traces: dict[int, list[tuple[int, float]]], finished: dict[int, bool], boundary: float | None,
    height: int = 320,
) -> go.Figure:
    """One curve per seed (recent ones): how close its chain is to a deviation.

    ``finished`` maps a seed position to whether it found a deviation (absent = still searching).
    Curves of one state share a single trace (gaps between seeds), so a live redraw stays cheap.
    """
    groups: dict[str, tuple[list, list, list]] = {}
    # The newest chains still searching, then the newest that ended, up to MAX_LINES curves.
    searching = [p for p in traces if p not in finished][-(MAX_LINES * 3 // 4):]
    ended = [p for p in traces if p in finished][-(MAX_LINES - len(searching)):]
    for position in ended + searching:
        points = traces[position]
        if not points:
            continue
        state = ("searching" if position not in finished
                 else "found a deviation" if finished[position] else "ended without a deviation")
        xs, ys, seeds = groups.setdefault(state, ([], [], []))
        xs += [p[0] for p in points] + [math.nan]
        ys += [p[1] for p in points] + [math.nan]
        seeds += [position] * len(points) + [-1]
    fig = go.Figure()
    for state, colour, width in (("ended without a deviation", ENDED_COLOUR, 1),
                                 ("searching", SEARCHING_COLOUR, 2),
                                 ("found a deviation", FOUND_COLOUR, 2)):
        if state in groups:
            # numpy arrays: plotly checks a Python list element by element (slow at 2 Hz)
            x, y, seed = (np.asarray(v, dtype=float) for v in groups[state])
            fig.add_scatter(x=x, y=y, customdata=seed, mode="lines", name=state,
                            line=dict(color=colour, width=width), connectgaps=False,
                            hovertemplate="seed %{customdata}<br>step %{x}<br>"
                                          "fitness %{y:.3f}<extra></extra>")
    if boundary is not None:
        fig.add_hline(y=boundary, line=dict(color=FOUND_COLOUR, dash="dot", width=1),
                      annotation_text="deviation", annotation_position="bottom right")
    fig.update_xaxes(title_text="step of the seed's search")
    fig.update_yaxes(title_text="fitness (lower = closer)")
    return _layout(fig, height)


def operator_figure(operators: dict[str, dict[str, int]], height: int = 320) -> go.Figure:
    """How often each mutation operator was tried, and how often it helped."""
    names = sorted(operators, key=lambda n: operators[n]["chosen"])
    chosen = [operators[n]["chosen"] for n in names]
    succeeded = [operators[n]["succeeded"] for n in names]
    rates = [f"{s / c:.0%} helped" if c else "" for s, c in zip(succeeded, chosen)]
    fig = go.Figure()
    fig.add_bar(y=names, x=chosen, name="tried", orientation="h", marker_color="#c9d3e0",
                text=rates, textposition="outside", hovertemplate="%{y}: tried %{x}<extra></extra>")
    fig.add_bar(y=names, x=succeeded, name="helped (improved the chain or deviated)",
                orientation="h", marker_color=SEARCHING_COLOUR,
                hovertemplate="%{y}: helped %{x}<extra></extra>")
    fig.update_xaxes(title_text="times chosen", range=[0, max(chosen, default=1) * 1.3])
    return _layout(fig, height, barmode="overlay")


def replay_figure(
    probs_original: torch.Tensor, probs_compressed: torch.Tensor, label: int, class_name: str,
    current: int, height: int = 260,
) -> go.Figure:
    """Along the chain (step 0 = the seed), each model's probability for the seed's class.

    ``probs_*`` are (steps, K); the chain deviates where the orange line drops below another
    class while the blue one stays on top.
    """
    steps = list(range(len(probs_original)))
    fig = go.Figure()
    for name, probs, colour in (("original model", probs_original, ORIGINAL_COLOUR),
                                ("compressed model", probs_compressed, COMPRESSED_COLOUR)):
        fig.add_scatter(x=steps, y=[float(v) for v in probs[:, label]], mode="lines+markers",
                        name=name, line=dict(color=colour, width=2),
                        hovertemplate="step %{x}: %{y:.1%}<extra>" + name + "</extra>")
    fig.add_vline(x=current, line=dict(color="#555", dash="dot", width=1))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title_text=f"p(class {class_name})")
    fig.update_xaxes(title_text="step (0 = original image)", dtick=1 if len(steps) <= 20 else None)
    return _layout(fig, height)


def profile_figure(budgets: Sequence[int], shares: Sequence[float], solved: Sequence[int],
                   seeds: int, height: int = 300) -> go.Figure:
    """The deviation profile: share of seeds that deviate within each largest pixel change."""
    labels = [f"≤{b}/255" for b in budgets]
    fig = go.Figure()
    fig.add_bar(x=labels, y=list(shares), marker_color=COMPRESSED_COLOUR, name="seeds that deviate",
                text=[f"{s:.0%} ({n})" for s, n in zip(shares, solved)], textposition="outside",
                hovertemplate="%{x}: %{y:.0%} of " + str(seeds) + " seeds<extra></extra>")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title_text=f"share of {seeds} seeds")
    fig.update_xaxes(type="category", title_text="largest change of any pixel (grey levels)")
    return _layout(fig, height, showlegend=False)
