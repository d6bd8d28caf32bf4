"""Where and why a compressed model disagrees with its original, clean and under shift.

The method of Hu et al. (CAIN 2023; arXiv 2204.04220): count top-1
disagreements on the clean test split and on naturally corrupted copies of it, and measure how
well per-input uncertainty indicators (margin, entropy, Gini, least confidence) of each model
predict those disagreements (AUROC).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from compd_core.characterize.corruptions import (
    SEVERITIES,
    Corruption,
    check_severities,
    resolve_corruptions,
)
from compd_core.characterize.indicators import INDICATORS, auroc, margin, risk_score
from compd_core.data.dataset import ImageDataset
from compd_core.errors import ConfigError
from compd_core.events import Event, EventSink, Progress, ended, no_events
from compd_core.models.pair import ModelPair, PairPrediction

_log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("original", "compressed")
CONDITIONS: tuple[str, ...] = ("clean", "shifted")
_CHUNK_PIXELS = 2**19  # corrupt this many pixels per step: ~670 MNIST digits, bounded memory



@dataclass(frozen=True)
class CellResult:
    """Disagreements and accuracies of both models on one corruption at one severity.

    The clean test split is the cell ``("clean", 0)``.
    """

    corruption: str
    severity: int
    n: int
    disagreements: int
    correct_original: int
    correct_compressed: int
    mean_abs_change: float  # mean |x' - x| over pixels: how far the shift moved the inputs

    @property
    def rate(self) -> float:
        return self.disagreements / self.n

    @property
    def accuracy_original(self) -> float:
        return self.correct_original / self.n

    @property
    def accuracy_compressed(self) -> float:
        return self.correct_compressed / self.n

    def to_dict(self) -> dict[str, Any]:
        return {
            "corruption": self.corruption,
            "severity": self.severity,
            "n": self.n,
            "disagreements": self.disagreements,
            "rate": self.rate,
            "accuracy_original": self.accuracy_original,
            "accuracy_compressed": self.accuracy_compressed,
            "mean_abs_change": self.mean_abs_change,
        }


@dataclass(frozen=True)
class ClassRates:
    """Disagreements among inputs of one true class, clean and pooled over the shifted cells."""

    label: str
    n: int
    clean_disagreements: int
    shifted_n: int
    shifted_disagreements: int

    @property
    def clean_rate(self) -> float:
        return self.clean_disagreements / self.n if self.n else math.nan

    @property
    def shifted_rate(self) -> float:
        return self.shifted_disagreements / self.shifted_n if self.shifted_n else math.nan


@dataclass(frozen=True)
class ScoreSet:
    """Per-input disagreement flags and risk scores of one condition, kept for ROC curves."""

    disagree: np.ndarray  # bool (M,)
    risk: dict[str, dict[str, np.ndarray]]  # indicator -> model -> float32 (M,)


@dataclass(frozen=True)
class CharacterizationReport:
    """Everything ``characterize`` measured; ``to_dict`` is the JSON the CLI prints."""

    pair: str
    dataset: str
    seed: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    clean: CellResult
    cells: tuple[CellResult, ...]
    per_class: tuple[ClassRates, ...]
    auroc: dict[str, dict[str, dict[str, float]]]  # condition -> indicator -> model -> AUROC
    scores: dict[str, ScoreSet] = field(repr=False, compare=False)
    clean_disagreement_indices: tuple[int, ...]  # source indices (dataset.indices)
    complete: bool
    notes: tuple[str, ...]
    timings: dict[str, float]

    @property
    def clean_disagreement_rate(self) -> float:
        return self.clean.rate

    @property
    def shifted_disagreement_rate(self) -> float:
        """Mean over the corruption x severity cells (NaN when no cell was run)."""
        if not self.cells:
            return math.nan
        return float(np.mean([c.rate for c in self.cells]))

    def shifted_accuracy(self, model: str) -> float:
        if not self.cells:
            return math.nan
        attr = f"accuracy_{model}"
        return float(np.mean([getattr(c, attr) for c in self.cells]))

    def ranking(self, condition: str) -> list[str]:
        """Indicators best first by AUROC averaged over both models (undefined ones last)."""
        means = {name: _nanmean(self.auroc[condition][name].values()) for name in INDICATORS}
        return sorted(INDICATORS, key=lambda name: _sort_key(means[name]))

    @property
    def best_indicator(self) -> str | None:
        """The indicator with the highest AUROC averaged over models and conditions."""
        means = {
            name: _nanmean(v for cond in CONDITIONS for v in self.auroc[cond][name].values())
            for name in INDICATORS
        }
        best = min(INDICATORS, key=lambda name: _sort_key(means[name]))
        return None if math.isnan(means[best]) else best

    def by_corruption(self) -> dict[str, dict[str, float]]:
        """corruption -> severity (as text, for JSON keys) -> disagreement rate."""
        table: dict[str, dict[str, float]] = {}
        for cell in self.cells:
            table.setdefault(cell.corruption, {})[str(cell.severity)] = cell.rate
        return table

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "dataset": self.dataset,
            "n_images": self.clean.n,
            "seed": self.seed,
            "complete": self.complete,
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "clean_disagreements": self.clean.disagreements,
            "clean_disagreement_rate": self.clean_disagreement_rate,
            "clean_disagreement_indices": list(self.clean_disagreement_indices),
            "shifted_disagreements": sum(c.disagreements for c in self.cells),
            "shifted_images": sum(c.n for c in self.cells),
            "shifted_disagreement_rate": self.shifted_disagreement_rate,
            "accuracy": {
                "clean": {
                    "original": self.clean.accuracy_original,
                    "compressed": self.clean.accuracy_compressed,
                },
                "shifted": {m: self.shifted_accuracy(m) for m in MODELS},
            },
            "by_corruption": self.by_corruption(),
            "cells": [c.to_dict() for c in self.cells],
            "per_class": {
                c.label: {
                    "n": c.n,
                    "clean_disagreements": c.clean_disagreements,
                    "clean_rate": c.clean_rate,
                    "shifted_disagreements": c.shifted_disagreements,
                    "shifted_rate": c.shifted_rate,
                }
                for c in self.per_class
            },
            "auroc": self.auroc,
            "ranking": {cond: self.ranking(cond) for cond in CONDITIONS},
            "best_indicator": self.best_indicator,
            "notes": list(self.notes),
            "timings_s": dict(self.timings),
        }


def _nanmean(values: Any) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _sort_key(value: float) -> tuple[bool, float]:
    return (math.isnan(value), -value if not math.isnan(value) else 0.0)


def corruption_seed(seed: int, corruption: str) -> int:
    """The generator seed of one corruption, the same at every severity.

    Sharing the draws across severities makes severity s the same shift as s - 1, only
    stronger; mixing in the name keeps corruptions independent of each other and of the order
    in which they run.
    """
    return (seed * 1_000_003 + zlib.crc32(corruption.encode())) % (2**63)


class _Accumulator:
    """Collects what the cells produce: counts per class and risk scores per input."""

    def __init__(self, labels: torch.Tensor, num_classes: int) -> None:
        self.labels = labels
        self.num_classes = num_classes
        self.per_class = torch.zeros(num_classes, dtype=torch.long)
        self.inputs = 0
        self.disagree: list[np.ndarray] = []
        self.risk: dict[str, dict[str, list[np.ndarray]]] = {
            i: {m: [] for m in MODELS} for i in INDICATORS
        }

    def add(self, prediction: PairPrediction) -> None:
        disagree = prediction.disagree
        self.per_class += torch.bincount(self.labels[disagree], minlength=self.num_classes)
        self.inputs += len(disagree)
        self.disagree.append(disagree.numpy())
        for name in INDICATORS:
            for model in MODELS:
                probs = getattr(prediction, model)
                self.risk[name][model].append(risk_score(name, probs).numpy())

    def scores(self) -> ScoreSet:
        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        return ScoreSet(
            disagree=cat(self.disagree, bool),
            risk={
                i: {m: cat(parts, np.float32) for m, parts in by_model.items()}
                for i, by_model in self.risk.items()
            },
        )


def _cell(
    name: str, severity: int, prediction: PairPrediction, labels: torch.Tensor, change: float
) -> CellResult:
    return CellResult(
        corruption=name,
        severity=severity,
        n=len(labels),
        disagreements=int(prediction.disagree.sum()),
        correct_original=int((prediction.labels_original == labels).sum()),
        correct_compressed=int((prediction.labels_compressed == labels).sum()),
        mean_abs_change=change,
    )


def _run_cell(
    pair: ModelPair,
    images: torch.Tensor,
    corruption: Corruption,
    severity: int,
    seed: int,
    timings: dict[str, float],
) -> tuple[PairPrediction, float]:
    """Corrupt the images chunk by chunk and predict; returns predictions and mean |x' - x|."""
    generator = torch.Generator().manual_seed(corruption_seed(seed, corruption.name))
    chunk = max(16, _CHUNK_PIXELS // int(np.prod(images.shape[1:])))
    originals, compressed, change = [], [], 0.0
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk]
        t0 = time.perf_counter()
        shifted = corruption.apply(x, severity, generator)
        change += float((shifted - x).abs().sum())
        t1 = time.perf_counter()
        prediction = pair.predict(shifted)
        timings["predict_s"] += time.perf_counter() - t1
        timings["corrupt_s"] += t1 - t0
        originals.append(prediction.original)
        compressed.append(prediction.compressed)
    merged = PairPrediction(torch.cat(originals), torch.cat(compressed))
    return merged, change / images.numel()


def _auroc_table(
    scores: dict[str, ScoreSet], notes: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for condition in CONDITIONS:
        found = scores[condition]
        table[condition] = {
            name: {m: auroc(found.risk[name][m], found.disagree) for m in MODELS}
            for name in INDICATORS
        }
        if len(found.disagree) == 0:
            notes.append(f"AUROC on {condition} data is undefined: no {condition} cell was run")
        elif not found.disagree.any() or found.disagree.all():
            what = "no input disagrees" if not found.disagree.any() else "every input disagrees"
            notes.append(
                f"AUROC on {condition} data is undefined (NaN): {what}, so there is nothing to rank"
            )
    return table


def characterize(
    pair: ModelPair,
    dataset: ImageDataset,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
) -> CharacterizationReport:
    """Disagreement of ``pair`` on ``dataset``, clean and under every corruption x severity.

    ``corruptions`` None means all registered ones. A ``Progress`` of unit "cell" is emitted
    after the clean pass and after each cell; ``stop`` is checked between cells, and a stopped
    run returns the cells done so far with ``complete=False``. Same seed, same numbers. This is
    one pair's part of a characterize job; ``compare_pairs`` is the job (it ends with
    ``Finished`` or ``Stopped``).
    """
    chosen = resolve_corruptions(corruptions)
    levels = check_severities(severities)
    if dataset.num_classes != pair.num_classes:
        raise ConfigError(
            f"{dataset.name} has {dataset.num_classes} classes but {pair.name} predicts "
            f"{pair.num_classes}; characterize a pair on data with the same classes"
        )
    started = time.perf_counter()
    timings = {"corrupt_s": 0.0, "predict_s": 0.0}
    todo = [(c, s) for c in chosen for s in levels]
    total = 1 + len(todo)
    labels = dataset.labels

    t0 = time.perf_counter()
    clean_prediction = pair.predict(dataset.images)
    timings["predict_s"] += time.perf_counter() - t0
    clean = _cell("clean", 0, clean_prediction, labels, 0.0)
    clean_acc = _Accumulator(labels, dataset.num_classes)
    clean_acc.add(clean_prediction)
    emit(Progress("characterize", "cell", 1, total, "clean"))

    shifted_acc = _Accumulator(labels, dataset.num_classes)
    cells: list[CellResult] = []
    notes: list[str] = []
    for done, (corruption, severity) in enumerate(todo, start=2):
        if stop is not None and stop.is_set():
            notes.append(f"stopped after {len(cells)} of {len(todo)} corruption cells")
            _log.info("characterize %s stopped after %d cells", pair.name, len(cells))
            break
        prediction, change = _run_cell(pair, dataset.images, corruption, severity, seed, timings)
        cells.append(_cell(corruption.name, severity, prediction, labels, change))
        shifted_acc.add(prediction)
        emit(Progress("characterize", "cell", done, total, f"{corruption.name} s{severity}"))

    t0 = time.perf_counter()
    scores = {"clean": clean_acc.scores(), "shifted": shifted_acc.scores()}
    table = _auroc_table(scores, notes)
    timings["indicators_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started

    class_counts = torch.bincount(labels, minlength=dataset.num_classes)
    per_class = tuple(
        ClassRates(
            label=dataset.class_names[k],
            n=int(class_counts[k]),
            clean_disagreements=int(clean_acc.per_class[k]),
            shifted_n=int(class_counts[k]) * len(cells),
            shifted_disagreements=int(shifted_acc.per_class[k]),
        )
        for k in range(dataset.num_classes)
    )
    positions = torch.nonzero(clean_prediction.disagree).flatten()
    return CharacterizationReport(
        pair=pair.name,
        dataset=dataset.name,
        seed=seed,
        corruptions=tuple(c.name for c in chosen),
        severities=levels,
        clean=clean,
        cells=tuple(cells),
        per_class=per_class,
        auroc=table,
        scores=scores,
        clean_disagreement_indices=tuple(int(i) for i in dataset.indices[positions]),
        complete=len(cells) == len(todo),
        notes=tuple(notes),
        timings=timings,
    )


@dataclass(frozen=True)
class PairComparison:
    """Several pairs characterized on the same data, corruptions, severities and seed."""

    reports: tuple[CharacterizationReport, ...]
    shared_original: bool  # all pairs compress the same original model (by its name)
    originals: tuple[str, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One row per pair: clean and shifted rates, side by side."""
        return [
            {
                "pair": r.pair,
                "original": o,
                "clean_disagreement_rate": r.clean_disagreement_rate,
                "shifted_disagreement_rate": r.shifted_disagreement_rate,
                "shift_effect": r.shifted_disagreement_rate - r.clean_disagreement_rate,
                "clean_accuracy_compressed": r.clean.accuracy_compressed,
                "shifted_accuracy_compressed": r.shifted_accuracy("compressed"),
                "best_indicator": r.best_indicator,
                "complete": r.complete,
            }
            for r, o in zip(self.reports, self.originals)
        ]

    def by_corruption(self) -> list[dict[str, Any]]:
        """Rate per pair and corruption (mean over severities), clean first."""
        rows = []
        for report in self.reports:
            rows.append({"pair": report.pair, "corruption": "clean",
                         "rate": report.clean_disagreement_rate})
            for name, by_severity in report.by_corruption().items():
                rows.append({"pair": report.pair, "corruption": name,
                             "rate": float(np.mean(list(by_severity.values())))})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared_original": self.shared_original,
            "pairs": self.rows(),
            "by_corruption": self.by_corruption(),
        }


def compare_reports(
    reports: Sequence[CharacterizationReport], originals: Sequence[str]
) -> PairComparison:
    """Put reports side by side; they must share dataset, corruptions, severities and seed.

    ``originals`` names each pair's original model; comparing compressions of one original
    (PTQ against QAT, 50% against 90% pruning) is the intended use, anything else is flagged.
    """
    if len(reports) != len(originals) or not reports:
        raise ConfigError("compare at least one report, with one original name per report")
    first = reports[0]
    for report in reports[1:]:
        same = (report.dataset, report.clean.n, report.corruptions, report.severities,
                report.seed) == (first.dataset, first.clean.n, first.corruptions,
                                 first.severities, first.seed)
        if not same:
            raise ConfigError(
                f"{report.pair} was characterized with other data or settings than {first.pair}; "
                "run both with the same dataset, corruptions, severities and seed"
            )
    shared = len(set(originals)) == 1
    if not shared:
        _log.warning("comparing pairs with different originals: %s", ", ".join(originals))
    return PairComparison(tuple(reports), shared, tuple(originals))


def compare_pairs(
    pairs: Sequence[ModelPair],
    dataset: ImageDataset,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
) -> PairComparison:
    """Characterize every pair on the same shifted data and put their rates side by side.

    The characterize job: cells are counted over all pairs, and it ends with ``Finished`` or,
    when ``stop`` ended it early, ``Stopped`` (the cells measured so far are kept).
    """
    if not pairs:
        raise ConfigError("compare_pairs needs at least one pair")
    per_pair = 1 + len(resolve_corruptions(corruptions)) * len(check_severities(severities))
    reports = []
    for i, pair in enumerate(pairs):
        if i > 0 and stop is not None and stop.is_set():
            break  # the first pair always runs (at least its clean pass), so there is a report

        def forward(event: Event, offset: int = i * per_pair, name: str = pair.name) -> None:
            if isinstance(event, Progress):
                event = Progress(event.kind, event.unit, offset + event.done,
                                 per_pair * len(pairs), f"{name}: {event.line}")
            emit(event)

        reports.append(characterize(pair, dataset, corruptions, severities, seed, forward, stop))
    comparison = compare_reports(reports, [p.original.info.name for p in pairs[: len(reports)]])
    complete = len(reports) == len(pairs) and all(r.complete for r in reports)
    cells = sum(len(r.cells) for r in reports)
    emit(ended("characterize", {"pairs": comparison.rows(), "cells": cells}, stopped=not complete,
               line=f"kept the {cells} finished cell{'s' if cells != 1 else ''}"))
    return comparison


SeedModel = Literal["original", "compressed", "min"]


def lowest_margin_indices(
    pair: ModelPair,
    dataset: ImageDataset,
    n: int,
    model: SeedModel = "compressed",
    exclude_disagreeing: bool = True,
) -> torch.Tensor:
    """Positions in ``dataset`` of the ``n`` inputs with the smallest margin, smallest first.

    Hu et al. find the margin the best predictor of disagreement, so these are the seeds a
    search should try first. Inputs on which the pair already disagrees are left out by
    default: they are deviations already, not seeds. ``model='min'`` takes the smaller of the
    two models' margins. Use ``dataset.subset(positions)`` to keep provenance.
    """
    if n < 0:
        raise ConfigError(f"n must be zero or more, got {n}")
    if model not in ("original", "compressed", "min"):
        raise ConfigError(f"model must be 'original', 'compressed' or 'min', got {model!r}")
    prediction = pair.predict(dataset.images)
    if model == "min":
        values = torch.minimum(margin(prediction.original), margin(prediction.compressed))
    else:
        values = margin(getattr(prediction, model))
    candidates = torch.arange(len(dataset))
    if exclude_disagreeing:
        candidates = candidates[~prediction.disagree]
    order = torch.argsort(values[candidates], stable=True)
    return candidates[order[:n]]
