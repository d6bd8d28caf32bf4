"""Write a characterization to a folder: CSV tables, JSON, HTML figures (PNG with kaleido)."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from compd_core.characterize import figures, tables
from compd_core.characterize.analysis import CharacterizationReport, PairComparison
from compd_core.errors import ConfigError

_log = logging.getLogger(__name__)


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so the JSON file parses everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def png_available() -> bool:
    """Plotly writes PNG through kaleido, an optional extra."""
    return importlib.util.find_spec("kaleido") is not None


def _save_figure(fig: go.Figure, out: Path, stem: str, written: list[Path]) -> None:
    html = out / f"{stem}.html"
    # "directory" writes plotly.min.js once beside the pages: they open offline and stay small.
    fig.write_html(html, include_plotlyjs="directory", full_html=True)
    written.append(html)
    if png_available():
        png = out / f"{stem}.png"
        try:
            fig.write_image(png)
        except Exception as exc:  # noqa: BLE001 - kaleido's browser start can race on a loaded machine
            # On a busy machine kaleido may query its page before it has loaded ("ReferenceError:
            # kaleido_scopes is not defined"); a second start has a fresh page.
            _log.warning("writing %s failed (%s); trying once more", png.name, exc)
            fig.write_image(png)
        written.append(png)


def write_outputs(
    report: CharacterizationReport, out_dir: str | Path, comparison: PairComparison | None = None
) -> list[Path]:
    """Write every table and figure of ``report`` (and ``comparison``) into ``out_dir``."""
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create output folder {out}: {exc}; choose another --out"
        ) from exc
    written: list[Path] = []

    def csv(frame: Any, name: str, index: bool = False) -> None:
        path = out / name
        frame.to_csv(path, index=index)
        written.append(path)

    csv(tables.cells_table(report), "cells.csv")
    csv(tables.severity_matrix(report), "by_corruption.csv", index=True)
    csv(tables.auroc_table(report), "auroc.csv")
    csv(tables.per_class_table(report), "per_class.csv")
    csv(tables.corruption_parameters(), "corruption_parameters.csv")
    payload = report.to_dict()
    if comparison is not None:
        csv(tables.comparison_table(comparison), "comparison.csv")
        csv(tables.comparison_by_corruption(comparison), "comparison_by_corruption.csv", index=True)
        payload["comparison"] = comparison.to_dict()
    report_json = out / "report.json"
    report_json.write_text(json.dumps(_finite(payload), indent=2, allow_nan=False) + "\n")
    written.append(report_json)

    if report.cells:
        _save_figure(figures.disagreement_heatmap(report), out, "heatmap", written)
    _save_figure(figures.roc_figure(report), out, "roc", written)
    _save_figure(figures.per_class_figure(report), out, "per_class", written)
    if comparison is not None:
        _save_figure(figures.comparison_figure(comparison), out, "comparison", written)
    if not png_available():
        _log.info("PNG figures skipped: kaleido is not installed (pip install kaleido); "
                  "the HTML figures hold the same charts")
    return written
