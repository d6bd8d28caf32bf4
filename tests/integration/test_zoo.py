"""The shipped zoo: real models, real accuracies, faithful reloading."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
import pytest
import torch
from torch.ao.nn.quantized import Conv2d as QuantizedConv2d
from torch.ao.nn.quantized import Linear as QuantizedLinear

from compd_core.compress import TFLITE_RECIPES
from compd_core.compress.pruning import sparsity
from compd_core.models.evaluate import evaluate_pair
from compd_core.paths import sample_models_dir
from compd_core.zoo import list_pairs, load_pair
from compd_core.zoo.loading import load_original, pair_datasets, read_manifest
from compd_core.zoo.platform import build_platform

# The TFLite pairs are checked in test_zoo_tflite.py, the Fashion-MNIST ones in test_zoo_fashion.py.
PAIRS = [p for p in list_pairs()
         if p.compression not in TFLITE_RECIPES and pair_datasets()[p.id] == "mnist"]
KINDS = {"int8-static", "int8-dynamic", "int8-qat", "prune50", "prune90", "distilled", "bf16", "onnx-int8"}


def test_zoo_has_every_variant_of_both_originals():
    ids = {p.id for p in PAIRS}
    assert len(ids) >= 16
    assert {f"{o}-{k}" for o in ("lenet5", "lenet1") for k in KINDS} <= ids


def test_zoo_is_small():
    total = sum(f.stat().st_size for f in sample_models_dir().rglob("*") if f.is_file())
    assert total < 20 * 1024 * 1024


def test_originals_reach_their_accuracy_targets(mnist_test):
    manifest = read_manifest(sample_models_dir())
    targets = {"lenet5": 0.975, "lenet1": 0.96}
    for name, target in targets.items():
        model = load_original(sample_models_dir(), name)
        accuracy = float((model.predict_proba(mnist_test.images).argmax(1) == mnist_test.labels).float().mean())
        assert accuracy >= target
        assert accuracy == pytest.approx(manifest.originals[name].accuracy, abs=1e-6)


# LeNet-1 has 3,246 weights; at 90% sparsity 325 remain and no fine-tuning schedule we tried
# (up to 10 gradual rounds) brought it within 2 points (best: -4.7). It ships as the zoo's
# high-disagreement pair, with its loss documented in sample_models/README.md.
CAPACITY_LIMITED = {"lenet1-prune90": 0.12}


# Exact on every x86-64 CPU: the ONNX int8 pairs (7-bit weights) gave bit-identical logits on
# AVX-512 VNNI, AVX2 and SSE4.2 kernels, and the PyTorch pairs (fbgemm, 7-bit activations)
# reproduced their numbers on an AVX2 CPU without VNNI. The failure message names both platforms.
@pytest.mark.parametrize("entry", PAIRS, ids=[p.id for p in PAIRS])
def test_each_pair_reloads_with_its_recorded_numbers(entry, mnist_test):
    evaluation = evaluate_pair(load_pair(entry.id), mnist_test)
    allowed_loss = CAPACITY_LIMITED.get(entry.id, 0.02)
    recorded = read_manifest(sample_models_dir()).platform
    where = f"recorded on {recorded}, measured on {build_platform()}"
    assert evaluation.accuracy_compressed >= evaluation.accuracy_original - allowed_loss
    assert evaluation.accuracy_compressed == pytest.approx(entry.accuracy_compressed, abs=1e-6), where
    assert evaluation.disagreements == entry.disagreements, where


def test_manifest_records_where_its_numbers_were_measured():
    recorded = read_manifest(sample_models_dir()).platform
    assert recorded["onnxruntime"] and recorded["torch"].startswith("2.")
    assert "avx2" in recorded["cpu_features"]


@pytest.mark.parametrize("arch", ["lenet5", "lenet1"])
def test_onnx_int8_weights_fit_in_7_bits(arch):
    """8-bit weights saturate 16-bit sums on CPUs without VNNI and change the answers there:
    2 x 255 x 64 still fits in int16, 2 x 255 x 127 does not."""
    model = onnx.load(str(sample_models_dir() / arch / "onnx-int8.onnx"))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    weights = [w for w in weights if w.ndim >= 2]  # conv and dense weights, not zero points
    assert len(weights) >= 3
    assert all(int(abs(w.astype(np.int16)).max()) <= 64 for w in weights)


def test_quantized_models_are_really_int8():
    compressed = load_pair("lenet5-int8-static").compressed
    kinds = {type(m) for m in compressed.module.modules()}
    assert any(issubclass(k, QuantizedConv2d) for k in kinds)
    assert any(issubclass(k, QuantizedLinear) for k in kinds)


@pytest.mark.parametrize("pair_id", ["lenet5-int8-static", "lenet5-int8-qat", "lenet1-int8-static"])
def test_fake_quant_standin_tracks_the_int8_model(pair_id, mnist_test):
    pair = load_pair(pair_id)
    standin = pair.white_box().compressed
    with torch.no_grad():
        twin_labels = standin(mnist_test.images).argmax(1)
    int8_labels = pair.compressed.predict_proba(mnist_test.images).argmax(1)
    assert float((twin_labels == int8_labels).float().mean()) >= 0.995


@pytest.mark.parametrize("pair_id, target", [("lenet5-prune50", 0.5), ("lenet5-prune90", 0.9),
                                             ("lenet1-prune90", 0.9)])
def test_pruned_models_keep_their_sparsity(pair_id, target):
    module = load_pair(pair_id).compressed.module
    assert sparsity(module) == pytest.approx(target, abs=0.01)


def test_bf16_model_computes_in_bf16():
    module = load_pair("lenet5-bf16").compressed.module
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}


def test_float_onnx_export_matches_torch(mnist_test):
    entry = next(p for p in PAIRS if p.id == "lenet5-onnx-int8")
    session = ort.InferenceSession(str(sample_models_dir() / entry.files["float_export"]),
                                   providers=["CPUExecutionProvider"])
    x = mnist_test.images[:256]
    onnx_logits = session.run(None, {"input": x.numpy()})[0]
    torch_model = load_original(sample_models_dir(), "lenet5").module
    with torch.no_grad():
        torch_logits = torch_model(x).numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-5
