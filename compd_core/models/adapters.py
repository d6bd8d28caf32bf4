"""Adapters that turn PyTorch modules, TorchScript and ONNX files and Python callables into
``Classifier`` objects with one calling convention."""

from __future__ import annotations

import copy
import importlib
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional

from compd_core.errors import InvalidOutputError, ModelLoadError
from compd_core.models.base import ModelInfo


OutputKind = Literal["logits", "probabilities", "auto"]
_log = logging.getLogger(__name__)
_torchscript_advice_given = False


def as_probabilities(raw: torch.Tensor, output: OutputKind) -> torch.Tensor:
    """Softmax where the model declares logits; 'auto' decides from the values themselves."""
    raw = raw.to(torch.float32)
    if output == "logits":
        return torch.softmax(raw, dim=1)
    if output == "auto" and raw.ndim == 2:
        rows_are_distributions = bool(
            (raw >= 0).all() and torch.allclose(raw.sum(1), torch.ones(len(raw)), atol=1e-3)
        )
        return raw if rows_are_distributions else torch.softmax(raw, dim=1)
    return raw


class TorchClassifier:
    """A PyTorch module (float, quantized, pruned or bf16) that outputs logits.

    ``standin`` is the differentiable module used for gradients when ``module`` itself has none
    (an int8 model's fake-quant twin). Float modules are their own stand-in.
    """

    def __init__(
        self,
        module: nn.Module,
        info: ModelInfo,
        *,
        output: OutputKind = "logits",
        standin: nn.Module | None = None,
    ) -> None:
        self._module = module.eval()
        self._info = info
        self._output = output
        self._standin = standin.eval() if standin is not None else None
        params = list(module.parameters())
        self._dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
        # A TorchScript int8 module hides its int8 layers and has no float parameters.
        self._exact = (bool(params) and all(p.dtype == torch.float32 for p in params)
                       and not _is_quantized(module) and standin in (None, module))
        self._device = torch.device("cpu")

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def module(self) -> nn.Module:
        """The served module; shared, so treat it as read-only (repair works on a deep copy)."""
        return self._module

    @property
    def device(self) -> torch.device:
        return self._device

    def on(self, device: str) -> TorchClassifier:
        """This model on ``device`` (inputs go there, probabilities come back to the CPU).

        The shared module is never moved: another device gets a copy. PyTorch's int8 kernels
        exist only on the CPU, so a quantized module stays there.
        """
        target = torch.device(device)
        if target == self._device:
            return self
        if _is_quantized(self._module) and target.type != "cpu":
            _log.info("%s is int8-quantized and runs on the CPU only", self._info.name)
            return self
        moved = copy.copy(self)
        moved._module = copy.deepcopy(self._module).to(target)
        moved._device = target
        if self._standin is None and self._dtype == torch.float32:
            moved._standin = self._module  # gradients stay on the CPU, where strategies feed them
        return moved

    @property
    def exact_gradients(self) -> bool:
        """Whether ``differentiable()`` computes what is served (a float32 model), not a stand-in
        that only approximates it (an int8 model's fake-quant twin, a float copy of bf16)."""
        return self._exact

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            raw = self._module(x.to(self._device, self._dtype))
            return as_probabilities(raw, self._output).cpu()

    def differentiable(self) -> nn.Module:
        if self._standin is not None:
            return self._standin
        if _is_quantized(self._module) or self._dtype != torch.float32:
            raise ModelLoadError(
                f"{self._info.name} has no differentiable float stand-in; "
                "load it through the zoo, which rebuilds its fake-quant twin"
            )
        return self._module


def _is_quantized(module: nn.Module) -> bool:
    """Whether the module runs int8 kernels. ``FloatFunctional`` lives in the quantized package
    but is the float form of a residual add (a ResNet made ready for quantization has it)."""
    return any(
        type(m).__module__.startswith("torch.ao.nn.quantized") and not isinstance(m, FloatFunctional)
        for m in module.modules()
    )


def _load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` without its deprecation warning on every load: the advice to move to
    ``torch.export`` (.pt2) is logged once per process instead."""
    global _torchscript_advice_given
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated",
                                category=DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    if not _torchscript_advice_given:
        _torchscript_advice_given = True
        _log.info("%s is TorchScript, which torch 2.13 deprecates; torch.export programs (.pt2) "
                  "are the recommended format", path.name)
    return module


class TorchScriptClassifier(TorchClassifier):
    """A TorchScript archive saved with ``torch.jit.save`` (kept for existing files; new ones
    are better exported with ``torch.export``); no Python classes are unpickled."""

    def __init__(
        self,
        path: str | Path,
        input_shape: tuple[int, int, int],
        class_names: tuple[str, ...] | None = None,
        *,
        output: OutputKind = "auto",
    ) -> None:
        path = existing_file(path)
        try:
            module = _load_torchscript(path)
        except Exception as exc:  # torch raises RuntimeError/ValueError/zip errors alike
            raise ModelLoadError(
                f"{path} is not a loadable TorchScript archive (save one with torch.jit.save): "
                f"{first_line(exc)}"
            ) from exc
        info = module_info(module, path, input_shape, class_names, "torchscript")
        super().__init__(module, info, output=output)


class OnnxClassifier:
    """An ONNX model run with onnxruntime: on the CPU, or on its CUDA provider after
    ``on("cuda")`` where onnxruntime was built with one."""

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
        self._path, self._providers = path, CPU_PROVIDERS
        self._session = _onnx_session(path, CPU_PROVIDERS)
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        declared = tuple(model_input.shape[1:])
        if len(declared) != 3 or any(
            isinstance(d, int) and d != want for d, want in zip(declared, input_shape)
        ):
            raise ModelLoadError(
                f"{path} expects inputs of shape {tuple(model_input.shape)} but the data has "
                f"images of shape {input_shape}; export the model for (N, {', '.join(map(str, input_shape))})"
            )
        batch_dim = model_input.shape[0]
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        self._output = output
        probe = self._run(np.zeros((1, *input_shape), dtype=np.float32))
        self._info = probed_info(path, name, input_shape, class_names, probe, "onnx")

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def providers(self) -> tuple[str, ...]:
        """The onnxruntime execution providers this model asked for, in order of preference."""
        return self._providers

    def on(self, device: str) -> OnnxClassifier:
        """This model on ``device``: 'cuda' runs it on onnxruntime's CUDA provider where the
        installed onnxruntime has one (the ``onnxruntime-gpu`` package), else it stays on the
        CPU and says so in the log."""
        import onnxruntime as ort

        providers = CPU_PROVIDERS
        if device.startswith("cuda"):
            if CUDA_PROVIDER in ort.get_available_providers():
                providers = (CUDA_PROVIDER, *CPU_PROVIDERS)
            else:
                _log.info("%s stays on the CPU: this onnxruntime has no %s (install "
                          "onnxruntime-gpu)", self._info.name, CUDA_PROVIDER)
        if providers == self._providers:
            return self
        moved = copy.copy(self)
        moved._providers, moved._session = providers, _onnx_session(self._path, providers)
        return moved

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._fixed_batch is None:
            return self._session.run(None, {self._input_name: batch})[0]
        step = self._fixed_batch
        return np.concatenate(
            [self._session.run(None, {self._input_name: batch[i : i + step]})[0]
             for i in range(0, len(batch), step)]
        )

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        raw = self._run(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32))
        return as_probabilities(torch.from_numpy(np.asarray(raw)), self._output)


CPU_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
CUDA_PROVIDER = "CUDAExecutionProvider"


def _onnx_session(path: Path, providers: tuple[str, ...]) -> Any:
    """An onnxruntime session for ``path``, or a ``ModelLoadError`` naming the file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own non-exported exception types
        raise ModelLoadError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from exc


class CallableClassifier:
    """Any Python callable named ``package.module:attr`` mapping a float32 array to probabilities.

    It runs the user's own code, so it is opt-in: pass ``allow_code=True``.
    """

    def __init__(
        self,
        spec: str,
        input_shape: tuple[int, int, int],
        class_names: tuple[str, ...] | None = None,
        *,
        allow_code: bool = False,
        output: OutputKind = "auto",
    ) -> None:
        if not allow_code:
            raise ModelLoadError(
                f"{spec!r} names Python code; running it is opt-in (pass --allow-code / allow_code=True)"
            )
        self._fn = _import_callable(spec)
        self._spec = spec
        self._output = output
        probe = self._call(torch.zeros((1, *input_shape)))
        self._info = ModelInfo(
            name=spec,
            input_shape=input_shape,
            num_classes=int(probe.shape[1]),
            class_names=class_names or tuple(str(i) for i in range(probe.shape[1])),
            kind="callable",
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        try:
            out = self._fn(x.detach().cpu().numpy().astype(np.float32))
        except Exception as exc:  # the user's code: any failure is theirs to fix, in one line
            raise InvalidOutputError(
                f"{self._spec} raised {type(exc).__name__}: {first_line(exc)}; "
                "fix the function so that it maps a float batch (N, C, H, W) to scores"
            ) from exc
        return torch.from_numpy(_callable_scores(self._spec, out, len(x)))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return as_probabilities(self._call(x), self._output)


def _callable_scores(spec: str, out: object, rows: int) -> np.ndarray:
    """A callable's answer as a float32 (rows, classes) array, or an error that says what it
    returned instead."""
    expected = f"it must return an array of shape ({rows}, classes) of logits or probabilities"
    if out is None:
        raise InvalidOutputError(f"{spec} returned None; {expected}")
    try:
        scores = np.asarray(out)
    except (ValueError, TypeError) as exc:  # ragged lists and objects numpy cannot hold
        raise InvalidOutputError(f"{spec} returned {type(out).__name__} that is no array ({first_line(exc)}); {expected}") from exc
    if scores.dtype.kind not in "biuf":
        raise InvalidOutputError(f"{spec} returned {scores.dtype} values, not numbers; {expected}")
    if scores.ndim != 2 or scores.shape[0] != rows or scores.shape[1] < 2:
        raise InvalidOutputError(f"{spec} returned shape {tuple(scores.shape)}; {expected}")
    return scores.astype(np.float32)


def _import_callable(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelLoadError(f"{spec!r} is not of the form 'package.module:function'")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"cannot import {spec!r}: {exc}") from exc
    if not callable(target):
        raise ModelLoadError(f"{spec!r} is not callable")
    return target


def probed_info(
    path: Path, name: str | None, input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None, scores: np.ndarray | torch.Tensor, kind: str,
) -> ModelInfo:
    """What a model file is, from the scores it gave one blank probe image."""
    classes = int(scores.shape[1])
    return ModelInfo(
        name=name or path.stem,
        input_shape=input_shape,
        num_classes=classes,
        class_names=class_names or tuple(str(i) for i in range(classes)),
        kind=kind,
        size_bytes=path.stat().st_size,
    )


def existing_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    return path


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def module_info(
    module: nn.Module,
    path: Path,
    input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None,
    kind: str,
) -> ModelInfo:
    """Run one blank image through a module to learn its number of classes."""
    try:
        with torch.inference_mode():
            out = module(torch.zeros((1, *input_shape)))
    except Exception as exc:  # a shape mismatch surfaces as RuntimeError from inside the model
        raise ModelLoadError(
            f"{path} cannot run on images of shape {input_shape}: {first_line(exc)}"
        ) from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ModelLoadError(f"{path} must return a (N, classes) tensor")
    return probed_info(path, None, input_shape, class_names, out, kind)
