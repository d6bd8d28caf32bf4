"""`compd zoo build` is deterministic: the same seed gives bit-identical models and numbers."""

from __future__ import annotations

import pytest
import torch

from compd_core.zoo.build import build_zoo
from compd_core.zoo.manifest import read_manifest


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _without_timings(manifest) -> dict:
    """The manifest minus its latency measurements, which are timings and vary by nature."""
    data = manifest.to_dict()
    for pair in data["pairs"]:
        del pair["latency_ms_original"], pair["latency_ms_compressed"]
    return data


@pytest.mark.slow
def test_two_builds_with_the_same_seed_are_identical(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        build_zoo(directory, originals=("lenet1",), kinds=("int8-static", "prune50"), seed=0)
    manifest_a, manifest_b = read_manifest(first), read_manifest(second)
    assert _without_timings(manifest_a) == _without_timings(manifest_b)
    assert manifest_a.originals["lenet1"].accuracy >= 0.96
    files = sorted(p.relative_to(first) for p in first.rglob("*.pt"))
    assert len(files) == 4  # original, int8 model and its twin, pruned model
    for name in files:
        a, b = _state(first / name), _state(second / name)
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                other = b[key]
                if value.is_quantized:
                    value, other = value.dequantize(), other.dequantize()
                assert torch.equal(value, other), f"{name}:{key}"
