"""int8 quantization with PyTorch's eager-mode tools (x86 engine): static PTQ, dynamic, QAT.

Every int8 model gets a fake-quant twin with the same scales and zero points, which is the
differentiable stand-in used for gradients (CompD) and for fine-tuning before converting again.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.ao import quantization as tq

from compd_core.compress.base import Compressed, Recipe, load_state
from compd_core.compress.training import TrainSettings, train
from compd_core.models.architectures import build_architecture

ENGINE = "x86"
CALIBRATION_IMAGES = 1024  # enough for stable activation ranges on MNIST; more changes nothing


@contextmanager
def quiet_quantization() -> Iterator[None]:
    """torch.ao.quantization is deprecated in favour of torchao and warns on every call.

    We use it on purpose (torchao skips Conv2d); silence exactly those warnings, here only.
    """
    torch.backends.quantized.engine = ENGINE
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*TypedStorage.*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*_check_is_valid_config_dict.*")
        yield


def _fused_float(model: nn.Module) -> nn.Module:
    fused = copy.deepcopy(model).eval()
    return tq.fuse_modules(fused, fused.fusable_groups())


def qat_qconfig() -> tq.QConfig:
    """Fake-quant settings matching the x86 int8 kernels (activations quint8 with reduced range,
    weights qint8 symmetric per channel).

    Plain ``FakeQuantize`` rather than the default fused module: the fused op recomputes its
    scales from running min/max even with observers off, which would discard the exact scales
    copied from a converted model.
    """
    activation = tq.FakeQuantize.with_args(
        observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=127,
        dtype=torch.quint8, qscheme=torch.per_tensor_affine,
    )
    weight = tq.FakeQuantize.with_args(
        observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0,
    )
    return tq.QConfig(activation=activation, weight=weight)


def _qat_prepared(model: nn.Module) -> nn.Module:
    """A fake-quant copy of a float model (fused, x86-matching qconfig), in train mode."""
    twin = copy.deepcopy(model).train()
    twin = tq.fuse_modules_qat(twin, twin.fusable_groups())
    twin.qconfig = qat_qconfig()
    return tq.prepare_qat(twin)


def _static_skeleton(arch: str) -> nn.Module:
    """An empty int8 model of ``arch``, ready for ``load_state_dict``."""
    model = _fused_float(build_architecture(arch))
    model.qconfig = tq.get_default_qconfig(ENGINE)
    return tq.convert(tq.prepare(model))


def _calibrate(model: nn.Module, images: torch.Tensor) -> None:
    with torch.no_grad():
        for start in range(0, len(images), 256):
            model(images[start : start + 256])


def _copy_qparams(twin: nn.Module, quantized: nn.Module) -> None:
    """Give the twin's fake-quant modules the exact scales of a converted int8 model."""
    int8_modules = dict(quantized.named_modules())
    for name, module in twin.named_modules():
        target = int8_modules.get(name)
        if target is None:
            continue
        fake_act = getattr(module, "activation_post_process", None)
        if isinstance(fake_act, tq.FakeQuantize) and hasattr(target, "scale"):
            fake_act.scale = torch.tensor([float(target.scale)])
            fake_act.zero_point = torch.tensor([int(target.zero_point)], dtype=torch.int32)
        fake_w = getattr(module, "weight_fake_quant", None)
        if isinstance(fake_w, tq.FakeQuantize) and hasattr(target, "weight"):
            qweight = target.weight()
            fake_w.scale = qweight.q_per_channel_scales().to(torch.float32)
            fake_w.zero_point = qweight.q_per_channel_zero_points().to(torch.int32)
    twin.apply(tq.disable_observer)


_NUDGES = 8  # float32 round-off needs at most a step or two; more means something else is wrong


def _observed(observer: nn.Module) -> bool:
    min_val = getattr(observer, "min_val", None)
    return min_val is not None and min_val.numel() > 0 and bool(torch.isfinite(min_val).all())


def _pin(fake: tq.FakeQuantize) -> None:
    """Set the observer's range so that its qparams are exactly the module's scale and zero point."""
    observer = fake.activation_post_process
    scale, zero = fake.scale.detach().double(), fake.zero_point.double()
    symmetric = fake.qscheme in (torch.per_channel_symmetric, torch.per_tensor_symmetric)
    if symmetric:
        half = (observer.quant_max - observer.quant_min) / 2
        low, high = -scale * half, scale * half
    else:
        low, high = (observer.quant_min - zero) * scale, (observer.quant_max - zero) * scale
    observer.min_val, observer.max_val = low.float(), high.float()
    for _ in range(_NUDGES):
        got, _ = observer.calculate_qparams()
        off = got != fake.scale
        if not bool(off.any()):
            return
        direction = torch.where(got < fake.scale, torch.inf, -torch.inf)
        nudged = torch.nextafter(observer.max_val, torch.full_like(observer.max_val, 0) + direction)
        observer.max_val = torch.where(off, nudged, observer.max_val)
        if symmetric:
            observer.min_val = -observer.max_val


def pin_unobserved(model: nn.Module) -> None:
    """Pin every fake-quant module whose observer holds no statistics to its own scale.

    A static model's twin is given its scales directly (``_copy_qparams``), so its observers
    never saw data; ``convert`` reads the observers and would fail or invent new scales.
    Pinned, the converted model computes exactly what the twin computed.
    """
    for module in model.modules():
        if isinstance(module, tq.FakeQuantize) and not _observed(module.activation_post_process):
            _pin(module)


def _save_pair(compressed: Compressed, directory: Path, stem: str) -> dict[str, str]:
    files = {"model": f"{stem}.pt", "standin": f"{stem}.standin.pt"}
    torch.save(compressed.served.state_dict(), directory / files["model"])  # type: ignore[union-attr]
    torch.save(compressed.standin.state_dict(), directory / files["standin"])  # type: ignore[union-attr]
    return files


def _load_twin(arch: str, path: Path) -> nn.Module:
    twin = _qat_prepared(build_architecture(arch))
    twin.load_state_dict(load_state(path))
    twin.apply(tq.disable_observer)
    return twin.eval()


class StaticInt8(Recipe):
    kind = "int8-static"
    description = "int8 static post-training quantization (x86 engine, calibrated on 1,024 training images)"

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        with quiet_quantization():
            model = _fused_float(original)
            model.qconfig = tq.get_default_qconfig(ENGINE)
            prepared = tq.prepare(model)
            _calibrate(prepared, train_images[:CALIBRATION_IMAGES])
            served = tq.convert(prepared)
            twin = _qat_prepared(original).eval()
            _copy_qparams(twin, served)
        return Compressed(served=served, standin=twin)

    def save(self, compressed, directory, stem):  # noqa: D102
        return _save_pair(compressed, directory, stem)

    def load(self, arch, files):  # noqa: D102
        with quiet_quantization():
            served = _static_skeleton(arch)
            served.load_state_dict(load_state(files["model"]))
            return Compressed(served=served.eval(), standin=_load_twin(arch, files["standin"]))

    def trainable(self, compressed):  # noqa: D102
        twin = super().trainable(compressed)
        return twin.train()

    def finalize(self, trained, calibration):  # noqa: D102
        with quiet_quantization():
            trained.eval()
            twin = copy.deepcopy(trained)
            pin_unobserved(twin)
            served = tq.convert(twin)
        return Compressed(served=served, standin=trained)


class QatInt8(StaticInt8):
    kind = "int8-qat"
    description = "int8 quantization-aware training (3 epochs of fake-quant fine-tuning, converted)"
    epochs = 3

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        with quiet_quantization():
            twin = _qat_prepared(original)
            settings = TrainSettings(epochs=self.epochs, lr=1e-4, seed=seed)
            train(twin, train_images, train_labels, settings)
            twin.apply(tq.disable_observer)
            twin.eval()
            served = tq.convert(copy.deepcopy(twin))
        return Compressed(served=served, standin=twin)


class DynamicInt8(Recipe):
    kind = "int8-dynamic"
    description = "int8 dynamic quantization of the linear layers (weights int8, activations at run time)"

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        return self._from_float(original)

    def _from_float(self, model: nn.Module) -> Compressed:
        with quiet_quantization():
            served = tq.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
        return Compressed(served=served, standin=self._standin(model, served))

    @staticmethod
    def _standin(float_model: nn.Module, served: nn.Module) -> nn.Module:
        """The float model with each linear weight replaced by its int8 round trip."""
        standin = copy.deepcopy(float_model).eval()
        int8_modules = dict(served.named_modules())
        with torch.no_grad():
            for name, module in standin.named_modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(int8_modules[name].weight().dequantize())
        return standin

    def save(self, compressed, directory, stem):  # noqa: D102
        files = {"model": f"{stem}.pt"}
        torch.save(compressed.served.state_dict(), directory / files["model"])  # type: ignore[union-attr]
        return files

    def load(self, arch, files):  # noqa: D102
        with quiet_quantization():
            skeleton = build_architecture(arch).eval()
            served = tq.quantize_dynamic(copy.deepcopy(skeleton), {nn.Linear}, dtype=torch.qint8)
            served.load_state_dict(load_state(files["model"]))
            float_model = skeleton
            with torch.no_grad():
                for name, module in float_model.named_modules():
                    if isinstance(module, (nn.Linear, nn.Conv2d)):
                        source = dict(served.named_modules())[name]
                        weight = source.weight() if callable(source.weight) else source.weight
                        module.weight.copy_(weight.dequantize() if weight.is_quantized else weight)
                        module.bias.copy_(source.bias() if callable(source.bias) else source.bias)
        return Compressed(served=served.eval(), standin=float_model)

    def finalize(self, trained, calibration):  # noqa: D102
        return self._from_float(trained.eval())


HEAD_LEVELS = 255  # the head's output is dequantized at once, never fed to another int8 kernel


def _head_output_quant(twin: nn.Module) -> tq.FakeQuantize | None:
    head = getattr(twin, "head", None)
    fake = getattr(head, "activation_post_process", None)
    return fake if isinstance(fake, tq.FakeQuantize) else None


def head_step(twin: nn.Module) -> float | None:
    """The step of the twin's int8 head output grid, in logits (None: not quantized)."""
    fake = _head_output_quant(twin)
    return None if fake is None else float(fake.scale)


def decision_range(twin: nn.Module, images: torch.Tensor) -> tuple[float, float] | None:
    """The logits where the twin's argmax is decided on ``images``: from the lowest top logit
    to the highest runner-up logit (widened to hold 0, which int8 must represent exactly).
    None when the twin's head output is not quantized. Logits outside it never decide a
    top-1: one above it is the top class's alone, one below it never the top."""
    fake = _head_output_quant(twin)
    if fake is None or len(images) == 0:
        return None
    was_training = twin.training
    twin.eval()
    fake.disable_fake_quant()
    try:
        with torch.no_grad():
            logits = torch.cat([twin(images[start : start + 512]) for start in range(0, len(images), 512)])
    finally:
        fake.enable_fake_quant()
        twin.train(was_training)
    top2 = logits.topk(2, dim=1).values
    return min(float(top2[:, 0].min()), 0.0), max(float(top2[:, 1].max()), 0.0)


def narrow_head_grid(twin: nn.Module, low: float, high: float) -> tuple[float, int]:
    """Quantize the twin's head output on all 256 levels of [``low``, ``high``] and pin it there,
    so that the converted model serves the same grid; returns (scale, zero point).

    Calibrated on min and max, an int8 head spends its levels on logits that never decide a
    top-1 (lenet5-int8-static: steps of 0.34 over -25 to 63), so near a decision two classes
    round to one level and tie (bench/REPAIR.md)."""
    fake = _head_output_quant(twin)
    if fake is None:
        raise ValueError("the model's head output is not quantized: there is no grid to narrow")
    if not high > low:
        raise ValueError(f"the head's decision range must be an interval, got [{low}, {high}]")
    scale = (high - low) / HEAD_LEVELS
    zero_point = min(HEAD_LEVELS, max(0, round(-low / scale)))
    for part in (fake, fake.activation_post_process):
        part.quant_min, part.quant_max = 0, HEAD_LEVELS
    fake.scale = torch.tensor([scale])
    fake.zero_point = torch.tensor([zero_point], dtype=torch.int32)
    fake.disable_observer()
    _pin(fake)
    return scale, zero_point
