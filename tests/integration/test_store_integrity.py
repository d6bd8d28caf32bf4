"""A damaged results file is refused on open with one line, instead of a search that "succeeds"
into a file that cannot be read back."""

from __future__ import annotations

import sqlite3

import pytest

from cli_support import compd
from compd_core.store import Store


@pytest.fixture()
def damaged_db(tmp_path):
    """A real search's results file with the header of one b-tree page overwritten."""
    path = tmp_path / "r.sqlite"
    made = compd("search", "--pair", "lenet5-int8-static", "--strategy", "random", "--seeds", "3",
                 "--budget", "30", "--db", str(path))
    assert made.returncode == 0, made.stderr
    connection = sqlite3.connect(path)
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    data = bytearray(path.read_bytes())
    offset = 3 * page_size  # a table page: leaf header with a nonsense free-block pointer
    data[offset:offset + 16] = bytes.fromhex("0d000000ffff00000000 0000ffffffff".replace(" ", ""))
    path.write_bytes(bytes(data))
    return path


def test_search_on_a_damaged_file_ends_in_one_line_and_exit_2(damaged_db):
    for args in (("search", "--pair", "lenet5-int8-static", "--strategy", "random", "--seeds",
                  "2", "--budget", "20"), ("runs", "list")):
        result = compd(*args, "--db", str(damaged_db))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(f"error: the results database {damaged_db} is damaged")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_the_check_passes_a_healthy_file_with_results(tmp_path):
    path = tmp_path / "ok.sqlite"
    made = compd("search", "--pair", "lenet5-int8-static", "--strategy", "random", "--seeds", "2",
                 "--budget", "20", "--db", str(path))
    assert made.returncode == 0, made.stderr
    with Store(path) as store:
        assert [run.seeds_done for run in store.list_runs()] == [2]
