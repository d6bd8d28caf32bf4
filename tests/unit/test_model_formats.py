"""TFLite, Keras and torch.export models through the one loader, on real files: the zoo's
Keras LeNets and their TFLite conversions, and the zoo's PyTorch LeNet-5 exported here."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from compd_core.data.mnist import MNIST_CLASSES
from compd_core.errors import ModelLoadError, WhiteBoxRequiredError
from compd_core.models.keras_model import KerasClassifier, import_keras
from compd_core.models.layout import image_layout
from compd_core.models.loading import load_classifier
from compd_core.models.pair import ModelPair
from compd_core.models.tflite import TFLiteClassifier
from compd_core.models.torch_export import ExportedProgramClassifier
from compd_core.paths import sample_models_dir
from compd_core.zoo.loading import load_original

SHAPE = (1, 28, 28)
TFLITE = sample_models_dir() / "tflite" / "lenet5"


@pytest.fixture(scope="module")
def lenet5():
    return load_original(sample_models_dir(), "lenet5").module


@pytest.fixture(scope="module")
def keras_lenet5():
    return load_classifier(TFLITE / "original.keras", SHAPE, MNIST_CLASSES)


def _by_hand(path, images: torch.Tensor) -> np.ndarray:
    """The raw interpreter, one image at a time: NHWC, quantized with the input's (scale, zero
    point), output dequantized with the output's; an independent check of the adapter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=
                              OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in images.numpy():
        x = image.transpose(1, 2, 0)[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            x = np.round(x / scale + zero).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        rows.append(y)
    return np.stack(rows)


@pytest.mark.parametrize("conversion", ["int8", "dynamic-range", "float16"])
def test_tflite_adapter_matches_the_raw_interpreter(conversion, mnist_test):
    path = TFLITE / f"{conversion}.tflite"
    model = load_classifier(path, SHAPE, MNIST_CLASSES)
    assert isinstance(model, TFLiteClassifier) and model.info.kind == "tflite"
    images = mnist_test.images[:40]
    raw = _by_hand(path, images)
    probs = model.predict_proba(images).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # Renormalizing the dequantized softmax keeps every row's order and ties.
    np.testing.assert_allclose(probs, raw / raw.sum(1, keepdims=True), atol=1e-6)
    assert (probs.argmax(1) == mnist_test.labels[:40].numpy()).mean() >= 0.9


def test_signed_int8_input_and_output_use_their_zero_points(mnist_test):
    """LeNet-1 converted with int8 (not uint8) input and output: zero point -128 on both ends."""
    signed_path = sample_models_dir() / "tflite" / "lenet1" / "int8-signed-io.tflite"
    signed = TFLiteClassifier(signed_path, SHAPE, MNIST_CLASSES)
    unsigned = TFLiteClassifier(sample_models_dir() / "tflite" / "lenet1" / "int8.tflite", SHAPE)
    assert signed.input_dtype == np.int8
    assert signed._input["quantization"][1] == -128 and signed._output_detail["quantization"][1] == -128
    images = mnist_test.images[:200]
    probs = signed.predict_proba(images)
    raw = _by_hand(signed_path, images[:20])
    np.testing.assert_allclose(probs[:20].numpy(), raw / raw.sum(1, keepdims=True), atol=1e-6)
    # The same quantized network inside: the uint8 model's answers, to a quantization step.
    assert torch.allclose(probs, unsigned.predict_proba(images), atol=1 / 128)
    assert torch.equal(probs.argmax(1), unsigned.predict_proba(images).argmax(1))


def test_int8_model_takes_uint8_images_on_the_8_bit_grid():
    model = load_classifier(TFLITE / "int8.tflite", SHAPE, MNIST_CLASSES)
    assert model.input_dtype == np.uint8
    grid = torch.arange(256, dtype=torch.float32) / 255
    quantized = model._quantize(grid.numpy())
    assert quantized.dtype == np.uint8
    assert np.array_equal(quantized, np.arange(256))  # scale 1/255, zero point 0: lossless


def test_tflite_reallocates_only_when_the_batch_size_changes(monkeypatch, mnist_test):
    model = TFLiteClassifier(TFLITE / "int8.tflite", SHAPE, MNIST_CLASSES)
    calls: list[list[int]] = []
    resize = model._interpreter.resize_tensor_input
    monkeypatch.setattr(model._interpreter, "resize_tensor_input",
                        lambda index, shape, **kw: calls.append(list(shape)) or resize(index, shape, **kw))
    images = mnist_test.images
    batches = [model.predict_proba(images[s:s + n]) for s, n in ((0, 8), (8, 8), (16, 3), (19, 8), (27, 8))]
    assert [c[0] for c in calls] == [8, 3, 8]
    assert all(c[1:] == [28, 28, 1] for c in calls)  # handed over channels-last
    # Answers do not depend on the batch an image is in.
    single = torch.cat([model.predict_proba(images[i:i + 1]) for i in range(35)])
    assert torch.equal(torch.cat(batches), single)


def test_a_tflite_model_made_for_one_image_runs_batches_in_steps_of_one(monkeypatch, mnist_test):
    """A model converted for batch 1 (as many phone models are) is fed one image at a time,
    never resized, and answers as its batch-free twin does."""
    lenet1 = sample_models_dir() / "tflite" / "lenet1"
    single = TFLiteClassifier(lenet1 / "float16-batch1.tflite", SHAPE, MNIST_CLASSES)
    assert list(single._input["shape_signature"]) == [1, 28, 28, 1]
    sizes: list[int] = []
    resize = single._interpreter.resize_tensor_input
    monkeypatch.setattr(single._interpreter, "resize_tensor_input",
                        lambda index, shape, **kw: sizes.append(shape[0]) or resize(index, shape, **kw))
    images = mnist_test.images[:10]
    twin = TFLiteClassifier(lenet1 / "float16.tflite", SHAPE, MNIST_CLASSES)
    assert torch.allclose(single.predict_proba(images), twin.predict_proba(images), atol=1e-6)
    assert set(sizes) <= {1}


def test_tflite_kernels_are_chosen_and_recorded(mnist_test):
    builtin = TFLiteClassifier(TFLITE / "float16.tflite", SHAPE, kernels="builtin")
    xnnpack = TFLiteClassifier(TFLITE / "float16.tflite", SHAPE, kernels="xnnpack")
    assert (builtin.kernels, xnnpack.kernels) == ("builtin", "xnnpack")
    a, b = builtin.predict_proba(mnist_test.images[:200]), xnnpack.predict_proba(mnist_test.images[:200])
    assert torch.allclose(a, b, atol=1e-3)
    with pytest.raises(ModelLoadError, match="unknown TFLite kernels 'fast'; choose one of builtin"):
        TFLiteClassifier(TFLITE / "float16.tflite", SHAPE, kernels="fast")


def test_tflite_and_keras_refuse_images_of_another_size():
    with pytest.raises(ModelLoadError, match=r"takes one image of shape \(28, 28, 1\) .* \(3, 32, 32\)"):
        load_classifier(TFLITE / "int8.tflite", (3, 32, 32))
    with pytest.raises(ModelLoadError, match=r"takes one image of shape \(\?, 28, 28, 1\)|\(28, 28, 1\)"):
        load_classifier(TFLITE / "original.keras", (3, 32, 32))


def test_image_layout_reads_both_channel_orders():
    assert image_layout((1, 28, 28), (1, 28, 28), "m") == "nchw"
    assert image_layout((28, 28, 1), (1, 28, 28), "m") == "nhwc"
    assert image_layout((None, None, 3), (3, 64, 48), "m") == "nhwc"
    assert image_layout((-1, 64, 48), (3, 64, 48), "m") == "nchw"
    with pytest.raises(ModelLoadError, match="m takes one image of shape"):
        image_layout((28, 28), (1, 28, 28), "m")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_load_on_the_torch_backend(tmp_path, suffix, keras_lenet5, mnist_test):
    keras = import_keras()

    assert keras.backend.backend() == "torch"
    path = tmp_path / f"lenet5{suffix}"
    keras.models.load_model(TFLITE / "original.keras", compile=False).save(path)
    model = load_classifier(path, SHAPE, MNIST_CLASSES)
    assert isinstance(model, KerasClassifier) and model.info.kind == "keras"
    probs = model.predict_proba(mnist_test.images[:300])
    assert torch.allclose(probs, keras_lenet5.predict_proba(mnist_test.images[:300]), atol=1e-6)
    assert float((probs.argmax(1) == mnist_test.labels[:300]).float().mean()) > 0.95


def test_keras_model_is_a_black_box(keras_lenet5):
    tflite = load_classifier(TFLITE / "int8.tflite", SHAPE, MNIST_CLASSES)
    with pytest.raises(WhiteBoxRequiredError, match="black box"):
        ModelPair(keras_lenet5, tflite).white_box()


def test_keras_runs_without_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from compd_core.models.loading import load_classifier\n"
        f"m = load_classifier({str(TFLITE / 'original.keras')!r}, (1, 28, 28))\n"
        f"q = load_classifier({str(TFLITE / 'int8.tflite')!r}, (1, 28, 28))\n"
        "import torch\n"
        "print(m.predict_proba(torch.zeros(2, 1, 28, 28)).shape, q.predict_proba(torch.zeros(2, 1, 28, 28)).shape)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[-2] == "False"


def test_keras_imported_with_another_backend_is_refused_with_the_fix(monkeypatch):
    keras = import_keras()

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(ModelLoadError, match="imported with the 'tensorflow' backend; .* set KERAS_BACKEND=torch"):
        load_classifier(TFLITE / "original.keras", SHAPE)


def test_keras_lambda_layer_code_is_not_run(tmp_path):
    """A Lambda layer stores Python bytecode; safe mode refuses to load it."""
    keras = import_keras()

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Dense(10)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError, match="lambda.keras is not a loadable Keras model.*(unsafe|safe_mode)"):
        load_classifier(tmp_path / "lambda.keras", SHAPE)


def test_keras_file_that_is_not_keras(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"\x00not a model" * 20)
    with pytest.raises(ModelLoadError, match="not a loadable Keras model"):
        load_classifier(path, SHAPE)


def test_corrupt_tflite_file(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"\x00not a flatbuffer" * 20)
    with pytest.raises(ModelLoadError, match="not a loadable TFLite model"):
        load_classifier(path, SHAPE)


def _export(module, path, batch: int | None) -> None:
    example = torch.zeros((2 if batch is None else batch, *SHAPE))
    dims = ({0: torch.export.Dim("batch", min=1)},) if batch is None else None
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes=dims), str(path))


@pytest.mark.parametrize("batch, name", [(None, "lenet5.pt2"), (4, "fixed.pt2"), (None, "saved-as.pt")])
def test_exported_programs_match_the_module(tmp_path, lenet5, mnist_test, batch, name):
    _export(lenet5, tmp_path / name, batch)
    model = load_classifier(tmp_path / name, SHAPE, MNIST_CLASSES)
    assert isinstance(model, ExportedProgramClassifier) and model.info.kind == "torch-export"
    images = mnist_test.images[:10]  # 10 = 4 + 4 + 2: a fixed-batch program pads the last chunk
    with torch.no_grad():
        expected = torch.softmax(lenet5(images), 1)
    assert torch.allclose(model.predict_proba(images), expected, atol=1e-5)


def test_exported_program_with_pickled_payloads_is_refused(tmp_path, lenet5):
    """torch.export.load would unpickle a payload marked use_pickle; compd refuses the file."""
    import json
    import zipfile

    _export(lenet5, tmp_path / "lenet5.pt2", None)
    with zipfile.ZipFile(tmp_path / "lenet5.pt2") as source, \
            zipfile.ZipFile(tmp_path / "pickled.pt2", "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            target.writestr(item, data)
    with pytest.raises(ModelLoadError, match=r"holds pickled Python objects \(conv1\.weight\)"):
        load_classifier(tmp_path / "pickled.pt2", SHAPE)


def test_exported_program_is_differentiable(tmp_path, lenet5, mnist_test):
    _export(lenet5, tmp_path / "lenet5.pt2", None)
    model = load_classifier(tmp_path / "lenet5.pt2", SHAPE)
    x = mnist_test.images[:3].clone().requires_grad_(True)
    model.differentiable()(x)[:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_exported_program_for_other_images(tmp_path, lenet5):
    _export(lenet5, tmp_path / "lenet5.pt2", None)
    with pytest.raises(ModelLoadError, match=r"exported for images of shape \(1, 28, 28\)"):
        load_classifier(tmp_path / "lenet5.pt2", (3, 28, 28))


def test_torchscript_loads_without_a_warning_per_load(tmp_path, lenet5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(lenet5).save(str(tmp_path / "lenet5.pt"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            load_classifier(tmp_path / "lenet5.pt", SHAPE)
    assert not [w for w in caught if "deprecated" in str(w.message)]
