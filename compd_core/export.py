"""A run's results as files a user keeps: CSV for spreadsheets, JSON for scripts, PNGs to look at.

The same rows feed ``compd runs show`` and the dashboard's downloads, so every view of a run
names its columns the same way. Trigger PNGs are the exact triggers (they lie on the 8-bit
grid), so loading one and giving it to the pair reproduces the deviation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from compd_core.errors import ConfigError, StoreError
from compd_core.search.results import SeedResult
from compd_core.store import Store
from compd_core.strength import change_size, summarize_strength

FORMATS: frozenset[str] = frozenset({"csv", "json", "png"})
TOP_K = 3  # probabilities per model in the CSV: enough to see which class took over

CSV_COLUMNS: tuple[str, ...] = (
    "position", "dataset_index", "label", "true_label", "found", "exit_reason", "queries",
    "iterations", "seconds", "l2", "linf", "max_change_levels", "pixels_changed",
    "label_original", "label_compressed", "p_original_top1", "p_compressed_top1",
    "margin_original", "margin_compressed", "strict", "original_top3", "compressed_top3",
)


def result_row(result: SeedResult) -> dict[str, Any]:
    """One seed as a flat row (the CSV columns); trigger columns are None when nothing was found."""
    seed, trigger = result.seed, result.trigger
    row: dict[str, Any] = {
        "position": seed.position, "dataset_index": seed.index, "label": seed.label,
        "true_label": seed.true_label, "found": result.found,
        "exit_reason": result.exit_reason.name, "queries": result.queries,
        "iterations": result.iterations, "seconds": result.seconds,
    }
    if trigger is None:
        row.update({column: None for column in CSV_COLUMNS if column not in row})
        return row
    m_o, m_c = trigger.margins
    size = change_size(seed.image, trigger.image)
    row.update({
        "l2": trigger.l2, "linf": trigger.linf,
        "max_change_levels": size.max_levels, "pixels_changed": size.pixels_changed,
        "margin_original": m_o, "margin_compressed": m_c, "strict": trigger.is_strict,
        "label_original": trigger.label_original, "label_compressed": trigger.label_compressed,
        "p_original_top1": float(trigger.probs_original.max()),
        "p_compressed_top1": float(trigger.probs_compressed.max()),
        "original_top3": _top_k(trigger.probs_original),
        "compressed_top3": _top_k(trigger.probs_compressed),
    })
    return row


def run_summary(results: Sequence[SeedResult]) -> dict[str, Any]:
    """What a run achieved: found rate, why seeds ended, medians over the found seeds."""
    found = [r for r in results if r.trigger is not None]
    reasons: dict[str, int] = {}
    for result in results:
        reasons[result.exit_reason.name] = reasons.get(result.exit_reason.name, 0) + 1

    def median(values: list[float]) -> float | None:
        return float(np.median(values)) if values else None

    strength = summarize_strength(r.trigger for r in found if r.trigger is not None)
    return {
        "seeds_done": len(results),
        "found": len(found),
        "found_rate": len(found) / len(results) if results else 0.0,
        "exit_reasons": reasons,
        "queries_total": sum(r.queries for r in results),
        "median_queries_found": median([r.queries for r in found]),
        "median_seconds_found": median([r.seconds for r in found]),
        "median_l2": median([r.trigger.l2 for r in found if r.trigger is not None]),
        "median_linf": median([r.trigger.linf for r in found if r.trigger is not None]),
        **{k: v for k, v in strength.to_dict().items() if k != "triggers"},
    }


def diff_image(seed: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
    """Trigger minus seed, mid-grey = unchanged, scaled so the largest change is black or white.

    A change of a few grey levels is invisible unless amplified.
    """
    delta = trigger.to(torch.float32) - seed.to(torch.float32)
    scale = float(delta.abs().max())
    if scale == 0.0:
        return torch.full_like(delta, 128 / 255)
    return torch.round((0.5 + 0.5 * delta / scale).clamp(0.0, 1.0) * 255.0) / 255.0


def png_bytes(image: torch.Tensor) -> bytes:
    """(C, H, W) in [0, 1] with 1 or 3 channels -> PNG bytes (rounded to the 8-bit grid)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ConfigError(
            f"PNG export needs images of shape (1 or 3, H, W), got {tuple(image.shape)}; "
            "use the JSON or .npz export for other channel counts"
        )
    pixels = torch.round(image.detach().cpu().float().clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if image.shape[0] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def export_run(
    store: Store,
    run_id: str,
    out_dir: str | Path,
    formats: Collection[str] = FORMATS,
    positions: Iterable[int] | None = None,
) -> list[Path]:
    """Write triggers.csv, run.json and png/ for a run (or some of its seeds); returns the files."""
    chosen = set(formats)
    unknown = sorted(chosen - FORMATS)
    if unknown or not chosen:
        raise ConfigError(
            f"unknown export format(s) {unknown or '(none given)'}; choose from "
            f"{', '.join(sorted(FORMATS))}"
        )
    run = store.get_run(run_id)
    results = store.load_results(run_id, positions, details="json" in chosen)
    target = Path(out_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "csv" in chosen:
        path = target / "triggers.csv"
        path.write_text(_csv_text(results), encoding="utf-8")
        written.append(path)
    if "json" in chosen:
        path = target / "run.json"
        payload = {"run": run.as_dict(), "seeds": [_result_json(r) for r in results]}
        path.write_text(json.dumps(_finite(payload), indent=1, allow_nan=False), encoding="utf-8")
        written.append(path)
    if "png" in chosen:
        png_dir = target / "png"
        png_dir.mkdir(exist_ok=True)
        for name, data in _png_files(results):
            path = png_dir / name
            path.write_bytes(data)
            written.append(path)
    return written


def selection_zip_bytes(store: Store, run_id: str, positions: Sequence[int]) -> bytes:
    """A zip of seed/trigger/diff PNGs plus selection.csv for hand-picked triggers."""
    results = _selected(store, run_id, positions)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in _png_files(results):
            archive.writestr(name, data)
        archive.writestr("selection.csv", _csv_text(results))
    return buffer.getvalue()


def selection_npz_bytes(store: Store, run_id: str, positions: Sequence[int]) -> bytes:
    """Hand-picked triggers as arrays for training: x and seeds (N, C, H, W) uint8, labels (N,).

    ``labels`` are the original model's labels on the seeds (what repair trains towards).
    """
    results = _selected(store, run_id, positions)
    triggers = torch.stack([r.trigger.image for r in results if r.trigger is not None])
    seeds = torch.stack([r.seed.image for r in results])
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x=_uint8(triggers),
        seeds=_uint8(seeds),
        labels=np.array([r.seed.label for r in results], dtype=np.int64),
        labels_compressed=np.array(
            [r.trigger.label_compressed for r in results if r.trigger is not None], dtype=np.int64
        ),
        positions=np.array([r.seed.position for r in results], dtype=np.int64),
        dataset_indices=np.array([r.seed.index for r in results], dtype=np.int64),
    )
    return buffer.getvalue()


def _selected(store: Store, run_id: str, positions: Sequence[int]) -> list[SeedResult]:
    if not positions:
        raise ConfigError("no triggers selected; pick at least one trigger to download")
    results = store.load_results(run_id, positions, details=False)
    empty = [r.seed.position for r in results if r.trigger is None]
    if empty:
        raise StoreError(
            f"run {run_id!r} found no trigger at seed positions {empty}; select only found seeds"
        )
    order = {int(p): i for i, p in enumerate(dict.fromkeys(int(p) for p in positions))}
    return sorted(results, key=lambda r: order[r.seed.position])


def _png_files(results: Iterable[SeedResult]) -> Iterable[tuple[str, bytes]]:
    for result in results:
        position = result.seed.position
        yield f"seed_{position}.png", png_bytes(result.seed.image)
        if result.trigger is not None:
            yield f"trigger_{position}.png", png_bytes(result.trigger.image)
            diff = diff_image(result.seed.image, result.trigger.image)
            yield f"diff_{position}.png", png_bytes(diff)


def _csv_text(results: Iterable[SeedResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({k: "" if v is None else v for k, v in result_row(result).items()})
    return buffer.getvalue()


def _result_json(result: SeedResult) -> dict[str, Any]:
    data = result_row(result)
    data["exit_reason_text"] = result.exit_reason.value
    trigger = result.trigger
    data["probs_original"] = None if trigger is None else trigger.probs_original.tolist()
    data["probs_compressed"] = None if trigger is None else trigger.probs_compressed.tolist()
    data["chain"] = [
        {"iteration": s.iteration, "operator": s.operator, "params": s.params,
         "fitness": s.fitness, "label_original": s.label_original,
         "label_compressed": s.label_compressed}
        for s in result.chain
    ]
    data["trace"] = list(result.trace)
    return data


def _top_k(probs: torch.Tensor) -> str:
    values, labels = probs.topk(min(TOP_K, probs.numel()))
    return " ".join(f"{int(c)}:{float(p):.4f}" for p, c in zip(values, labels))


def _uint8(images: torch.Tensor) -> np.ndarray:
    return torch.round(images.clamp(0.0, 1.0) * 255.0).to(torch.uint8).numpy()


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so run.json parses in every JSON reader."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
