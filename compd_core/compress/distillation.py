"""Knowledge distillation into a smaller student (Hinton et al., 2015).

The student learns the original's softened probabilities (temperature 4) with a small weight
on the true labels, which keeps it within a point or two of the original on MNIST.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compd_core.compress.base import Compressed, Recipe, load_state
from compd_core.compress.training import TrainSettings, distillation_kl, train
from compd_core.models.architectures import build_architecture, seeded_architecture

TEMPERATURE = 4.0  # softens the teacher's near one-hot outputs so the student sees class similarity
SOFT_WEIGHT = 0.9  # mostly the teacher's soft labels, a little of the ground truth


def student_of(arch: str) -> str:
    return f"{arch}-student"


class Distillation(Recipe):
    kind = "distilled"
    description = "a smaller student trained on the original's soft labels (T=4, 90% soft loss)"

    def compress(self, original, arch, train_images, train_labels, seed):  # noqa: D102
        original.eval()
        with torch.no_grad():
            teacher_logits = torch.cat(
                [original(train_images[i : i + 512]) for i in range(0, len(train_images), 512)]
            )
        targets = torch.cat([teacher_logits, train_labels[:, None].float()], dim=1)

        def loss_fn(model: nn.Module, x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
            logits = model(x)
            soft = distillation_kl(logits, packed[:, :-1], TEMPERATURE)
            hard = F.cross_entropy(logits, packed[:, -1].long())
            return SOFT_WEIGHT * soft + (1 - SOFT_WEIGHT) * hard

        student = seeded_architecture(student_of(arch), seed)
        # No shift augmentation: the teacher's logits were computed on the unshifted images.
        train(student, train_images, targets, TrainSettings(seed=seed, shift_pixels=0), loss_fn)
        return Compressed(served=student.eval(), standin=student)

    def save(self, compressed, directory, stem):  # noqa: D102
        files = {"model": f"{stem}.pt"}
        torch.save(compressed.served.state_dict(), directory / files["model"])  # type: ignore[union-attr]
        return files

    def load(self, arch, files):  # noqa: D102
        student = build_architecture(arch)  # the manifest records the student's architecture
        student.load_state_dict(load_state(files["model"]))
        student.eval()
        return Compressed(served=student, standin=student)

    def trainable(self, compressed):  # noqa: D102
        return super().trainable(compressed).train()
