"""The zoo's TFLite pairs, made as the seed papers made theirs: a Keras original converted by
TFLiteConverter three ways. Loaded and measured without TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from replay_support import assert_strict_replay

from compd_core.compress import TFLITE_RECIPES
from compd_core.errors import WhiteBoxRequiredError
from compd_core.models.evaluate import evaluate_pair
from compd_core.models.keras_model import KerasClassifier
from compd_core.models.tflite import TFLiteClassifier
from compd_core.paths import sample_models_dir
from compd_core.repair.run import fine_tunable_source
from compd_core.search.criterion import Criterion
from compd_core.search.seeds import select_seeds
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import SearchContext, get_strategy
from compd_core.zoo import list_pairs, load_pair
from compd_core.zoo.loading import read_manifest
from compd_core.zoo.platform import build_platform
from compd_core.zoo.tflite_build import runtime_platform

PAIRS = [p for p in list_pairs() if p.compression in TFLITE_RECIPES]

# Tolerance: 2 test images (0.1 points of accuracy, 2 disagreements). The numbers were measured
# with TFLite's builtin kernels, which choose SIMD code paths by CPU: the dynamic-range and
# float16 models compute in float32, where another summation order moves probabilities by about
# 1e-7 and can flip a near-tie; the int8 kernels' requantization is integer arithmetic but is
# not documented to be identical across x86 code paths (onnxruntime's int8 was not: 28 vs 5
# disagreements). XNNPACK, LiteRT's default, is not used for these numbers: it moved the int8
# models' probabilities by up to 0.045 and changed 1 of 2,000 answers on noise (bench/TFLITE.md).
TOLERANCE_IMAGES = 2


def test_zoo_lists_three_tflite_conversions_of_both_keras_lenets():
    ids = {p.id for p in PAIRS}
    assert ids == {f"{a}-tflite-{k}" for a in ("lenet5", "lenet1") for k in ("int8", "dynamic", "float16")}
    manifest = read_manifest(sample_models_dir())
    for pair in PAIRS:
        original = manifest.originals[pair.original]
        assert original.format == "keras" and original.file.endswith(".keras")
        assert pair.files["model"].endswith(".tflite") and not pair.white_box
        assert pair.extra["kernels"] == "builtin"


@pytest.mark.parametrize("entry", PAIRS, ids=[p.id for p in PAIRS])
def test_each_tflite_pair_reloads_with_its_recorded_numbers(entry, mnist_test):
    pair = load_pair(entry.id)
    assert isinstance(pair.original, KerasClassifier) and isinstance(pair.compressed, TFLiteClassifier)
    evaluation = evaluate_pair(pair, mnist_test)
    where = f"recorded on {read_manifest(sample_models_dir()).platform}, measured on " \
            f"{ {**build_platform(), **runtime_platform()} }"
    step = TOLERANCE_IMAGES / len(mnist_test)
    assert evaluation.accuracy_original == pytest.approx(entry.accuracy_original, abs=step), where
    assert evaluation.accuracy_compressed == pytest.approx(entry.accuracy_compressed, abs=step), where
    assert abs(evaluation.disagreements - entry.disagreements) <= TOLERANCE_IMAGES, where
    assert evaluation.accuracy_compressed >= evaluation.accuracy_original - 0.02


def test_keras_originals_reach_the_pytorch_originals_accuracy(mnist_test):
    manifest = read_manifest(sample_models_dir())
    assert manifest.originals["lenet5-keras"].accuracy >= 0.975
    assert manifest.originals["lenet1-keras"].accuracy >= 0.96
    assert manifest.originals["lenet5-keras"].parameters == 61_706
    assert manifest.originals["lenet1-keras"].parameters == 3_246


def test_conversions_are_what_their_names_say():
    """int8: uint8 in and out, integer kernels; dynamic range: float in and out, int8 weights
    (smallest file); float16: float16 weights (about half the float file)."""
    root = sample_models_dir() / "tflite" / "lenet5"
    from ai_edge_litert.interpreter import Interpreter

    def tensor_types(name: str) -> set[str]:
        interpreter = Interpreter(model_path=str(root / name))
        return {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}

    int8 = TFLiteClassifier(root / "int8.tflite", (1, 28, 28))
    assert int8.input_dtype == np.uint8
    assert "int8" in tensor_types("int8.tflite") and "float32" not in tensor_types("int8.tflite")
    assert "int8" in tensor_types("dynamic-range.tflite")
    assert "float16" in tensor_types("float16.tflite")
    sizes = {n: (root / f"{n}.tflite").stat().st_size for n in ("int8", "dynamic-range", "float16")}
    assert sizes["int8"] < 0.6 * sizes["float16"] and sizes["dynamic-range"] < 0.6 * sizes["float16"]


def test_a_tflite_pair_cannot_be_repaired_and_says_so():
    with pytest.raises(WhiteBoxRequiredError, match="lenet5-tflite-int8 cannot be repaired: .* black box"):
        fine_tunable_source("lenet5-tflite-int8")


def test_search_finds_strict_deviations_on_a_tflite_pair(mnist_test):
    """The engine on a quantized TFLite model with uint8 softmax outputs, where ties abound:
    every reported trigger replays strictly (measured: 3 of 5 seeds within 500 queries, as with
    `compd search --pair lenet5-tflite-int8 --budget 500 --seeds 5`)."""
    pair = load_pair("lenet5-tflite-int8")
    seeds = select_seeds(pair, mnist_test, 5, seed=0, order="random")
    context = SearchContext(pair, SearchSettings(max_queries=500), rng_seed=0)
    results = list(get_strategy("compd").run(context, seeds))
    found = [r for r in results if r.found]
    assert len(found) >= 2, f"found {len(found)}/5"
    assert_strict_replay(pair, Criterion(), found)
    assert all(r.trigger.linf <= Criterion().max_linf + 1e-6 for r in found)


def test_rebuilding_the_pytorch_zoo_keeps_the_tflite_pairs(tmp_path):
    """`compd zoo build` cannot make TFLite pairs (TensorFlow does); it keeps them, and every
    pair of an original it did not rebuild, in their order."""
    from compd_core.zoo.build import _merged

    (tmp_path / "manifest.json").write_text((sample_models_dir() / "manifest.json").read_text())
    shipped = read_manifest(sample_models_dir())
    rebuilt = [p for p in shipped.pairs if p.original == "lenet1"][:1]
    merged = _merged(tmp_path, {"lenet1": shipped.originals["lenet1"]}, {"lenet1": rebuilt}, 0)
    assert [p.id for p in merged.pairs if p.compression in TFLITE_RECIPES] == [p.id for p in PAIRS]
    assert {"lenet5-keras", "lenet1-keras"} <= set(merged.originals)
    assert [p.id for p in merged.pairs if p.original == "lenet1"] == [rebuilt[0].id]
    others = [p.id for p in shipped.pairs if p.original != "lenet1"]
    assert [p.id for p in merged.pairs if p.original != "lenet1"] == others
    assert _merged(tmp_path / "empty", {}, {}, 0).pairs == []


def test_a_shared_tflite_model_answers_threads_like_one_caller(mnist_test):
    """The zoo's classifiers are cached and shared by the dashboard's workers: concurrent
    calls with different batch sizes give each caller its own answers."""
    from concurrent.futures import ThreadPoolExecutor

    model = load_pair("lenet5-tflite-dynamic").compressed
    chunks = [mnist_test.images[i:i + n] for i, n in zip(range(0, 400, 50), (50, 7, 50, 13) * 2)]
    expected = [model.predict_proba(c) for c in chunks]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(model.predict_proba, chunks))
            assert all(torch.equal(a, b) for a, b in zip(got, expected))
