"""The user's own model files: TorchScript, ONNX and callables, and every way they go wrong."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from compd_core.compress.onnx_int8 import export_onnx
from compd_core.errors import InvalidOutputError, ModelLoadError
from compd_core.models.architectures import build_architecture
from compd_core.models.loading import load_classifier
from compd_core.models.pair import ModelPair
from compd_core.paths import sample_models_dir
from compd_core.zoo.loading import load_original

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def lenet5():
    return load_original(sample_models_dir(), "lenet5").module


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, lenet5):
    root = tmp_path_factory.mktemp("models")
    torch.jit.script(lenet5).save(str(root / "lenet5.pt"))
    export_onnx(lenet5, SHAPE, root / "lenet5.onnx")
    return root


def test_torchscript_and_onnx_files_give_the_same_predictions(model_files, mnist_test):
    pair = ModelPair(load_classifier(model_files / "lenet5.pt", SHAPE),
                     load_classifier(model_files / "lenet5.onnx", SHAPE))
    prediction = pair.predict(mnist_test.images[:200])
    assert torch.allclose(prediction.original, prediction.compressed, atol=1e-5)
    assert float((prediction.labels_original == mnist_test.labels[:200]).float().mean()) > 0.95


def test_an_onnx_model_asks_for_the_cuda_provider_only_where_onnxruntime_has_one(
        model_files, mnist_test, monkeypatch):
    import onnxruntime as ort

    model = load_classifier(model_files / "lenet5.onnx", SHAPE)
    assert model.on("cpu") is model and model.providers == ("CPUExecutionProvider",)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert model.on("cuda") is model  # stays on the CPU, and the log says why
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    moved = model.on("cuda")
    assert moved.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert model.providers == ("CPUExecutionProvider",)  # the shared model was not changed
    x = mnist_test.images[:16]
    assert torch.allclose(moved.predict_proba(x), model.predict_proba(x), atol=1e-5)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_classifier(tmp_path / "absent.onnx", SHAPE)


@pytest.mark.parametrize("name", ["corrupt.onnx", "corrupt.pt"])
def test_corrupt_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ModelLoadError):
        load_classifier(path, SHAPE)


def test_onnx_input_shape_that_does_not_fit_the_data(model_files):
    with pytest.raises(ModelLoadError, match=r"expects inputs of shape .* \(3, 32, 32\)"):
        load_classifier(model_files / "lenet5.onnx", (3, 32, 32))


def test_plain_state_dict_is_refused_with_a_fix(tmp_path, lenet5):
    path = tmp_path / "weights.pt"
    torch.save(build_architecture("lenet5").state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"torch\.export\.save"):
        load_classifier(path, SHAPE)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"data")
    with pytest.raises(ModelLoadError, match="unknown model format"):
        load_classifier(path, SHAPE)


def test_callable_models_are_opt_in(tmp_path, monkeypatch, mnist_test):
    (tmp_path / "user_model.py").write_text(
        "import numpy as np\n"
        "def predict(x):\n"
        "    brightness = x.reshape(len(x), -1).mean(1, keepdims=True)\n"
        "    logits = np.concatenate([brightness * k for k in range(10)], axis=1)\n"
        "    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelLoadError, match="opt-in"):
        load_classifier("user_model:predict", SHAPE)
    model = load_classifier("user_model:predict", SHAPE, allow_code=True)
    probs = model.predict_proba(mnist_test.images[:5])
    assert probs.shape == (5, 10) and np.allclose(probs.sum(1).numpy(), 1.0, atol=1e-5)
    sys.modules.pop("user_model", None)


BAD_CALLABLES = [
    ("raises", "    raise KeyError('weights')", r"user_bad:raises raised KeyError: 'weights'; fix the function"),
    ("returns_none", "    return None", r"returned None; it must return an array of shape \(1, classes\)"),
    ("returns_strings", "    return [['cat', 'dog']] * len(x)", r"returned <U3 values, not numbers"),
    ("returns_1d", "    return np.ones(len(x) * 10)", r"returned shape \(10,\); it must return an array"),
    ("returns_wrong_rows", "    return np.ones((len(x) + 1, 10))", r"returned shape \(2, 10\)"),
    ("returns_ragged", "    return [[0.5, 0.5], [1.0]]", r"returned list that is no array"),
    ("returns_one_class", "    return np.ones((len(x), 1))", r"returned shape \(1, 1\)"),
]


@pytest.mark.parametrize("name, body, message", BAD_CALLABLES, ids=[c[0] for c in BAD_CALLABLES])
def test_a_callable_that_answers_badly_is_one_clear_error(tmp_path, monkeypatch, name, body, message):
    (tmp_path / "user_bad.py").write_text(f"import numpy as np\ndef {name}(x):\n{body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("user_bad", None)
    try:
        with pytest.raises(InvalidOutputError, match=message):
            load_classifier(f"user_bad:{name}", SHAPE, allow_code=True)
    finally:
        sys.modules.pop("user_bad", None)


def test_a_callable_that_fails_later_is_caught_at_prediction(tmp_path, monkeypatch, mnist_test):
    (tmp_path / "user_late.py").write_text(
        "import numpy as np\n"
        "def predict(x):\n"
        "    if len(x) > 1:\n"
        "        return np.ones(len(x))\n"
        "    return np.ones((1, 10)) / 10\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = load_classifier("user_late:predict", SHAPE, allow_code=True)
    with pytest.raises(InvalidOutputError, match=r"returned shape \(3,\)"):
        model.predict_proba(mnist_test.images[:3])
    sys.modules.pop("user_late", None)
