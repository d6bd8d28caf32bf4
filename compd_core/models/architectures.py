"""The sample architectures, quantization-ready (stubs at both ends, fusable groups).

LeNet-1 and LeNet-5 follow LeCun et al. (1998) with ReLU and max pooling instead of tanh and
subsampling, so that PyTorch's int8 kernels cover every layer. ``QuantStub``/``DeQuantStub``
are identities in float mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
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


# Name -> constructor arguments. Students are the distillation targets: fewer channels and units.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "lenet5": {"conv_channels": (6, 16), "hidden": (120, 84), "pad_first": True},
    "lenet1": {"conv_channels": (4, 12), "hidden": (), "pad_first": False},
    "lenet5-student": {"conv_channels": (4, 8), "hidden": (64,), "pad_first": True},
    "lenet1-student": {"conv_channels": (3, 8), "hidden": (), "pad_first": False},
}


def build_architecture(name: str, num_classes: int = 10) -> LeNet:
    """A freshly initialised (untrained) network of a named architecture."""
    if name not in ARCHITECTURES:
        raise ModelLoadError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return LeNet(num_classes=num_classes, **ARCHITECTURES[name])


def seeded_architecture(name: str, seed: int) -> LeNet:
    """Like ``build_architecture`` with initial weights fixed by ``seed``.

    ``nn.Module`` initialisers draw from the global generator; ``fork_rng`` keeps that draw
    from leaking into (or depending on) the caller's random state.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_architecture(name)
