"""TFLite / LiteRT models run with ``ai-edge-litert`` (no TensorFlow needed).

The models phones run and the seed papers test: a Keras original converted with
``TFLiteConverter``. Quantized input and output tensors (int8, uint8) carry a (scale, zero point)
each; images are quantized with the input's and scores dequantized with the output's.

Kernels: ``builtin`` (the default) runs TFLite's own optimized kernels without the XNNPACK
delegate; ``xnnpack`` is LiteRT's default and faster, but its float and int8 arithmetic differs
from the builtin kernels (measured: up to 2e-2 in probabilities, an argmax flipped on 1 of 2,000
noise inputs), and the zoo's numbers were measured with ``builtin``; ``reference`` runs the
plain reference kernels, slowest. The interpreter is not thread-safe: calls are serialized.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from compd_core.errors import ModelLoadError
from compd_core.models.adapters import OutputKind, as_probabilities, existing_file, first_line, probed_info
from compd_core.models.base import ModelInfo
from compd_core.models.layout import image_layout, to_layout

Kernels = Literal["builtin", "xnnpack", "reference"]
KERNELS: tuple[str, ...] = ("builtin", "xnnpack", "reference")


def _resolver(kernels: str):
    from ai_edge_litert.interpreter import OpResolverType

    choices = {
        "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        "xnnpack": OpResolverType.AUTO,
        "reference": OpResolverType.BUILTIN_REF,
    }
    if kernels not in choices:
        raise ModelLoadError(f"unknown TFLite kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    return choices[kernels]


class TFLiteClassifier:
    """A ``.tflite`` image classifier; batches of any size, NCHW in, probabilities out."""

    def __init__(
        self,
        path: str | Path,
        input_shape: tuple[int, int, int],
        class_names: tuple[str, ...] | None = None,
        *,
        kernels: Kernels = "builtin",
        output: OutputKind = "auto",
        name: str | None = None,
        num_threads: int = 1,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = existing_file(path)
        resolver = _resolver(kernels)
        try:
            self._interpreter = Interpreter(
                model_path=str(path), num_threads=num_threads, experimental_op_resolver_type=resolver
            )
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for a bad flatbuffer
            raise ModelLoadError(f"{path} is not a loadable TFLite model: {first_line(exc)}") from exc
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier "
                "needs one image input and one score output"
            )
        self._input, self._output_detail = inputs[0], outputs[0]
        signature = [int(d) for d in self._input.get("shape_signature", self._input["shape"])]
        self._layout = image_layout(tuple(signature[1:]), input_shape, str(path))
        # A model converted for a fixed batch (often 1, for phones) may hard-code it inside
        # (a reshape); such a model is fed chunks of exactly that size instead of resized.
        self._fixed_batch = signature[0] if signature[0] > 0 else None
        self._kernels = kernels
        self._output = output
        self._lock = threading.Lock()
        self._allocated_batch: int | None = None
        probe = self._run(np.zeros((1, *input_shape), dtype=np.float32))
        self._info = probed_info(path, name, input_shape, class_names, probe, "tflite")

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def kernels(self) -> str:
        """Which kernels compute the answers: builtin, xnnpack or reference."""
        return self._kernels

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    def _quantize(self, batch: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if dtype.kind == "f":
            return batch.astype(dtype)
        scale, zero_point = self._input["quantization"]
        if scale == 0:
            raise ModelLoadError(f"the {dtype} input of {self._input['name']} has no quantization scale")
        limits = np.iinfo(dtype)
        return np.clip(np.rint(batch / scale + zero_point), limits.min, limits.max).astype(dtype)

    def _dequantize(self, raw: np.ndarray) -> np.ndarray:
        scale, zero_point = self._output_detail["quantization"]
        if raw.dtype.kind == "f" or scale == 0:
            return raw.astype(np.float32)
        return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        data = self._quantize(to_layout(batch, self._layout))
        if self._fixed_batch is None:
            return self._dequantize(self._invoke(data))
        step, rows = self._fixed_batch, len(data)
        padded = np.concatenate([data, np.zeros((-rows % step, *data.shape[1:]), data.dtype)])
        out = [self._invoke(padded[i : i + step]) for i in range(0, len(padded), step)]
        return self._dequantize(np.concatenate(out)[:rows])

    def _invoke(self, data: np.ndarray) -> np.ndarray:
        """Raw output rows for one batch, reallocating only when the batch size changes."""
        with self._lock:
            if len(data) != self._allocated_batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(data.shape))
                self._interpreter.allocate_tensors()
                self._allocated_batch = len(data)
            self._interpreter.set_tensor(self._input["index"], data)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output_detail["index"])
        return raw.reshape(len(data), -1)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.from_numpy(self._run(x.detach().cpu().numpy().astype(np.float32)))
        return _quantized_probabilities(scores, self._output, self._output_detail["quantization"][0])


def _quantized_probabilities(scores: torch.Tensor, output: OutputKind, scale: float) -> torch.Tensor:
    """Probabilities from dequantized scores.

    A uint8 softmax output (scale 1/256) sums to 1 only up to half a step per class, so
    'auto' accepts rows within that rounding as probabilities and renormalizes them, which
    keeps their order and their ties; anything else is treated as logits.
    """
    if output == "logits" or scores.ndim != 2:
        return as_probabilities(scores, output)
    tolerance = 1e-3 + scores.shape[1] * float(scale) / 2
    sums = scores.sum(1, keepdim=True)
    if output == "probabilities" or bool(
        (scores >= 0).all() and ((sums - 1).abs() <= tolerance).all()
    ):
        return scores / sums.clamp_min(1e-12)
    return torch.softmax(scores, dim=1)
