"""Train the Keras LeNets and convert them to TFLite as the seed papers made their pairs.

Hu et al. (CAIN 2023), DiffChaser and DFLARE test a Keras original against its
``TFLiteConverter.from_keras_model`` conversion. This script makes exactly that, three ways per
original: full-integer int8 with a representative dataset (uint8 input and output), dynamic
range (``Optimize.DEFAULT`` alone) and float16.

It needs TensorFlow (the ``zoo-tflite`` extra) and imports nothing from ``compd_core``, so it
runs in a separate environment that holds TensorFlow and no PyTorch:

    python compd_core/zoo/tflite_convert.py --mnist sample_models/mnist.npz --out DIR

``python -m compd_core.zoo.tflite_build`` runs it and then measures what it wrote with the
TensorFlow-free runtime. One CPU thread and fixed seeds make the weights reproducible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Run as a script, this folder would come first on the path and its platform.py would hide
# the standard library's module of that name from TensorFlow.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN's float sums change by CPU
os.environ["KERAS_BACKEND"] = "tensorflow"  # the converter needs TensorFlow graphs

import numpy as np  # noqa: E402

CALIBRATION_IMAGES = 1024  # the same calibration size as the PyTorch int8 recipes
CONVERSIONS = ("int8", "dynamic-range", "float16")
# Not zoo pairs, test files for the loader: full-integer int8 with signed int8 input and output
# (zero point -128), and a float16 conversion for exactly one image per call, as many models
# made for phones are.
SIGNED_IO = "int8-signed-io"
BATCH_ONE = "float16-batch1"


def _lenet(keras, name: str, batch_size: int | None = None):
    """The Keras twin of compd_core.models.architectures' LeNets (same layers and sizes)."""
    layers = keras.layers
    if name == "lenet5":
        body = [layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu")]
    elif name == "lenet1":
        body = [layers.Conv2D(4, 5, activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(12, 5, activation="relu"), layers.MaxPooling2D(2), layers.Flatten()]
    else:
        raise SystemExit(f"unknown architecture {name!r}; known: lenet5, lenet1")
    return keras.Sequential([keras.Input((28, 28, 1), batch_size=batch_size), *body, layers.Dense(10), layers.Softmax()],
                            name=name)


def _shift(images: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Translate each image by up to ``max_shift`` pixels, filling with black (as the PyTorch
    zoo's training does)."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)))
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    return np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train(keras, name: str, x: np.ndarray, y: np.ndarray, seed: int, epochs: int):
    keras.utils.set_random_seed(seed)
    model = _lenet(keras, name)
    steps = epochs * int(np.ceil(len(x) / 64))
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        model.fit(_shift(x[order], rng), y[order], batch_size=64, epochs=1, shuffle=False,
                  verbose=0)
    served = _lenet(keras, name)  # uncompiled: the saved file holds no optimizer state
    served.set_weights(model.get_weights())
    return served


def convert(tf, model, kind: str, calibration: np.ndarray) -> bytes:
    """One of the three post-training conversions, as TensorFlow documents them."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic range
    if kind in ("int8", SIGNED_IO):
        def representative():
            for i in range(len(calibration)):
                yield [calibration[i : i + 1]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.uint8 if kind == "int8" else tf.int8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    elif kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, required=True, help="the shipped mnist.npz")
    parser.add_argument("--out", type=Path, required=True, help="folder for <arch>/ files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--archs", default="lenet5,lenet1")
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    import keras

    with np.load(args.mnist) as archive:
        x = (archive["x_train"].astype(np.float32) / 255.0)[..., None]
        y = archive["y_train"].astype(np.int64)
        x_test = (archive["x_test"].astype(np.float32) / 255.0)[..., None]
        y_test = archive["y_test"].astype(np.int64)
    facts = {"tensorflow": tf.__version__, "keras": keras.__version__, "seed": args.seed,
             "epochs": args.epochs, "calibration_images": CALIBRATION_IMAGES, "models": {}}
    for name in args.archs.split(","):
        model = train(keras, name, x, y, args.seed, args.epochs)
        target = args.out / name
        target.mkdir(parents=True, exist_ok=True)
        model.save(target / "original.keras")
        accuracy = float((model.predict(x_test, verbose=0).argmax(1) == y_test).mean())
        facts["models"][name] = {"accuracy_tensorflow": accuracy,
                                 "parameters": int(model.count_params())}
        kinds = (*CONVERSIONS, SIGNED_IO) if name == "lenet1" else CONVERSIONS
        for kind in kinds:
            (target / f"{kind}.tflite").write_bytes(convert(tf, model, kind, x[:CALIBRATION_IMAGES]))
        if name == "lenet1":
            single = _lenet(keras, name, batch_size=1)
            single.set_weights(model.get_weights())
            (target / f"{BATCH_ONE}.tflite").write_bytes(convert(tf, single, "float16", x[:1]))
    (args.out / "build.json").write_text(json.dumps(facts, indent=2) + "\n")


if __name__ == "__main__":
    main()
