"""Every command, fed bad values: one line on stderr that names the problem, exit code 2, and
never a traceback. Each row: the command line, the bad value it carries, the message fragment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from compd_core.cli import main

RUN = "20261201-091427-2551"  # the run inside tests/data/store_v1.sqlite
VERSION_1_DB = Path(__file__).parents[1] / "data" / "store_v1.sqlite"
BIG = str(2**70)
USER_CODE = '''import numpy as np
def raises(x):
    raise KeyError("weights")
def none(x):
    return None
def strings(x):
    return [["cat", "dog"]] * len(x)
def flat(x):
    return np.ones(len(x) * 10)
'''
# An existing folder nobody may write to: root may write anywhere except into sysfs.
UNWRITABLE = "/sys" if os.geteuid() == 0 else "{tmp}/locked"
S = "search --pair lenet5-int8-static --db {db}"
R = f"repair --run {RUN} --db {{db}}"
C = "characterize --pair lenet5-int8-static"

ROWS = [
    (f"{S} --seed {BIG}", BIG, "--seed must be a whole number from 0 to 2**63-1"),
    (f"{S} --seed -1", "-1", "--seed must be a whole number from 0 to 2**63-1"),
    (f"{S} --seed 9223372036854775808", "2**63", "--seed must be a whole number from 0 to 2**63-1"),
    (f"{S} --seed abc", "abc", "Invalid value for '--seed'"),
    ("search --pair nope --db {db}", "nope", "unknown pair 'nope'; known pairs: lenet5-int8-static"),
    (f"{S} --strategy nope", "nope", "unknown strategy 'nope'; choose one of: compd"),
    (f"{S} --seeds 0", "0", "the number of seeds must be a whole number >= 1"),
    (f"{S} --budget 0", "0", "the query budget must be a whole number >= 1"),
    (f"{S} --time-budget nan", "nan", "the time budget must be a finite number of seconds > 0"),
    (f"{S} --time-budget -1", "-1", "the time budget must be a finite number of seconds > 0"),
    (f"{S} --max-linf 2", "2", "--max-linf must lie in (0, 1]"),
    (f"{S} --max-linf nan", "nan", "--max-linf must lie in (0, 1]"),
    (f"{S} --criterion nope", "nope", "criterion must be 'valid' or 'any'"),
    (f"{S} --min-margin-original 1", "1", "--min-margin-original must lie in [0, 1)"),
    (f"{S} --min-margin-compressed -0.1", "-0.1", "--min-margin-compressed must lie in [0, 1)"),
    (f"{S} --min-margin-original nan", "nan", "--min-margin-original must lie in [0, 1)"),
    (f"{S} --max-l2 0", "0", "--max-l2 must be a finite number > 0"),
    (f"{S} --max-l2 inf", "inf", "--max-l2 must be a finite number > 0"),
    (f"{S} --seed-order nope", "nope", "seed order must be 'random', 'margin' or 'balanced'"),
    (f"{S} --operators nope", "nope", "unknown operator set 'nope'"),
    ("search --pair lenet5-int8-static --db {tmp}", "a folder", "is a directory; give a database file"),
    ("search --pair lenet5-int8-static --db {notes}", "a text file", "is not an SQLite database"),
    (f"{S} --resume nope", "nope", "no run 'nope' in"),
    ("search --pair lenet5-onnx-int8 --strategy gradient --db {db}", "gradient", "is a black box"),
    (f"{S} --executor nope", "nope", "unknown executor 'nope'; choose one of: inprocess, ray"),
    (f"{S} --workers 2", "2", "--address, --workers and --chunk apply to --executor ray only"),
    (f"{S} --executor ray --workers 0", "0", "--workers must be a whole number >= 1, got 0"),
    (f"{S} --executor ray --chunk 0", "0", "--chunk must be a whole number of seeds >= 1, got 0"),
    (f"{S} --executor ray --address head", "head", "--address 'head' is not 'auto' or HOST:PORT"),
    (f"{S} --executor ray --address h:70000", "70000", "with a port in 1..65535"),
    (f"{S} --device tpu", "tpu", "unknown device 'tpu'; choose one of: cpu, cuda, auto"),
    (f"{S} --pair lenet5-int8-static", "a pair twice", "--pair lenet5-int8-static is given twice; give each pair once"),
    (f"{S} --pair lenet1-int8-static --original {{tmp}}/m.onnx --compressed {{tmp}}/m.pt", "files and pairs",
     "--original and --compressed describe one pair of files"),
    (f"{S} --pair lenet1-int8-static --resume nope", "resume", "--resume continues one run with its own pair"),
    (f"{S} --pair nope", "nope", "unknown pair 'nope'; known pairs: lenet5-int8-static"),
    ("runs list --db {tmp}/missing.sqlite", "missing", "no results database at"),
    ("runs list --db {notes}", "a text file", "is not an SQLite database"),
    ("runs show nope --db {db}", "nope", "no run 'nope' in"),
    (f"runs export {RUN} --out {{notes}} --db {{db}}", "a file", "is a file; give a folder"),
    (f"runs export {RUN} --out {{notes}}/sub --db {{db}}", "under a file", "cannot be written"),
    (f"runs export {RUN} --out {UNWRITABLE} --db {{db}}", "unwritable", "cannot be written"),
    (f"runs export {RUN} --out {{tmp}}/e --format xyz --db {{db}}", "xyz", "unknown export format"),
    (f"runs export {RUN} --out {{tmp}}/e --positions a,b --db {{db}}", "a,b", "--positions must be comma-separated"),
    (f"runs export {RUN} --out {{tmp}}/e --positions 99 --db {{db}}", "99", "has no result for seed positions [99]"),
    ("repair --run nope --db {db}", "nope", "no run 'nope' in"),
    (f"{R} --seed {BIG}", BIG, "--seed must be a whole number from 0 to 2**63-1"),
    (f"{R} --epochs 0", "0", "--epochs must be a whole number >= 1"),
    (f"{R} --batch-size 0", "0", "--batch-size must be a whole number >= 2"),
    (f"{R} --mix-ratio 1.5", "1.5", "--mix-ratio must be a finite number in [0, 0.99]"),
    (f"{R} --heldout-fraction 0", "0", "--heldout-fraction must be a finite number in (0, 0.95]"),
    (f"{R} --lr inf", "inf", "--lr must be a finite number in (0, 1], got inf"),
    (f"{R} --ce-weight nan", "nan", "--ce-weight must be a finite number in [0, inf), got nan"),
    (f"repair --run {RUN} --db {{tmp}}/missing.sqlite", "missing", "no results database at"),
    ("characterize --pair nope", "nope", "unknown pair 'nope'"),
    (f"{C} --severities 9", "9", "severities must be whole numbers from 1 to 5"),
    (f"{C} --corruptions nope", "nope", "unknown corruption(s) 'nope'"),
    (f"{C} --seed {BIG}", BIG, "--seed must be a whole number from 0 to 2**63-1"),
    (f"{C} --out {{notes}}", "a file", "is a file; give a folder"),
    (f"{C} --out {UNWRITABLE}", "unwritable", "cannot be written"),
    (f"{C} --dataset {{tmp}}/nowhere", "nowhere", "is neither 'mnist', 'mnist:train'"),
    (f"{C} --compare nope", "nope", "unknown pair 'nope'"),
    ("profile --pair lenet5-int8-static --min-margin-original 1", "1",
     "--min-margin-original must lie in [0, 1)"),
    ("pair inspect --pair nope", "nope", "unknown pair 'nope'"),
    ("pair inspect --original {tmp}/m.onnx --compressed {tmp}/m.pt", "missing", "does not exist"),
    ("pair inspect --original bad_code:raises --compressed bad_code:raises", "code", "running it is opt-in"),
    ("pair inspect --original bad_code:raises --compressed bad_code:raises --allow-code", "raises",
     "bad_code:raises raised KeyError: 'weights'"),
    ("pair inspect --original bad_code:none --compressed bad_code:none --allow-code", "None",
     "bad_code:none returned None"),
    ("pair inspect --original bad_code:strings --compressed bad_code:strings --allow-code", "strings",
     "returned <U3 values, not numbers"),
    ("pair inspect --original bad_code:flat --compressed bad_code:flat --allow-code", "1-D",
     "returned shape (10,)"),
    ("pair inspect --pair lenet5-int8-static --dataset {tmp}/nowhere", "nowhere", "is neither 'mnist'"),
    ("zoo build --seed -1 --out {tmp}/zoo", "-1", "--seed must be a whole number from 0 to 2**63-1"),
    ("zoo build --out {notes}", "a file", "is a file; give a folder"),
    ("dashboard --port 70000", "70000", "--port must lie in 1..65535"),
    ("dashboard --db {tmp}", "a folder", "is a directory; give a database file"),
    ("dashboard --db {notes}", "a text file", "is not an SQLite database"),
    ("nope", "nope", "No such command 'nope'"),
]


@pytest.fixture()
def places(tmp_path, monkeypatch) -> dict[str, str]:
    db = tmp_path / "results.sqlite"
    shutil.copyfile(VERSION_1_DB, db)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n")
    (tmp_path / "bad_code.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return {"db": str(db), "notes": str(notes), "tmp": str(tmp_path)}


def test_a_bad_seed_count_is_refused_before_any_progress_is_drawn(places, capsys):
    with pytest.raises(SystemExit):
        main(S.format(**places).split() + ["--seeds", "-2"])
    assert capsys.readouterr().err == "error: the number of seeds must be a whole number >= 1, got -2\n"


@pytest.mark.parametrize("command, bad, message", ROWS, ids=[f"{r[0].split(' --')[0]}: {r[1]}" for r in ROWS])
def test_a_bad_value_ends_in_one_line_and_exit_2(command, bad, message, places, capsys):
    argv = command.format(**places).split()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)  # anything but SystemExit (a traceback) fails the test
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert message in err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip().startswith("error:")]
    assert len(lines) <= 1
