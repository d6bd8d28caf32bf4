"""The original exported to ONNX, then int8-quantized by onnxruntime's static quantization.

Weights are quantized to 7 bits (``reduce_range``). With 8-bit weights, CPUs without VNNI
compute the int8 products with an instruction that saturates at 16 bits, so the same model
answered differently by CPU (28 vs 5 test-split disagreements for LeNet-5). With 7-bit weights
no sum can saturate: the logits were bit-identical on AVX-512 VNNI, AVX2 and SSE4.2 kernels.

The result runs in onnxruntime and is a black box to this package: no gradients, no
fine-tuning. The float export is kept beside it so that users can check the export itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compd_core.compress.base import Compressed, Recipe
from compd_core.compress.quantization import CALIBRATION_IMAGES

_log = logging.getLogger(__name__)
OPSET = 17


def export_onnx(model: nn.Module, input_shape: tuple[int, int, int], path: Path) -> None:
    """Export with a dynamic batch dimension (TorchScript-based exporter, no extra packages)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros((1, *input_shape)),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer advises pre-processing on the root logger for every model;
    for LeNets that advice does not apply, so it is held back here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a tensor of images."""

    def __init__(self, images: torch.Tensor, batch: int = 128) -> None:
        self._batches = iter(
            {"input": images[i : i + batch].numpy().astype(np.float32)}
            for i in range(0, len(images), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # required by the protocol; one pass is all we use
        return None


class OnnxInt8(Recipe):
    kind = "onnx-int8"
    description = (
        "ONNX export quantized to int8 by onnxruntime static quantization "
        "(QDQ, per-channel, 7-bit weights)"
    )
    white_box = False

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        workdir = Path(tempfile.mkdtemp(prefix="compd-onnx-"))
        float_path, int8_path = workdir / "float.onnx", workdir / "int8.onnx"
        export_onnx(original, tuple(train_images.shape[1:]), float_path)
        with _quiet_root_logger():
            self._quantize(float_path, int8_path, train_images)
        _log.debug("quantized ONNX model written to %s", int8_path)
        return Compressed(served=int8_path, standin=None)

    @staticmethod
    def _quantize(float_path: Path, int8_path: Path, train_images: torch.Tensor) -> None:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        quantize_static(
            str(float_path),
            str(int8_path),
            _Calibration(train_images[:CALIBRATION_IMAGES]),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=True,
        )

    def save(self, compressed, directory, stem):  # noqa: D102
        int8_path = Path(compressed.served)  # type: ignore[arg-type]
        files = {"model": f"{stem}.onnx", "float_export": f"{stem}.float.onnx"}
        (directory / files["model"]).write_bytes(int8_path.read_bytes())
        (directory / files["float_export"]).write_bytes((int8_path.parent / "float.onnx").read_bytes())
        return files

    def load(self, arch, files):  # noqa: D102
        return Compressed(served=files["model"], standin=None)
