"""Keras 3 models (``.keras``, legacy ``.h5``) run on Keras' PyTorch backend, without TensorFlow.

Keras picks its backend once, at its first import, from ``KERAS_BACKEND``; this module sets it
to ``torch`` before that import, and refuses in plain words when something imported Keras with
another backend first. Files load with ``safe_mode`` on: a ``Lambda`` layer's pickled code is
refused, as the project never unpickles untrusted files by default.

A loaded Keras model is a ``torch.nn.Module`` underneath, but its layers, weights and training
loop are Keras': this package's training loop (repair, QAT) cannot fine-tune it, so a Keras
model is served as a black box (no ``differentiable``): black-box search and characterize work,
gradient search and repair refuse it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from compd_core.errors import ModelLoadError
from compd_core.models.adapters import OutputKind, as_probabilities, existing_file, first_line, probed_info
from compd_core.models.base import ModelInfo
from compd_core.models.layout import image_layout, to_layout

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def import_keras():
    """Keras on the torch backend, or a ``ModelLoadError`` saying how to get it."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as exc:
        raise ModelLoadError(
            f"Keras models need keras 3 with h5py (pip install 'keras>=3.15' h5py): {exc}"
        ) from exc
    backend = keras.backend.backend()
    if backend != "torch":
        raise ModelLoadError(
            f"Keras was imported with the {backend!r} backend; compd runs Keras models on the "
            "torch backend: set KERAS_BACKEND=torch before starting (and before importing keras)"
        )
    return keras


class KerasClassifier:
    """A Keras image classifier; batches NCHW in, probabilities out (softmax or logits)."""

    def __init__(
        self,
        path: str | Path,
        input_shape: tuple[int, int, int],
        class_names: tuple[str, ...] | None = None,
        *,
        output: OutputKind = "auto",
        name: str | None = None,
    ) -> None:
        path = existing_file(path)
        keras = import_keras()
        try:
            self._model = keras.models.load_model(str(path), compile=False, safe_mode=True)
        except Exception as exc:  # keras raises ValueError/OSError/TypeError for a bad file
            raise ModelLoadError(
                f"{path} is not a loadable Keras model (save one with model.save('m.keras')): "
                f"{first_line(exc)}"
            ) from exc
        declared = getattr(self._model, "input_shape", None)
        if not isinstance(declared, tuple) or len(declared) != 4:
            raise ModelLoadError(
                f"{path} takes inputs of shape {declared}; an image classifier takes "
                "(N, H, W, C) or (N, C, H, W) batches"
            )
        self._layout = image_layout(tuple(declared[1:]), input_shape, str(path))
        self._output = output
        self._lock = threading.Lock()  # one Keras model object, called from several threads
        probe = self._run(np.zeros((1, *input_shape), dtype=np.float32))
        self._info = probed_info(path, name, input_shape, class_names, probe, "keras")

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _run(self, batch: np.ndarray) -> torch.Tensor:
        data = torch.from_numpy(to_layout(batch, self._layout))
        with self._lock, torch.inference_mode():
            out = self._model(data, training=False)
        out = torch.as_tensor(out).detach().cpu().to(torch.float32)
        if out.ndim != 2:
            raise ModelLoadError(f"{self._model.name} returned shape {tuple(out.shape)}, not (N, classes)")
        return out

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return as_probabilities(self._run(x.detach().cpu().numpy().astype(np.float32)), self._output)
