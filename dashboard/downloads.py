"""What the Triggers page offers to download for a selection: computed here, drawn there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from compd_core.export import CSV_COLUMNS, result_row, selection_npz_bytes, selection_zip_bytes
from compd_core.store import Store


@dataclass(frozen=True)
class Download:
    label: str
    data: bytes
    file_name: str
    mime: str
    icon: str


def selection_downloads(store: Store, run_id: str, positions: Sequence[int]) -> list[Download]:
    """The selected triggers as PNGs in a zip, as arrays for training (NPZ), and as a table."""
    results = store.load_results(run_id, positions, details=False)
    table = pd.DataFrame([result_row(r) for r in results], columns=list(CSV_COLUMNS))
    return [
        Download("PNG images (zip)", selection_zip_bytes(store, run_id, positions),
                 f"triggers-{run_id}.zip", "application/zip", ":material/folder_zip:"),
        Download("Arrays (NPZ)", selection_npz_bytes(store, run_id, positions),
                 f"triggers-{run_id}.npz", "application/octet-stream", ":material/data_array:"),
        Download("Table (CSV)", table.to_csv(index=False).encode(), f"triggers-{run_id}.csv",
                 "text/csv", ":material/table:"),
    ]
