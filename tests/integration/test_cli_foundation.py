"""The `compd` command for the foundation: zoo list, pair inspect, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compd_core.models.evaluate import evaluate_pair
from compd_core.zoo import load_pair
from cli_support import compd


def test_zoo_list_json_has_every_pair_with_numbers():
    # A process of its own, as the README starts it: `python -m compd_core`.
    result = subprocess.run([sys.executable, "-m", "compd_core", "zoo", "list", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    pairs = json.loads(result.stdout)["pairs"]
    assert len(pairs) >= 16
    for key in ("id", "original", "compression", "accuracy_original", "accuracy_compressed",
                "disagreements", "size_bytes"):
        assert all(key in p for p in pairs)


def test_zoo_list_table():
    result = compd("zoo", "list")
    assert result.returncode == 0
    assert "lenet5-int8-static" in result.stdout and "disagreements" in result.stdout


def test_pair_inspect_matches_the_library(mnist_test):
    result = compd("pair", "inspect", "--pair", "lenet5-prune90", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    evaluation = evaluate_pair(load_pair("lenet5-prune90"), mnist_test)
    assert report["disagreements"] == evaluation.disagreements
    assert report["accuracy_compressed"] == pytest.approx(evaluation.accuracy_compressed)
    assert report["disagreement_indices"] == evaluation.disagreement_indices.tolist()


@pytest.mark.parametrize("args, message", [
    (("pair", "inspect", "--pair", "no-such-pair"), "unknown pair 'no-such-pair'"),
    (("pair", "inspect", "--original", "/nonexistent.onnx", "--compressed", "/nonexistent.pt"),
     "does not exist"),
    (("pair", "inspect"), "give --pair"),
    (("zoo", "frobnicate"), "No such command"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    result = compd(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
