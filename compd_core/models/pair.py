"""``ModelPair``: the one path to both models of a pair.

Every strategy, analysis and page reaches the models only through a pair, so input checks,
batching, output checks and query counting live in exactly one place. One query is one image
evaluated by both models.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import nn

from compd_core.errors import (
    IncompatibleModelsError,
    InvalidInputError,
    InvalidOutputError,
    ModelLoadError,
    WhiteBoxRequiredError,
)
from compd_core.models.base import Classifier, ModelInfo

DEFAULT_MAX_BATCH = 256  # images per forward pass for inputs up to 1x128x128 (all of the zoo)
BATCH_FLOATS = 2**22  # 16 MB of float32 input per forward pass: 27 images of 3x224x224
_SUM_TOLERANCE = 1e-3
_PYTHON_CHECK_LIMIT = 1024  # outputs up to this many values are checked in plain Python


@dataclass(frozen=True)
class PairPrediction:
    """Both models' probabilities for one batch, (N, K) each, float32."""

    original: torch.Tensor
    compressed: torch.Tensor

    @property
    def labels_original(self) -> torch.Tensor:
        return self.original.argmax(1)

    @property
    def labels_compressed(self) -> torch.Tensor:
        return self.compressed.argmax(1)

    @property
    def disagree(self) -> torch.Tensor:
        """Boolean (N,): top-1 labels differ."""
        return self.labels_original != self.labels_compressed


@dataclass(frozen=True)
class WhiteBoxPair:
    """Differentiable modules producing logits for inputs in [0, 1]."""

    original: nn.Module
    compressed: nn.Module
    exact: bool = False  # both modules compute what is served, not an approximating stand-in


class ModelPair:
    """An original model and its compressed version, checked to be comparable.

    Cheap to build: dashboards cache the (read-only) classifiers and build one pair per job,
    so each job counts its own queries.
    """

    def __init__(
        self,
        original: Classifier,
        compressed: Classifier,
        *,
        name: str = "pair",
        max_batch: int | None = None,
    ) -> None:
        if max_batch is None:
            max_batch = default_max_batch(original.info.input_shape)
        if max_batch < 1:
            raise InvalidInputError(f"max_batch must be at least 1, got {max_batch}")
        _check_compatible(original.info, compressed.info)
        self.original = original
        self.compressed = compressed
        self.name = name
        self.max_batch = max_batch
        self._queries = 0
        self._lock = threading.Lock()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.original.info.input_shape

    @property
    def num_classes(self) -> int:
        return self.original.info.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.original.info.class_names

    @property
    def queries(self) -> int:
        """Images evaluated by both models since construction (or the last reset)."""
        with self._lock:
            return self._queries

    def reset_queries(self) -> None:
        with self._lock:
            self._queries = 0

    def validate_input(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` as a float32 (N, C, H, W) batch in [0, 1], or raise ``InvalidInputError``."""
        if not isinstance(x, torch.Tensor):
            raise InvalidInputError(f"expected a torch.Tensor batch, got {type(x).__name__}")
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise InvalidInputError(
                f"expected a batch of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise InvalidInputError(
                f"expected float pixels in [0, 1], got dtype {x.dtype}; divide uint8 images by 255"
            )
        x = x.to(torch.float32)
        if len(x):
            # One reduction; NaN fails both comparisons and infinities fail one, so this also
            # rejects non-finite values (at batch 1 every extra check costs a tenth of a forward).
            low, high = torch.aminmax(x)
            if not (float(low) >= 0.0 and float(high) <= 1.0):
                raise InvalidInputError("pixel values must be finite and lie in [0, 1]")
        return x

    def predict(self, x: torch.Tensor, *, rows_per_pass: int | None = None) -> PairPrediction:
        """Both models' probabilities for a batch; counts ``len(x)`` queries.

        ``rows_per_pass`` runs the models on passes of exactly that many rows (at most
        ``max_batch``; the last pass padded with copies of its first row, which are not
        queries). Float kernels choose their summation order by batch size, so a row's
        probabilities can move by about 1e-7 with the batch it is in; in passes of one fixed
        size (48 rows: measured with AVX2, AVX-512 and SSE4 kernels, 1 and 2 threads; 32 was
        not enough on AVX2) they depend on the row alone, so a search gives the same result
        whatever ran beside it, on machines with the same kernels.
        """
        if rows_per_pass is not None and rows_per_pass < 1:
            raise InvalidInputError(f"rows_per_pass must be at least 1, got {rows_per_pass}")
        x = self.validate_input(x)
        count = len(x)
        size = self.max_batch
        if rows_per_pass is not None and count:
            size = min(rows_per_pass, self.max_batch)
            if count % size:
                x = torch.cat([x, x[:1].expand(size - count % size, *x.shape[1:])])
        elif 0 < count <= self.max_batch:  # the common case, without chunking and concatenation
            prediction = PairPrediction(_checked(self.original, x), _checked(self.compressed, x))
            with self._lock:
                self._queries += count
            return prediction
        outs_o, outs_c = [], []
        for start in range(0, len(x), size):
            chunk = x[start : start + size]
            outs_o.append(_checked(self.original, chunk))
            outs_c.append(_checked(self.compressed, chunk))
        with self._lock:
            self._queries += count
        if not outs_o:
            empty = torch.empty((0, self.num_classes))
            return PairPrediction(empty, empty.clone())
        return PairPrediction(torch.cat(outs_o)[:count], torch.cat(outs_c)[:count])

    def on(self, device: str, max_batch: int | None = None) -> ModelPair:
        """A pair (own query counter) whose torch models run on ``device`` ('cpu' or 'cuda',
        see ``compd_core.models.device.resolve_device``); other models stay where they run."""
        models = [m.on(device) if hasattr(m, "on") else m for m in (self.original, self.compressed)]
        return ModelPair(*models, name=self.name, max_batch=max_batch or self.max_batch)

    def white_box(self) -> WhiteBoxPair:
        """Differentiable modules for both models, or ``WhiteBoxRequiredError`` for black boxes."""
        missing = [
            m.info.name for m in (self.original, self.compressed) if not hasattr(m, "differentiable")
        ]
        if missing:
            raise WhiteBoxRequiredError(
                f"{', '.join(missing)} is a black box ({self.compressed.info.kind}); gradient "
                "methods need PyTorch models with a differentiable stand-in; use a black-box "
                "strategy such as 'compd' or 'dflare' instead"
            )
        return WhiteBoxPair(
            original=self.original.differentiable(),  # type: ignore[attr-defined]
            compressed=self.compressed.differentiable(),  # type: ignore[attr-defined]
            exact=all(getattr(m, "exact_gradients", False) for m in (self.original, self.compressed)),
        )

    def original_module(self) -> nn.Module | None:
        """The original's differentiable module, or None when it is a black box too: a
        black-box compressed model can still be probed along its original's boundary."""
        differentiable = getattr(self.original, "differentiable", None)
        if differentiable is None:
            return None
        try:
            return differentiable()
        except ModelLoadError:
            return None


def default_max_batch(input_shape: tuple[int, ...]) -> int:
    """Images per forward pass: ``DEFAULT_MAX_BATCH``, fewer where that many inputs would pass
    ``BATCH_FLOATS`` values, so a 224x224 colour model's batches stay within 16 MB of input
    (and the search engine runs no more chains at once than this)."""
    values = math.prod(int(v) for v in input_shape)
    return max(1, min(DEFAULT_MAX_BATCH, BATCH_FLOATS // max(1, values)))


def _check_compatible(a: ModelInfo, b: ModelInfo) -> None:
    if a.num_classes != b.num_classes:
        raise IncompatibleModelsError(
            f"{a.name} predicts {a.num_classes} classes but {b.name} predicts {b.num_classes}; "
            "a pair needs the same classes"
        )
    if a.input_shape != b.input_shape:
        raise IncompatibleModelsError(
            f"{a.name} takes inputs {a.input_shape} but {b.name} takes {b.input_shape}"
        )
    for info in (a, b):
        if len(info.class_names) != info.num_classes:
            raise IncompatibleModelsError(
                f"{info.name} has {info.num_classes} classes but {len(info.class_names)} class names"
            )


def _checked(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Run one model and verify it returned a probability batch."""
    out = model.predict_proba(x)
    name = model.info.name
    if not isinstance(out, torch.Tensor):
        raise InvalidOutputError(f"{name} returned {type(out).__name__}, not a tensor")
    if out.shape != (len(x), model.info.num_classes):
        raise InvalidOutputError(
            f"{name} returned shape {tuple(out.shape)} for {len(x)} images; "
            f"expected ({len(x)}, {model.info.num_classes})"
        )
    out = out.to(torch.float32)
    sum_error, lowest = _distribution_errors(out)
    if not (math.isfinite(sum_error) and math.isfinite(lowest)):
        raise InvalidOutputError(f"{name} returned NaN or infinite values")
    if lowest < -1e-6 or sum_error > _SUM_TOLERANCE:
        raise InvalidOutputError(f"{name} returned rows that are not probability distributions")
    return out


def _distribution_errors(out: torch.Tensor) -> tuple[float, float]:
    """Largest |row sum - 1| and the smallest value; NaN or infinity makes one non-finite.

    A few rows are checked in plain Python: at batch 1 tensor reductions cost more than the
    arithmetic on ten numbers.
    """
    if out.numel() <= _PYTHON_CHECK_LIMIT:
        rows = out.tolist()
        if not all(math.isfinite(value) for row in rows for value in row):
            return math.nan, math.nan  # Python's max and min may step over a NaN
        return max(abs(math.fsum(row) - 1.0) for row in rows), min(min(row) for row in rows)
    sum_error, lowest = torch.stack([(out.sum(1) - 1).abs().max(), out.min()]).tolist()
    return sum_error, lowest
