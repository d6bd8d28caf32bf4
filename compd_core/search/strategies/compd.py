"""``compd``: the project's own engine, built to find strict deviations close to their seeds.

How it searches (each choice measured on the zoo's LeNet pairs, 20 class-balanced seeds):
- Guided first steps where the gradients are those of the served models (float PyTorch pairs:
  pruned, distilled; ``guided``): up to 30 steps along the deviation gap's gradient on an L2
  ball that shrinks while the pair deviates, one query each. On lenet5-prune90 and distilled
  (100 seeds) they found strict deviations for every seed at median L2 1.45 in 7-8 queries,
  against 2.84-2.94 in 118 for squares alone. A trigger they find is not shrunk (reverting
  squares of a change spread over many pixels gained 0.03 L2 for 64 queries). Not on int8 or
  bf16 pairs: there the stand-in's gradient is not the served model's, and the guided steps
  cost queries for no closer trigger (lenet5-int8-static, 30 seeds: 29 instead of 30 seeds
  solved, 260-536 median queries instead of 196). After 30 steps without a deviation a chain
  goes back to its seed and searches with squares.
- Boundary probes where the compressed model's stand-in only approximates it (an int8 model's
  fake-quant twin, a float copy of bf16; ``boundary``): DeepFool on the original finds its own
  boundary towards each other class from the seed and from 31 random points around it, inside
  the L-inf budget; the stand-ins judge points on the lines through those boundary points and
  the ones they call deviations go to the real pair, closest first, one query each (at most 8).
  On lenet5-int8-static, int8-qat and lenet1-int8-static (100 seeds, bench/RESULTS.md): 96-100%
  solved at a median of 2 queries (the seed's and the first probe's) and L2 1.71-1.93, against
  92-99% at 182-582 queries and L2 2.78-3.19 for squares alone; about 1 s of stand-in work per
  seed on one core, so the engine starts such chains two at a time between steps. A chain whose
  probes all miss goes back to its seed and searches with squares.
- Unjudged boundary probes where the compressed model is a black box beside a PyTorch original
  (an ONNX or TFLite file): no stand-in judges the line points, so those the original still
  gives the seed's label by the smallest margin go first (at most 64). On lenet5-onnx-int8
  (100 seeds, three seed sets): 97-100% solved at a median of 5-6 queries and L2 1.85-2.17,
  against 98-99% at 278 queries (set 0) and L2 3.31 for squares alone.
- Sparse square moves on the L-inf ball (``square_step``): one random square of side 1..7 is
  set to seed +/- eps. Starting from the seed instead of Square Attack's full stripe pattern
  keeps L2 low: dense +/-16..32/255 patterns (L2 1.8-2.6) solved 0-25% of int8 seeds, sparse
  squares 95-100%.
- Start small and grow: eps starts at 16 grey levels and grows 1.5x after two steps without
  progress, up to the criterion's L-inf budget.
- Fitness: the deviation gap max(m_c, -m_o) on log-margins (negative exactly on strict
  deviations) plus 0.3 x the L2 distance to the seed, so a chain pays for every pixel it moves,
  plus 0.1 x the original's log-margin. That last term matters on int8 pairs: their quantized
  outputs tie over wide plateaus (m_c = 0 exactly, so the gap is flat), and a chain that lowers
  the original's margin there reaches the sliver where the compressed model tips over.
- Restarts: a chain that made no progress for 100 steps at full eps goes back to its seed and
  tries another path (its queries stay spent). On lenet1-int8-static at 10,000 queries the
  fitness term and restarts together took success from 80% to 91% (int8-qat 85% -> 91%,
  onnx-int8 89% -> 97% in tuning); about half of the seeds still unsolved stay unsolved at
  L-inf 96/255 too.
- One candidate per chain per step; all chains share one forward pass. Several candidates
  per chain (``compd-close``: 4) lower L2 by 10-20% for 2-4x the queries.
- A found trigger is shrunk: small squares around changed pixels are set back to the seed, or
  half way back, while the pair still deviates (4 candidates per round, the closest that still
  deviates kept; at most 16 rounds, ending after 4 rounds without progress; counted like any
  query).

Measured on 100 class-balanced seeds of six LeNet pairs (bench/RESULTS.md): on the three int8
PyTorch pairs (three seed sets), probes first, strict deviations for 94-100% of seeds at median
L2 1.71-1.93, 0.23-0.27x dflare's L2 for 0.01-0.02x its queries; on the black-box onnx-int8
pair, unjudged probes first, 97-100% at L2 1.85-2.17, 0.26-0.31x dflare's L2 for 0.02-0.03x its
queries; on prune90 and
distilled, guided, 100% at L2 1.45, 0.21-0.22x dflare's L2 for 0.31-0.33x its queries. The
int8 triggers are barely past the boundary: the original itself is nearly undecided there, and
none has both margins >= 0.2.

Measured and dropped: Metropolis-Hastings over DFLARE's operators plus patch nudges (the
previous engine; L2 6.7-7.1, as far from the seed as dflare); the fitness m_c - m_o (fewer
seeds solved); shrinking by reverting random halves of the change (L2 only 3.7 -> 3.3: a
deviation needs most of its change, it is a thin sliver next to the compressed model's
boundary).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from compd_core.errors import ModelLoadError, WhiteBoxRequiredError
from compd_core.models.pair import WhiteBoxPair
from compd_core.mutations.base import MixedMutation, MutationResult, mix_rows
from compd_core.mutations.squares import revert_square, square_step
from compd_core.search.criterion import log_margin
from compd_core.search.fitness import any_disagreement_gap, deviation_gap
from compd_core.search.results import Seed, SeedResult
from compd_core.search.strategies.base import SearchContext, Strategy
from compd_core.search.strategies.boundary import BoundaryProbe, ProbeParameters
from compd_core.search.strategies.engine import Chain, Engine, EngineSettings, chain_draws
from compd_core.search.strategies.guided import Guide, GuideParameters

GUIDED = "guided"  # the operator name of a guided step in chains and events
PROBE = "boundary_probe"  # the operator name of a boundary probe in chains and events
# Added to a chain's generator seed for its probes' own stream, so the square moves after them
# draw what they would draw without probes.
_PROBE_STREAM = 1 << 40
# Chains started between two steps when each start runs boundary probes (about 1 s per LeNet
# seed), so the first steps, events and triggers of a large run come within seconds.
_PROBING_STARTS_PER_STEP = 2


@dataclass(frozen=True)
class CompdParameters:
    """Tuning of the square search; defaults measured on the zoo's LeNet pairs."""

    start_levels: int = 16  # first eps, in grey levels: small changes are tried first
    growth: float = 1.5  # eps grows by this factor ...
    patience: int = 2  # ... after this many steps without progress
    max_side: int = 7  # largest square side of a search move
    shrink_side: int = 4  # largest square side of a shrinking move
    shrink_halve: float = 0.5  # share of shrinking moves that halve a square's change
    distance_weight: float = 0.3  # fitness penalty per unit of L2 distance to the seed
    original_weight: float = 0.1  # fitness reward for lowering the original's log-margin
    restart_after: int = 100  # steps without progress at full eps before a chain restarts (0: never)
    guide: GuideParameters = GuideParameters()  # gradient-guided first steps on exact white-box pairs
    probe: ProbeParameters | None = ProbeParameters()  # boundary probes where gradients are not exact (None: off)
    engine: EngineSettings = EngineSettings(shrink_rounds=16, shrink_patience=4)


class SquareProposer:
    """Proposes sparse square moves for searching chains and square reverts for shrinking ones;
    on a white-box pair a chain's first moves are guided steps (``guide``, exact stand-ins) or
    boundary probes (``probe``: an approximating compressed stand-in, or none beside a PyTorch
    original)."""

    def __init__(self, parameters: CompdParameters, guide: Guide | None = None,
                 probe: BoundaryProbe | None = None) -> None:
        self.parameters = parameters
        self.guide = guide
        self.probe = probe
        self._max_levels = 255

    @property
    def starts_per_step(self) -> int | None:
        return _PROBING_STARTS_PER_STEP if self.probe is not None else None

    def start(self, chain: Chain, context: SearchContext) -> None:
        budget = context.settings.max_linf
        self._max_levels = 255 if budget is None else max(1, int(budget * 255 + 1e-6))
        chain.memory["levels"] = float(min(self.parameters.start_levels, self._max_levels))
        chain.memory["stalled"] = 0
        if self.guide is not None:
            chain.memory["guide"] = self.guide.begin(chain.seed.image, chain.seed.label)
        elif self.probe is not None:
            stream = torch.Generator().manual_seed(chain.generator.initial_seed() + _PROBE_STREAM)
            found = self.probe.candidates(chain.seed.image, chain.seed.label, stream)
            chain.memory["probe"] = found if len(found) else None
            chain.memory["probed"] = 0

    def propose(self, chains: list[Chain], per_chain: int) -> MutationResult | MixedMutation:
        parents = torch.stack([c.image for c in chains]).repeat_interleave(per_chain, 0)
        seeds = torch.stack([c.seed.image for c in chains]).repeat_interleave(per_chain, 0)
        levels = torch.tensor([float(int(c.memory["levels"])) for c in chains]).repeat_interleave(per_chain)
        # Every chain draws for its squares, also in a guided or probing step: one draw per
        # move keeps the engine's look-ahead exact.
        squares = square_step(parents, seeds, levels / 255.0, chain_draws(chains, per_chain, 4),
                              self.parameters.max_side)
        guided = torch.tensor([c.memory.get("guide") is not None for c in chains]).repeat_interleave(per_chain)
        probing = torch.tensor([c.memory.get("probe") is not None for c in chains]).repeat_interleave(per_chain)
        if not (guided.any() or probing.any()):
            return squares
        parts = []
        if guided.any():
            rows = torch.nonzero(guided).flatten()
            states = [c.memory["guide"] for c in chains for _ in range(per_chain)]
            parts.append((rows, MutationResult(
                torch.stack([states[int(r)].candidate for r in rows]), GUIDED,
                {"radius": torch.tensor([states[int(r)].radius for r in rows])})))
        if probing.any():
            # A chain's probes are tried one per step, the same one for each of its rows (a
            # repeated candidate is one query).
            rows = torch.nonzero(probing).flatten()
            owners = [c for c in chains for _ in range(per_chain)]
            parts.append((rows, MutationResult(
                torch.stack([owners[int(r)].memory["probe"][0] for r in rows]), PROBE,
                {"rank": torch.tensor([owners[int(r)].memory["probed"] for r in rows])})))
        others = torch.nonzero(~(guided | probing)).flatten()
        return mix_rows(len(parents), [*parts, (others, _rows_of(squares, others))])

    def shrink(self, chains: list[Chain], per_chain: int) -> MutationResult:
        images = torch.stack([c.image for c in chains]).repeat_interleave(per_chain, 0)
        seeds = torch.stack([c.seed.image for c in chains]).repeat_interleave(per_chain, 0)
        return revert_square(images, seeds, chain_draws(chains, per_chain, 3), self.parameters.shrink_side,
                             self.parameters.shrink_halve)

    def worth_shrinking(self, operator: str) -> bool:
        """A guided step's trigger is spread thin over many pixels: reverting squares of it took
        median L2 from 1.48 to 1.45 on lenet5-prune90 for 64 more queries (30 seeds). A
        probe's trigger is as dense, and already the closest the stand-ins knew of."""
        return operator not in (GUIDED, PROBE)

    def fitness(self, context: SearchContext, probs_original: torch.Tensor,
                probs_compressed: torch.Tensor, labels: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
        if context.settings.criterion.kind == "any":
            gap = any_disagreement_gap(probs_original, probs_compressed, labels)
        else:
            gap = deviation_gap(probs_original, probs_compressed, labels)
            if self.parameters.original_weight:
                gap = gap + self.parameters.original_weight * log_margin(probs_original, labels)
        return gap + self.parameters.distance_weight * l2

    def observe(self, chain: Chain, improved: bool) -> bool:
        memory = chain.memory
        state = memory.get("guide")
        if state is not None and self.guide is not None:
            # The guided path does not depend on the answers; square moves take over from the
            # seed when it ends.
            memory["guide"] = self.guide.advance(state, chain.seed.image, chain.seed.label)
            return memory["guide"] is None
        probes = memory.get("probe")
        if probes is not None:
            # The next probe, whatever the pair answered; squares from the seed after the last.
            memory["probe"] = probes[1:] if len(probes) > 1 else None
            memory["probed"] += 1
            return memory["probe"] is None
        memory["stalled"] = 0 if improved else memory["stalled"] + 1
        at_full = memory["levels"] >= self._max_levels
        memory["stuck"] = 0 if improved or not at_full else memory.get("stuck", 0) + 1
        if memory["stalled"] >= self.parameters.patience:
            memory["levels"] = min(float(self._max_levels), memory["levels"] * self.parameters.growth)
            memory["stalled"] = 0
        restart = self.parameters.restart_after and memory["stuck"] >= self.parameters.restart_after
        if restart:
            memory["levels"] = float(min(self.parameters.start_levels, self._max_levels))
            memory["stalled"] = memory["stuck"] = 0
        return bool(restart)


class CompdStrategy(Strategy):
    name = "compd"
    description = ("gradient steps on float PyTorch pairs, boundary probes on other pairs with a "
                   "PyTorch original, then sparse squares grown from the seed and shrunk (this "
                   "project's engine)")

    def __init__(self, parameters: CompdParameters | None = None) -> None:
        self.parameters = parameters or CompdParameters()

    def run(self, context: SearchContext, seeds: Sequence[Seed]) -> Iterator[SeedResult]:
        modules = _white_box(context)
        guide = probe = None
        if modules is not None and modules.exact:
            if self.parameters.guide.steps > 0 and _differentiable(modules, context.pair.input_shape):
                guide = Guide(modules, self.parameters.guide, context.settings.criterion)
        else:
            probe = self._probe(context, modules)
        proposer = SquareProposer(self.parameters, guide, probe)
        yield from Engine(proposer, self.parameters.engine).run(context, seeds)

    def _probe(self, context: SearchContext, modules: WhiteBoxPair | None) -> BoundaryProbe | None:
        """Boundary probes judged by the compressed stand-in, or, for a black-box compressed
        model beside a PyTorch original, unjudged ones along the original's boundary."""
        parameters = self.parameters.probe
        if parameters is None or context.settings.criterion.kind == "any":
            return None
        original = modules.original if modules is not None else context.pair.original_module()
        if original is None or not parameters.active(judged=modules is not None):
            return None
        if not _differentiable(WhiteBoxPair(original, original), context.pair.input_shape, compressed=False):
            return None
        return BoundaryProbe(original, None if modules is None else modules.compressed, parameters,
                             context.settings.criterion)


def _white_box(context: SearchContext) -> WhiteBoxPair | None:
    """The pair's differentiable stand-ins when the criterion is strict, else None.

    Exact stand-ins (float PyTorch models: pruned, distilled) give guided steps; approximating
    ones (an int8 model's fake-quant twin, a float copy of bf16) give boundary probes, which use
    the compressed stand-in's forward pass only (see ``guided`` and ``boundary`` for why)."""
    if context.settings.criterion.kind == "any":
        return None
    try:
        return context.pair.white_box()
    except (WhiteBoxRequiredError, ModelLoadError):
        return None


def _differentiable(modules: WhiteBoxPair, input_shape: tuple[int, ...], compressed: bool = True) -> bool:
    """Whether gradients reach the input through the original (and, by default, the compressed)
    module: a scripted module may run kernels without any."""
    x = torch.zeros((1, *input_shape), requires_grad=True)
    wanted = (modules.original, modules.compressed) if compressed else (modules.original,)
    try:
        with torch.enable_grad():
            return all(bool(m(x).requires_grad) for m in wanted)
    except RuntimeError:
        return False


def _rows_of(result: MutationResult, rows: torch.Tensor) -> MutationResult:
    """The given rows of a batch, with their parameters."""
    columns = {key: column[rows] if isinstance(column, torch.Tensor) else column
               for key, column in result.columns.items()}
    return MutationResult(result.images[rows], result.operator, columns)


class CompdCloseStrategy(CompdStrategy):
    """``compd`` with four candidates per step and longer shrinking: closer, for more queries.

    Its guided steps (float pairs) propose the same candidate four times, which the engine
    counts as one query: the same triggers as ``compd``'s at the same queries
    (bench/RESULTS.md). Drawing the other three 15%, 30% and 45% closer to the seed found no
    closer triggers (lenet5-prune90, 30 seeds: L2 1.48 either way)."""

    name = "compd-close"
    description = "compd with 4 candidates per step and longer shrinking: closer triggers"

    def __init__(self, parameters: CompdParameters | None = None) -> None:
        super().__init__(parameters or CompdParameters(
            engine=EngineSettings(proposals=4, shrink_rounds=32, shrink_patience=8)))
