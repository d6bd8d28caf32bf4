"""TFLite conversions of a Keras original, as the seed papers made their pairs.

TensorFlow's converter makes them (``python -m compd_core.zoo.tflite_build``, in an
environment with the ``zoo-tflite`` extra); this package only stores, loads and measures the
``.tflite`` files, which run in ``ai-edge-litert``. They are black boxes here: searched and
characterized, never fine-tuned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from compd_core.compress.base import Compressed, Recipe
from compd_core.errors import ConfigError

CALIBRATION_IMAGES = 1024


class TFLiteConversion(Recipe):
    """One ``TFLiteConverter.from_keras_model`` conversion (``conversion`` names the file)."""

    white_box = False

    def __init__(self, kind: str, conversion: str, description: str) -> None:
        self.kind = kind
        self.conversion = conversion
        self.description = description

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        raise ConfigError(
            f"{self.kind} models are made by TensorFlow's converter from a Keras original, not "
            "from a PyTorch model: run `python -m compd_core.zoo.tflite_build --python "
            "PYTHON_WITH_TENSORFLOW` (pip install '.[zoo-tflite]' in that environment)"
        )

    def save(self, compressed, directory, stem):  # noqa: D102
        name = f"{stem}.tflite"
        shutil.copyfile(Path(compressed.served), directory / name)  # type: ignore[arg-type]
        return {"model": name}

    def load(self, arch, files):  # noqa: D102
        return Compressed(served=files["model"], standin=None)


TFLITE_RECIPES: dict[str, TFLiteConversion] = {
    recipe.kind: recipe
    for recipe in (
        TFLiteConversion(
            "tflite-int8", "int8",
            "TFLite full-integer int8 post-training quantization (TFLiteConverter, "
            f"representative dataset of {CALIBRATION_IMAGES:,} training images, uint8 input and output)",
        ),
        TFLiteConversion(
            "tflite-dynamic", "dynamic-range",
            "TFLite dynamic-range quantization (Optimize.DEFAULT alone: int8 weights, "
            "activations quantized at run time)",
        ),
        TFLiteConversion(
            "tflite-float16", "float16",
            "TFLite float16 quantization (float16 weights, computed in float32)",
        ),
    )
}
