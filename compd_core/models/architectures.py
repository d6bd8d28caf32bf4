"""The sample architectures, quantization-ready (stubs at both ends, fusable groups).

LeNet-1 and LeNet-5 follow LeCun et al. (1998) with ReLU and max pooling instead of tanh and
subsampling, so that PyTorch's int8 kernels cover every layer. ``QuantStub``/``DeQuantStub``
are identities in float mode. ``TinyResNet`` is the mobile-style network of the Fashion-MNIST
pairs: batch norm, strided residual blocks and global average pooling, as deployed CNNs have.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub

from compd_core.errors import ModelLoadError


class LeNet(nn.Module):
    """Two conv+ReLU+pool stages and a stack of fully connected layers, for 28x28 inputs."""

    def __init__(
        self,
        conv_channels: tuple[int, int] = (6, 16),
        hidden: tuple[int, ...] = (120, 84),
        num_classes: int = 10,
        pad_first: bool = True,
    ) -> None:
        super().__init__()
        c1, c2 = conv_channels
        self.quant = QuantStub()
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2 if pad_first else 0)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        side = 5 if pad_first else 4
        widths = (c2 * side * side, *hidden)
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.fc_relus = nn.ModuleList(nn.ReLU() for _ in hidden)
        self.head = nn.Linear(widths[-1], num_classes)
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.flatten(x)
        for fc, relu in zip(self.fcs, self.fc_relus):
            x = relu(fc(x))
        return self.dequant(self.head(x))

    def fusable_groups(self) -> list[list[str]]:
        """Module names that eager-mode quantization fuses into one int8 op."""
        groups = [["conv1", "relu1"], ["conv2", "relu2"]]
        groups += [[f"fcs.{i}", f"fc_relus.{i}"] for i in range(len(self.fcs))]
        return groups


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, plus a shortcut (1x1 conv-BN when the shape changes), ReLU.

    The addition goes through ``FloatFunctional`` so that int8 conversion quantizes it too.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.project = stride != 1 or c_in != c_out
        if self.project:
            self.short_conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.short_bn = nn.BatchNorm2d(c_out)
        self.add = FloatFunctional()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.short_bn(self.short_conv(x)) if self.project else x
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(self.add.add(y, shortcut))

    def fusable_groups(self, prefix: str) -> list[list[str]]:
        groups = [[f"{prefix}conv1", f"{prefix}bn1", f"{prefix}relu1"],
                  [f"{prefix}conv2", f"{prefix}bn2"]]
        if self.project:
            groups.append([f"{prefix}short_conv", f"{prefix}short_bn"])
        return groups


class TinyResNet(nn.Module):
    """A stem convolution and strided residual stages for 28x28 grey images, then global average
    pooling and one linear head: a ResNet (He et al., 2016) scaled to about 75k weights."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), num_classes: int = 10) -> None:
        super().__init__()
        self.quant = QuantStub()
        self.stem = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        self.stem_relu = nn.ReLU()
        self.blocks = nn.ModuleList(
            ResidualBlock(a, b, stride=2) for a, b in zip(widths, widths[1:])
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(widths[-1], num_classes)
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(self.quant(x))))
        for block in self.blocks:
            x = block(x)
        return self.dequant(self.head(self.flatten(self.pool(x))))

    def fusable_groups(self) -> list[list[str]]:
        """Module names that eager-mode quantization fuses into one int8 op."""
        groups = [["stem", "stem_bn", "stem_relu"]]
        for i, block in enumerate(self.blocks):
            groups += block.fusable_groups(f"blocks.{i}.")
        return groups


# Name -> constructor arguments. Students are the distillation targets: fewer channels and units.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "lenet5": {"conv_channels": (6, 16), "hidden": (120, 84), "pad_first": True},
    "lenet1": {"conv_channels": (4, 12), "hidden": (), "pad_first": False},
    "lenet5-student": {"conv_channels": (4, 8), "hidden": (64,), "pad_first": True},
    "lenet1-student": {"conv_channels": (3, 8), "hidden": (), "pad_first": False},
}
# Name -> TinyResNet stage widths.
RESNETS: dict[str, tuple[int, ...]] = {
    "resnet-fashion": (16, 32, 64),
    "resnet-fashion-student": (8, 16, 32),
}


def build_architecture(name: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised (untrained) network of a named architecture."""
    if name in RESNETS:
        return TinyResNet(RESNETS[name], num_classes=num_classes)
    if name not in ARCHITECTURES:
        known = ", ".join([*ARCHITECTURES, *RESNETS])
        raise ModelLoadError(f"unknown architecture {name!r}; known: {known}")
    return LeNet(num_classes=num_classes, **ARCHITECTURES[name])


def seeded_architecture(name: str, seed: int) -> nn.Module:
    """Like ``build_architecture`` with initial weights fixed by ``seed``.

    ``nn.Module`` initialisers draw from the global generator; ``fork_rng`` keeps that draw
    from leaking into (or depending on) the caller's random state.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_architecture(name)
