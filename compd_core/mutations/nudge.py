"""``patch_nudge``: brighten or darken one small square patch by a few grey levels.

Not one of DFLARE's operators: it is the fine-grained move of the project's own engine. Each
application changes at most ``size**2`` values by ``delta``, so a fitness-guided chain of
nudges approaches a decision boundary with far less L2 distance than blurs or global noise
(the coordinate-wise idea of SimBA, Guo et al., ICML 2019, on square blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compd_core.mutations.base import MutationResult, check_batch, snap_to_grid


@dataclass(frozen=True)
class PatchNudge:
    sizes: tuple[int, ...] = (2, 3, 4)  # side of the square patch, drawn per image
    levels: tuple[int, ...] = (16, 32, 64)  # grey levels added or removed, drawn per image
    name: str = "patch_nudge"

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> MutationResult:
        check_batch(x, self.name)
        n, _, h, w = x.shape
        size = torch.tensor(self.sizes)[torch.randint(len(self.sizes), (n,), generator=generator)]
        level = torch.tensor(self.levels)[torch.randint(len(self.levels), (n,), generator=generator)]
        sign = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
        top = (torch.rand(n, generator=generator) * (h - size + 1)).long()
        left = (torch.rand(n, generator=generator) * (w - size + 1)).long()
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + size).view(n, 1, 1))
                  & (cols >= left.view(n, 1, 1)) & (cols < (left + size).view(n, 1, 1)))
        delta = (sign * level).to(x.dtype).view(n, 1, 1) / 255.0
        out = snap_to_grid(x + (inside * delta)[:, None])
        return MutationResult(out, self.name, {"size": size, "delta": sign * level,
                                               "top": top, "left": left})
