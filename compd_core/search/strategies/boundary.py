"""Boundary probes: ``compd``'s first moves on pairs whose compressed stand-in is not exact.

An int8 model's fake-quant twin computes what is served closely (LeNet-5 int8-static: within
3.7e-3 in probability over 500 test digits), but its straight-through gradient misleads near the
boundary, where the served model's rounding decides (bench/RESULTS.md, "Guided first steps").
So these probes use the twin's forward pass, never its gradient:

1. The original's own decision boundary towards each other class is found from the seed and from
   random starting points around it with DeepFool (Moosavi-Dezfooli et al., CVPR 2016) on the
   original's exact gradient: near-minimal L2 changes that make the original change its mind.
2. Points on the line from the seed through each boundary point, a little short of it and a
   little past it, are snapped to the 8-bit grid and kept within the criterion's distance budget.
3. Both stand-ins judge every point with the run's criterion; the points they call deviations
   are sent to the real pair closest first, one query each, as a chain's first moves. A
   quantized model parts from its original only where the original is nearly undecided, which
   is exactly the sliver just short of the original's boundary.

A black-box compressed model (an ONNX or TFLite file) beside a PyTorch original has no stand-in
to judge the points in step 3. Then the points the original still gives the seed's label by the
smallest margin go first, up to 64 of them: where the original is nearly undecided, the
compressed model's rounding decides. On lenet5-onnx-int8 (30 class-balanced seeds of seed set 0,
probes alone, a script outside the repository): 28 of 30 seeds solved within 512 such queries at
a median of 5 (17 within 8, 26 within 64) and median L2 2.06; ranked by distance instead, 14 of
30 at a median of 231.

The stand-ins' work is not queries of the pair (as with the guided steps' gradients): with the
defaults, per seed, at most 10 forward and backward passes of the original on 288 starting
points, then up to 6,048 line points through the original and those short of its boundary
through the compressed stand-in, about 0.5-1 s for a LeNet on one core. The benchmark reports
the seconds per trigger beside the queries. The candidates depend only on the seed, the
stand-ins and the chain's own generator, never on the real pair's answers, so the engine may
look ahead into them like any other move. When none is confirmed the chain goes back to its
seed and searches with square moves.

How the defaults were chosen (probes alone, the first 30 class-balanced seeds of seed set 0,
scripts outside the repository; 100-seed results in bench/RESULTS.md, "Boundary probes"):
- starting points per class: 16 solved 20 of 30 lenet5-int8-static seeds at median L2 2.26, 32
  solved 27 at 1.85 (before DeepFool was kept inside the L-inf ball); three classes with 96
  starts each solved 24 at 1.57, all nine with 32 solved 25 at 1.65, so all classes are tried;
- the line: 21 points over 0.9-1.1 of the way solved as many seeds as 41 over 0.8-1.2 (21 and
  20 of 30) for half the stand-in work; 11 over 0.95-1.05 solved 12;
- keeping DeepFool inside the L-inf ball: of the 7 lenet5-int8-qat seeds (of 100) left
  unsolved without it, none had a single candidate even with 256 starts; with it, 4 were
  solved with 32. Over 100 seeds: int8-qat 93 -> 97%, LeNet-1 int8 92 -> 97%, int8-static 99
  -> 100%;
- 10 DeepFool steps instead of 40: the same 30 / 30 / 21 of 30 seeds on int8-static / int8-qat
  / LeNet-1 int8, median L2 within 0.08, half the time;
- in these checks the first candidate sent was the served pair's deviation on every seed the
  probes solved (the fake-quant twins judge these points right): 8 queries are a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compd_core.errors import ConfigError
from compd_core.search.criterion import Criterion, distances, project_linf

_CHUNK = 512  # rows per stand-in forward pass, so large inputs stay bounded in memory


@dataclass(frozen=True)
class ProbeParameters:
    """Knobs of the boundary probes; defaults measured on the zoo's int8 LeNet pairs
    (bench/search.py)."""

    classes: int = 9  # target classes, the original's likeliest first (0: probes off)
    starts: int = 32  # DeepFool starting points per class: the seed, then random ones around it
    spread: float = 1.0  # L2 distance of the random starting points from the seed
    line_points: int = 21  # points on each line through a boundary point ...
    line_span: float = 0.1  # ... from (1 - span) to (1 + span) times the way to it
    deepfool_steps: int = 10  # most DeepFool steps per starting point
    overshoot: float = 0.02  # DeepFool's step past the linearised boundary
    queries: int = 8  # most candidates sent to the real pair before square moves take over
    # ... when the compressed model is a black box with no stand-in to judge them: the points
    # the original keeps by the smallest margin are sent, nearest its boundary first
    unjudged_queries: int = 64

    def __post_init__(self) -> None:
        counts = {"classes": self.classes, "starts": self.starts, "line_points": self.line_points,
                  "deepfool_steps": self.deepfool_steps, "queries": self.queries,
                  "unjudged_queries": self.unjudged_queries}
        negative = [f"{name}={value}" for name, value in counts.items() if value < 0]
        if negative:
            raise ConfigError(f"boundary probe counts must be >= 0, got {', '.join(negative)}")
        if self.spread < 0 or not 0 <= self.line_span < 1 or self.overshoot < 0:
            raise ConfigError(
                "boundary probe spread and overshoot must be >= 0 and the line span in [0, 1), "
                f"got spread={self.spread}, line_span={self.line_span}, overshoot={self.overshoot}")

    def active(self, judged: bool = True) -> bool:
        """Whether probes run: with a compressed stand-in to judge them (``judged``) or without."""
        cap = self.queries if judged else self.unjudged_queries
        return min(self.classes, self.starts, self.line_points, cap) > 0


class BoundaryProbe:
    """Finds, from the stand-ins alone, the images a chain sends to the real pair first.

    ``compressed`` is the compressed model's stand-in, or None for a black box (an ONNX or
    TFLite file): then no stand-in judges the points, and those the original still gives the
    seed's label by the smallest margin go first (``unjudged_queries`` of them)."""

    def __init__(self, original: nn.Module, compressed: nn.Module | None,
                 parameters: ProbeParameters, criterion: Criterion) -> None:
        self.original = original
        self.compressed = compressed
        self.parameters = parameters
        self.criterion = criterion

    @property
    def cap(self) -> int:
        """Most candidates a chain sends to the real pair."""
        p = self.parameters
        return p.queries if self.compressed is not None else p.unjudged_queries

    def candidates(self, seed: torch.Tensor, label: int, generator: torch.Generator) -> torch.Tensor:
        """(N, C, H, W), N <= ``cap``: distinct grid images within the criterion's budget that
        both stand-ins judge deviations, closest to ``seed`` first (without a compressed
        stand-in: that the original gives ``label``, by the smallest margin first)."""
        p = self.parameters
        device = _device(self.original)
        x = seed.to(device)
        with torch.no_grad():
            probs = torch.softmax(self.original(x[None]), 1)[0]
        others = [int(c) for c in probs.argsort(descending=True).tolist() if int(c) != label]
        targets = torch.tensor(others[: p.classes], device=device).repeat_interleave(p.starts)
        offsets = torch.randn((len(targets), *x.shape), generator=generator).to(device)
        offsets[:: p.starts] = 0.0  # each class's first start is the seed itself
        norms = offsets.flatten(1).norm(dim=1).clamp_min(1e-12)
        starts = (x[None] + offsets * (p.spread / norms).view(-1, *[1] * x.dim())).clamp(0.0, 1.0)
        ends = self._deepfool(starts, x, label, targets)
        ways = torch.linspace(1 - p.line_span, 1 + p.line_span, p.line_points, device=device)
        points = x + ways.view(1, -1, *[1] * x.dim()) * (ends - x)[:, None]
        points = points.reshape(-1, *x.shape)
        return self._deviations(points, x, label).cpu()

    def _deepfool(self, starts: torch.Tensor, seed: torch.Tensor, label: int,
                  targets: torch.Tensor) -> torch.Tensor:
        """Each start moved just past the original's boundary between ``label`` and its target
        (or left where it got after ``deepfool_steps``), kept inside the criterion's L-inf ball
        around ``seed`` after every step."""
        p = self.parameters
        low, high = (seed - self._linf).clamp_min(0.0), (seed + self._linf).clamp_max(1.0)
        image = starts.clone()
        todo = torch.arange(len(starts), device=starts.device)  # rows not yet past the boundary
        shape = [-1, *[1] * (image.dim() - 1)]
        for _ in range(p.deepfool_steps):
            with torch.enable_grad():
                x = image[todo].requires_grad_(True)
                logits = self.original(x)
                gap = logits.gather(1, targets[todo, None]).squeeze(1) - logits[:, label]
                (gradient,) = torch.autograd.grad(gap.sum(), x)
            gap = gap.detach()
            going = gap <= 0
            if not going.any():
                break
            todo, gap, gradient = todo[going], gap[going], gradient[going]
            size = gradient.flatten(1).pow(2).sum(1).clamp_min(1e-12)
            step = ((1 + p.overshoot) * (1e-4 - gap) / size).view(shape) * gradient
            image[todo] = torch.minimum(torch.maximum(image[todo] + step, low), high)
        return image.detach()

    @property
    def _linf(self) -> float:
        """The criterion's L-inf budget; without one the whole pixel range (and, when
        projected, the 8-bit grid)."""
        return 1.0 if self.criterion.max_linf is None else self.criterion.max_linf

    def _deviations(self, points: torch.Tensor, seed: torch.Tensor, label: int) -> torch.Tensor:
        points = project_linf(points.clamp(0.0, 1.0), seed[None], self._linf)
        points = torch.unique(points.flatten(1), dim=0).view(-1, *seed.shape)
        kept, ranks = [], []
        for chunk in points.split(_CHUNK):
            labels = torch.full((len(chunk),), label)
            with torch.no_grad():
                p_o = torch.softmax(self.original(chunk), 1).cpu()
            # Past the original's boundary no point can deviate: the compressed stand-in (the
            # slower of the two) judges only the others.
            m_o, _ = self.criterion.strength(p_o, p_o, labels)
            near = m_o > self.criterion.min_margin_original
            if not near.any():
                continue
            chunk, p_o, labels, m_o = chunk[near.to(chunk.device)], p_o[near], labels[near], m_o[near]
            seeds = seed[None].expand_as(chunk).cpu()
            if self.compressed is None:
                # A compressed model parts from its original where the original is nearly
                # undecided: the smallest margins go first.
                met = self.criterion.within_budget(chunk.cpu(), seeds)
                rank = m_o
            else:
                with torch.no_grad():
                    p_c = torch.softmax(self.compressed(chunk), 1).cpu()
                met = self.criterion.met(p_o, p_c, labels, chunk.cpu(), seeds)
                rank, _ = distances(chunk.cpu(), seeds)
            kept.append(chunk[met.to(chunk.device)])
            ranks.append(rank[met])
        if not kept:
            return points[:0]
        found, rank = torch.cat(kept), torch.cat(ranks)
        return found[rank.argsort(stable=True)][: self.cap]


def _device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device
