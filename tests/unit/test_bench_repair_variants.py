"""bench.repair_variants reuses a folder's runs and mined deviations only when this checkout's
search code found them: otherwise repairs would be compared on other triggers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.repair_variants import FINGERPRINT_FILE, check_folder, search_fingerprint


def test_a_fresh_folder_is_marked_with_the_search_code_and_reused_by_it(tmp_path: Path) -> None:
    check_folder(tmp_path)
    assert (tmp_path / FINGERPRINT_FILE).read_text().strip() == search_fingerprint()
    (tmp_path / "db.sqlite").write_bytes(b"")
    check_folder(tmp_path)  # the same code: its runs are reused


@pytest.mark.parametrize("marker", [None, "0" * 40])
def test_a_folder_searched_by_other_code_is_refused(tmp_path: Path, marker: str | None) -> None:
    (tmp_path / "mined-lenet5-prune90-512-500-0.pkl").write_bytes(b"")
    if marker is not None:
        (tmp_path / FINGERPRINT_FILE).write_text(marker)
    with pytest.raises(SystemExit, match="pass a --db in a fresh folder"):
        check_folder(tmp_path)
