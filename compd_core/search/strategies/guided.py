"""The gradient-guided first steps of ``compd`` on pairs with differentiable stand-ins.

On a white-box pair (PyTorch models: a pruned or distilled float model, or an int8 model with
its fake-quant twin) a chain's first steps follow the stand-ins' gradients, in the manner of
Decoupled Direction and Norm (Rony et al., CVPR 2019): a step of fixed L2 length against the
gradient of the deviation gap, then a projection onto an L2 ball around the seed whose radius
shrinks while the stand-ins deviate and grows while they do not. Each step's iterate, clipped to
the criterion's L-inf budget and snapped to the 8-bit grid, is one candidate for the real pair:
one query, judged by the engine like any square move. When the guided steps run out without a
deviation, the chain goes back to its seed and searches with square moves (going on from the
guided point instead cost 2.7x the queries on lenet5-int8-static in tuning).

Only where the gradients are those of the served models (``WhiteBoxPair.exact``): an int8
model's fake-quant twin or a float copy of bf16 weights misleads the steps near the boundary,
where the served model's rounding decides (bench/RESULTS.md, "Guided first steps").

The iterate is a continuous tensor in the chain's memory: snapping it after every step would
undo every change smaller than half a grey level, and an L2 step spreads over many pixels.
Its path depends only on the seed and the stand-ins, never on the real pair's answers, so a
chain looked at ahead by the engine takes the same steps it takes for real.

Loss: the compressed stand-in's log-margin for the seed's label while the original is sure
(log-margin above ``confident``), else that margin minus the original's (CompD's difference of
the two models, Li et al., ACML 2024): far from the boundary, go where the compressed model
changes its answer; near it, where the two part ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from compd_core.errors import ConfigError
from compd_core.models.pair import WhiteBoxPair
from compd_core.search.criterion import Criterion, log_margin, project_linf


@dataclass(frozen=True)
class GuideParameters:
    """Knobs of the guided steps; defaults measured on the zoo's LeNet pairs (bench/search.py)."""

    steps: int = 30  # guided steps per chain before square moves take over (0: none)
    step_length: float = 0.3  # L2 length of a step, pixel values in [0, 1]
    radius: float = 1.0  # first L2 radius around the seed
    radius_change: float = 0.1  # the radius shrinks or grows by this share after each step
    confident: float = 1.0  # the original's log-margin above which only the compressed side counts

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"guided steps must be >= 0 (0 turns them off), got {self.steps}")
        if not self.step_length > 0 or not self.radius > 0:
            raise ConfigError("the guided step length and first radius must be > 0, got "
                              f"{self.step_length} and {self.radius}")
        if not 0 < self.radius_change < 1:
            raise ConfigError(f"the radius change must lie in (0, 1), got {self.radius_change}")


@dataclass
class GuideState:
    """One chain's guided iterate: where it stands, its radius, and its next candidate."""

    iterate: torch.Tensor  # continuous, (C, H, W)
    radius: float
    steps_left: int
    candidate: torch.Tensor  # the iterate on the grid, inside the L-inf budget


class Guide:
    """Takes the guided steps of chains on one white-box pair."""

    def __init__(self, modules: WhiteBoxPair, parameters: GuideParameters,
                 criterion: Criterion) -> None:
        self.modules = modules
        self.parameters = parameters
        self.criterion = criterion

    def begin(self, seed: torch.Tensor, label: int) -> GuideState | None:
        """The state after the first step from ``seed``; None when guided steps are off."""
        if self.parameters.steps <= 0:
            return None
        state = GuideState(seed.clone(), self.parameters.radius, self.parameters.steps, seed)
        return self.advance(state, seed, label)

    def advance(self, state: GuideState, seed: torch.Tensor, label: int) -> GuideState | None:
        """The next step's state, or None when the guided steps are spent."""
        if state.steps_left <= 0:
            return None
        p = self.parameters
        done = p.steps - state.steps_left
        length = p.step_length * (0.5 + 0.5 * math.cos(math.pi * done / p.steps)) + 0.01
        gradient, deviates = self._gradient(state.iterate, label)
        norm = float(gradient.norm())
        iterate = state.iterate - length * gradient / norm if norm > 0 else state.iterate
        radius = state.radius * (1 - p.radius_change if deviates else 1 + p.radius_change)
        if self.criterion.max_l2 is not None:
            radius = min(radius, self.criterion.max_l2)
        delta = iterate - seed
        size = float(delta.norm())
        if size > radius:
            delta = delta * (radius / size)
        iterate = (seed + delta).clamp(0.0, 1.0)
        candidate = project_linf(iterate[None].clone(), seed[None], self._linf)[0]
        return GuideState(iterate, radius, state.steps_left - 1, candidate)

    @property
    def _linf(self) -> float:
        return 1.0 if self.criterion.max_linf is None else self.criterion.max_linf

    def _gradient(self, image: torch.Tensor, label: int) -> tuple[torch.Tensor, bool]:
        """The loss's input gradient at ``image``, and whether the stand-ins meet the criterion's
        margins there (its distance budget is the engine's to judge, on the snapped candidate)."""
        labels = torch.tensor([label])
        with torch.enable_grad():
            x = image[None].detach().clone().requires_grad_(True)
            p_o = torch.softmax(self.modules.original(x), 1)
            p_c = torch.softmax(self.modules.compressed(x), 1)
            m_o, m_c = log_margin(p_o, labels), log_margin(p_c, labels)
            loss = m_c if float(m_o.detach()) > self.parameters.confident else m_c - m_o
            (gradient,) = torch.autograd.grad(loss.sum(), x)
        deviates = self.criterion.met(p_o.detach(), p_c.detach(), labels)
        return gradient[0], bool(deviates[0])
