"""One repair from start to finish: refuse what cannot be fine-tuned, split, train, judge, save.

The source pair is never modified: its cached, shared models are only read, and the model that
is trained is a deep copy rebuilt from the pair's files. A stop before the end leaves no new
pair and no record behind. What is learned from: the training part of the chosen triggers,
more deviations mined on the training split, label-preserving variants of both, and the
original as teacher on clean and corrupted training digits. What picks the epoch: validation
parts of those, never the held-out triggers. What judges it: the held-out triggers, clean and
corrupted test data, the run's search and the deviation profile, before and after.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from compd_core.compress import get_recipe
from compd_core.compress.base import Compressed, Recipe, loaded_from_bytes, saved_bytes
from compd_core.compress.quantization import CALIBRATION_IMAGES, decision_range, head_step, narrow_head_grid
from compd_core.data.dataset import ImageDataset
from compd_core.data.resolve import load_dataset
from compd_core.events import EventSink, ended, no_events, with_progress
from compd_core.errors import ConfigError, UnknownPairError, WhiteBoxRequiredError
from compd_core.models.pair import ModelPair
from compd_core.mutations import get_operators
from compd_core.repair.checkpoint import BestCheckpoint, ValidationCounts, ValidationSet, blended
from compd_core.repair.data import (
    corrupted_copies,
    every_corruption,
    labelled,
    probabilities,
    trigger_set,
)
from compd_core.repair.evaluate import (
    agreement_rate,
    deviation_share,
    disagreements,
    research,
    test_numbers,
    unrepaired_margin,
)
from compd_core.repair.events import EpochFinished, RepairProgress, ResearchProgress, StageStarted
from compd_core.models.adapters import TorchClassifier
from compd_core.repair.mining import mine_triggers
from compd_core.repair.own_files import TorchScriptFile, fine_tunable_file, save_repaired_file
from compd_core.repair.registry import SourcePair, new_pair_id, register_repaired_pair, source_pair
from compd_core.repair.report import RepairReport
from compd_core.repair.serving import served_form
from compd_core.repair.settings import RepairSettings, for_compression, on_run_dataset
from compd_core.repair.split import split_triggers
from compd_core.repair.train import fine_tune
from compd_core.repair.verdict import judge
from compd_core.search.results import SeedResult
from compd_core.store import DEFAULT_SELECTION, RunRecord, Store
from compd_core.zoo.loading import classifier_for

ALL_TRIGGERS = "all"


def fine_tunable_source(pair_id: str) -> SourcePair:
    """The zoo entry of a pair whose compressed model repair can train, or a plain refusal."""
    try:
        source = source_pair(pair_id)
    except UnknownPairError as exc:
        raise UnknownPairError(
            f"{exc}. Repair rebuilds the compressed model from a zoo pair's weights and recipe, "
            "so it can repair only pairs listed by `compd zoo list`"
        ) from exc
    recipe = get_recipe(source.entry.compression)
    if not recipe.white_box:
        raise WhiteBoxRequiredError(
            f"{pair_id} cannot be repaired: its compressed model ({source.entry.compression}) is a "
            "black box, which can be searched but not fine-tuned here. Repair needs a PyTorch "
            "compressed model (int8 static, QAT or dynamic, pruned, distilled or bf16); repair "
            "the PyTorch pair it was made from instead"
        )
    return source


def fine_tunable(run: RunRecord) -> tuple[Recipe, Compressed, SourcePair | None]:
    """What repair trains for a run: a zoo pair's recipe and weights, or the user's own
    TorchScript file (no zoo entry); anything else is refused in plain words before any work."""
    spec = run.pair_source()
    if spec.is_zoo:
        source = fine_tunable_source(run.pair)
        recipe = get_recipe(source.entry.compression)
        return recipe, recipe.load(source.entry.arch, source.files), source
    spec.changed_files()  # a model file that is gone is refused; a changed one is warned of
    return TorchScriptFile(), fine_tunable_file(spec, spec.load()), None


def chosen_triggers(
    store: Store, run_id: str, selection: str | None
) -> tuple[str, list[SeedResult], list[SeedResult]]:
    """(selection name, chosen results with triggers, every seed result of the run).

    No name: the run's default hand-picked selection, or every trigger when there is none.
    A name that does not exist is an error rather than a silent "all".
    """
    results = store.load_results(run_id, details=False)
    if selection is None:
        positions = set(store.get_selection(run_id, DEFAULT_SELECTION))
        name = DEFAULT_SELECTION if positions else ALL_TRIGGERS
    else:
        positions = set(store.get_selection(run_id, selection))
        if not positions:
            known = ", ".join(store.list_selections(run_id)) or "none"
            raise ConfigError(
                f"run {run_id} has no selection named {selection!r} (its selections: {known}); "
                "leave the selection out to repair on every trigger of the run"
            )
        name = selection
    chosen = [r for r in results if r.found and (not positions or r.seed.position in positions)]
    return name, chosen, results


def _test_set(
    settings: RepairSettings, run: RunRecord, exclude: list[int], pair: ModelPair
) -> tuple[ImageDataset, ImageDataset]:
    """(full test split, test split without the training triggers' seed images)."""
    full = load_dataset(settings.test_dataset, pair.input_shape, pair.class_names)
    if run.dataset != settings.test_dataset:
        return full, full
    keep = ~torch.isin(full.indices, torch.tensor(exclude, dtype=torch.long))
    return full, full.subset(torch.nonzero(keep).flatten())


RegisterWhen = Literal["if-better", "always", "never"]
REGISTER_CHOICES: tuple[str, ...] = ("if-better", "always", "never")
VALIDATION_IMAGES = 5000  # clean training digits kept out to pick the epoch (a fifth at most)
TEACHER_SEVERITIES = (1, 2, 3)  # shifts a digit survives; stronger ones blur what the original means
TEST_SEVERITY = 3  # the middle of characterize's five: every corruption once per test image


def _validation_split(count: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit rows, validation rows) of ``count`` items; no validation part below 4 items, where
    taking one away would leave too little to learn from."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    size = round(count * fraction) if count >= 4 else 0
    return order[size:].sort().values, order[:size].sort().values


# what a repair leaves behind when it moves to another process (see Repair.__getstate__)
_LEFT_BEHIND = frozenset({"store", "emit", "stop", "model", "results", "train", "heldout",
                          "_full_test", "_repaired"})


class Repair:
    """One repair of a run's chosen triggers: ``execute`` trains and judges it, ``register``
    adds the result to the user zoo (on its own when the user confirms a worse repair)."""

    def __init__(self, store: Store, run_id: str, settings: RepairSettings | None = None,
                 selection: str | None = None, *, emit: EventSink = no_events,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings or RepairSettings()
        self.store = store
        self.stop = stop or threading.Event()
        self.started = time.perf_counter()
        self.run = store.get_run(run_id)
        self.settings = on_run_dataset(self.settings, self.run.dataset)
        self.spec = self.run.pair_source()
        self.recipe, loaded, self.source = fine_tunable(self.run)
        self.settings = for_compression(self.settings, self.recipe.kind)
        self.emit = with_progress(emit, RepairProgress(self.settings.epochs))
        self.model: nn.Module = self.recipe.trainable(loaded)  # a deep copy: the pair stays as it is
        self.selection, chosen, self.results = chosen_triggers(store, run_id, selection)
        self.split = split_triggers([r.seed.position for r in chosen],
                                    self.settings.heldout_fraction, self.settings.seed)
        by_position = {r.seed.position: r for r in chosen}
        self.train = [by_position[p] for p in self.split.train]
        self.heldout = [by_position[p] for p in self.split.heldout]
        self.values: dict[str, Any] = {
            "run_id": run_id, "selection": self.selection, "pair_before": self.run.pair,
            "repaired_pair": None, "stopped": False, "triggers": len(chosen),
            "train_positions": list(self.split.train), "heldout_positions": list(self.split.heldout),
            "learning_rate": self.settings.lr, "change_scales": list(self.settings.change_scales or ()),
        }
        self.report: RepairReport | None = None
        self._repaired: Compressed | None = None
        self._full_test: ImageDataset | None = None

    def _narrow_head(self, images: torch.Tensor) -> nn.Module | None:
        """Narrow the int8 head's output grid of the model to train to where its argmax is
        decided on ``images``; returns the model as it was (None when its head output is not
        quantized), for when the narrowed grid alone adds disagreements."""
        span = decision_range(self.model, images)
        if span is None:
            return None
        as_served = copy.deepcopy(self.model)
        step_before = head_step(self.model)
        step, _ = narrow_head_grid(self.model, *span)
        self.values.update(head_range=[round(v, 4) for v in span], head_step_before=step_before,
                           head_step_after=step)
        return as_served

    def _pair_after(self, before: ModelPair, compressed: Compressed) -> ModelPair:
        name = f"{self.run.pair} (repaired)"
        if self.source is None:  # own files: the input shape and classes are the pair's own
            repaired = TorchClassifier(compressed.served, replace(before.compressed.info, name=name))  # type: ignore[arg-type]
        else:
            repaired = classifier_for(compressed, name, 0, before.class_names)
        return ModelPair(before.original, repaired, name=name)

    def _report(self, **changes: Any) -> RepairReport:
        self.values.update(changes, seconds=time.perf_counter() - self.started)
        return RepairReport(**self.values)

    def _stopped(self) -> RepairReport:
        self.report = self._report(stopped=True)
        self.emit(ended("repair", self.report.to_dict(), stopped=True,
                        line=f"nothing registered; run {self.run.id}, its triggers and pair "
                             f"{self.run.pair} are as they were"))
        return self.report

    def _finished(self, report: RepairReport) -> RepairReport:
        kept = (f"registered as {report.repaired_pair}" if report.registered
                else "not registered")
        self.emit(ended("repair", report.to_dict(), stopped=False,
                        line=f"repaired {self.run.pair} on run {self.run.id}: {report.verdict}, {kept}"))
        return report

    def execute(self, register: RegisterWhen = "if-better") -> RepairReport:
        """Mine, train, pick the epoch, judge; register as ``register`` says. A stop at any
        point returns a report with ``stopped`` set and leaves nothing behind."""
        if register not in REGISTER_CHOICES:
            raise ConfigError(f"register must be one of {', '.join(REGISTER_CHOICES)}, got {register!r}")
        s, emit = self.settings, self.emit
        before = self.spec.load()
        shape = before.input_shape
        original = before.original
        train_images, heldout_images = _images(self.train, shape), _images(self.heldout, shape)
        clean_all = load_dataset(s.clean_dataset, shape, before.class_names)
        self._full_test, test_set = _test_set(s, self.run, [r.seed.index for r in self.train], before)

        user_fit, user_val = _validation_split(len(self.train), s.validation_fraction, s.seed)
        clean_order = torch.randperm(len(clean_all), generator=torch.Generator().manual_seed(s.seed))
        held_back = min(VALIDATION_IMAGES, len(clean_all) // 5) if s.validation_fraction > 0 else 0
        clean_val, clean_fit = clean_all.subset(clean_order[:held_back]), clean_all.subset(clean_order[held_back:])

        emit(StageStarted("mining", f"searching {s.mined_seeds} training digits for more deviations"))
        mined = mine_triggers(before, clean_fit, s.mined_seeds,
                              replace(self.run.settings, max_queries=s.mine_queries), s.seed, self.stop)
        if self.stop.is_set():
            return self._stopped()
        mined_images = _images(mined, shape)
        mined_fit, mined_val = _validation_split(len(mined), s.validation_fraction, s.seed + 1)
        fit_results = [self.train[i] for i in user_fit.tolist()] + [mined[i] for i in mined_fit.tolist()]

        emit(StageStarted("variants", f"{s.variants_per_trigger} variants and "
                          f"{len(s.change_scales)} scaled changes around each of "
                          f"{len(fit_results)} training triggers"))
        made = trigger_set(original, _images(fit_results, shape), _images(fit_results, shape, of_seed=True),
                           torch.tensor([r.seed.label for r in fit_results], dtype=torch.long),
                           s.variants_per_trigger, s.variant_steps, get_operators(s.operators),
                           torch.Generator().manual_seed(s.seed), s.change_scales)
        teacher = labelled(original, torch.cat([
            clean_fit.images, corrupted_copies(clean_fit.images, TEACHER_SEVERITIES, s.seed)]))
        val_triggers = torch.cat([train_images[user_val], mined_images[mined_val]])
        val_corrupted = every_corruption(clean_val.images, TEST_SEVERITY, s.seed + 1)
        validation = ValidationSet(val_triggers, probabilities(original, val_triggers).argmax(1),
                                   clean_val.images, probabilities(original, clean_val.images).argmax(1),
                                   val_corrupted, probabilities(original, val_corrupted).argmax(1))
        self.values.update(
            validation_triggers=len(user_val), mined_triggers=len(mined),
            variants_made=made.variants_made, variants_kept=made.variants_kept,
            trigger_set_images=len(made.data), clean_images=len(teacher),
            validation_images=len(clean_val) + len(val_corrupted),
            heldout_repaired_before=agreement_rate(before, heldout_images),
            train_repaired_before=agreement_rate(before, train_images),
        )
        calibration = clean_all.images[:CALIBRATION_IMAGES]  # the zoo build's calibration digits
        arch = self.source.entry.arch if s.recalibrate and self.source is not None else None
        best, losses = BestCheckpoint(s.checkpoint if s.validation_fraction > 0 else "last", s.rank_by), []
        self.values.update(rank_by=s.rank_by if best.rule != "last" else None)  # "last" ranks nothing

        def served_pair() -> ModelPair:
            return self._pair_after(before, served_form(self.recipe, self.model, calibration, arch))

        def served_counts() -> tuple[ModelPair, ValidationCounts]:
            served = served_pair()
            return served, validation.counts(served.compressed)

        as_served = self._narrow_head(teacher.images) if s.head_grid and arch is None else None
        grid_alone = served_counts() if as_served is not None else None  # epoch 0's, judged once
        if grid_alone is not None and grid_alone[1].adds_disagreements_to(
                validation.counts(before.compressed)):  # the grid alone is worse: train the served one
            self.model, grid_alone = as_served, None
            self.values.update(head_range=None, head_step_after=None, head_grid_dropped=True)
        start = copy.deepcopy(self.model.state_dict())
        shares = s.blend_shares if best.rule != "last" else ()

        def judge_epoch(epoch: int, loss: float,
                        judged: tuple[ModelPair, ValidationCounts] | None = None) -> bool:
            served, counts = judged or served_counts()
            best.offer(epoch, counts, self.model)
            trained = copy.deepcopy(self.model.state_dict()) if epoch > 0 and shares else None
            for share in shares if trained is not None else ():
                self.model.load_state_dict(blended(start, trained, share))
                best.consider(epoch, served_pair().compressed, validation, self.model, share)
            if trained is not None:
                self.model.load_state_dict(trained)
            emit(EpochFinished(epoch, s.epochs, loss, agreement_rate(served, train_images),
                               agreement_rate(served, heldout_images), counts.total, best.epoch))
            return False  # every epoch runs: the cosine schedule anneals to the end

        judge_epoch(0, math.nan, grid_alone)
        emit(StageStarted("training", f"{s.epochs} epochs over {len(made.data)} trigger-set "
                          f"images mixed with {len(teacher)} teacher images"))

        def on_epoch(epoch: int, loss: float) -> bool:
            losses.append(loss)
            return judge_epoch(epoch + 1, loss)

        completed = fine_tune(self.model, made.data, teacher, s, on_epoch=on_epoch, stop=self.stop)
        narrowed = self.values.get("head_range") is not None
        self.values.update(epochs_run=len(losses), final_loss=losses[-1] if losses else None,
                           best_epoch=best.epoch, best_share=best.share)
        if not completed:
            return self._stopped()

        emit(StageStarted("evaluating", "held-out and training triggers, clean and corrupted test data"))
        best.restore(self.model)
        self._repaired = served_form(self.recipe, self.model, calibration, arch)
        after = self._pair_after(before, self._repaired)
        test_before, test_after = test_numbers(before, test_set), test_numbers(after, test_set)
        corrupted = every_corruption(test_set.images, TEST_SEVERITY, s.seed)
        self.values.update(
            heldout_repaired_rate=agreement_rate(after, heldout_images),
            heldout_unrepaired_margin=unrepaired_margin(after, heldout_images),
            train_repaired_rate=agreement_rate(after, train_images),
            test_images=test_before.images, accuracy_original=test_before.accuracy_original,
            accuracy_before=test_before.accuracy_compressed,
            accuracy_after=test_after.accuracy_compressed,
            disagreements_before=test_before.disagreements,
            disagreements_after=test_after.disagreements,
            corrupted_images=len(corrupted),
            corrupted_disagreements_before=disagreements(before, corrupted),
            corrupted_disagreements_after=disagreements(after, corrupted),
        )
        unchanged = best.epoch == 0 and not narrowed
        if s.research and not self._research(before, after, unchanged=unchanged):
            return self._stopped()
        if self.stop.is_set():
            return self._stopped()
        verdict = judge(
            s, heldout_repaired=self.values["heldout_repaired_rate"],
            accuracy_before=test_before.accuracy_compressed,
            accuracy_after=test_after.accuracy_compressed,
            disagreements_before=test_before.disagreements,
            disagreements_after=test_after.disagreements,
            corrupted_before=self.values["corrupted_disagreements_before"],
            corrupted_after=self.values["corrupted_disagreements_after"],
            unchanged=unchanged,
        )
        report = self.report = self._report(verdict=verdict.outcome,
                                            verdict_reasons=list(verdict.reasons))
        if register == "always" or (register == "if-better" and verdict.better):
            report = self.register()
        return self._finished(report)

    def release(self) -> None:
        """Let go of everything but what ``register`` needs (the repaired model and the report):
        the triggers' images, the trainable copy, the test split (reloaded on registering)."""
        self.results, self.train, self.heldout = [], [], []
        self.model = nn.Module()
        self._full_test = None

    def __getstate__(self) -> dict[str, Any]:
        """What a repair takes to another process (a Ray worker's repair to the server that
        registers it): what ``release`` keeps, without store, event sink or stop signal, and
        its repaired model as the files its recipe saves (modules of some recipes do not
        pickle)."""
        state = {k: v for k, v in self.__dict__.items() if k not in _LEFT_BEHIND}
        state["_repaired_files"] = (None if self._repaired is None
                                    else saved_bytes(self.recipe, self._repaired))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files = state.pop("_repaired_files")
        self.__dict__.update(state)
        self.store, self.emit, self.stop = None, no_events, threading.Event()  # type: ignore[assignment]
        self.model, self._full_test = nn.Module(), None
        self.results, self.train, self.heldout = [], [], []
        self._repaired = None if files is None else loaded_from_bytes(
            self.recipe, self.source.entry.arch if self.source is not None else "", files)

    def attach(self, store: Store, emit: EventSink = no_events) -> None:
        """Give a repair that came from another process (or whose store was closed) the store
        ``register`` writes to and the sink its last events go to."""
        self.store, self.emit = store, with_progress(emit, RepairProgress(self.settings.epochs))

    def register(self) -> RepairReport:
        """Add the repaired model to the user zoo as a new pair and store the report."""
        if self.report is None or self._repaired is None:
            raise ConfigError("there is no finished repair to register; run the repair to its end first")
        if self._full_test is None:
            pair = self.spec.load()
            self._full_test = load_dataset(self.settings.test_dataset, pair.input_shape,
                                           pair.class_names)
        if self.report.registered:
            return self.report
        self.emit(StageStarted("saving", "registering the repaired pair in the user zoo"))
        if self.source is None:
            stem = Path(self.spec.compressed or "model").stem
            repaired = save_repaired_file(self._repaired, self.spec,
                                          new_pair_id(stem, self.run.id))
            pair_id = repaired.compressed or ""
        else:
            pair_id = new_pair_id(self.run.pair, self.run.id)
        report = replace(self.report, repaired_pair=pair_id, registered=True)
        extra = {"run_id": self.run.id, "selection": self.selection, "verdict": report.verdict,
                 "heldout_repaired_rate": report.heldout_repaired_rate,
                 "train_triggers": len(self.split.train), "heldout_triggers": len(self.split.heldout)}
        if self.source is not None:
            register_repaired_pair(self.source, self._repaired, pair_id, self._full_test, extra)
        repair_id = self.store.save_repair(self.run.id, self.selection, self.run.pair, pair_id,
                                           self.settings, report)
        self.report = replace(report, repair_id=repair_id)
        return self.report

    def _research(self, before: ModelPair, after: ModelPair, unchanged: bool) -> bool:
        """The run's search and the deviation profile on the seeds not trained on, on both
        pairs; False when stopped. A model kept as it was answers as before, and the search is
        deterministic, so its numbers are the ones before and it is not searched twice."""
        s, trained = self.settings, set(self.split.train)
        seeds = [r.seed for r in self.results if r.seed.position not in trained]
        budget = s.research_max_queries or self.run.settings.max_queries
        settings = replace(self.run.settings, max_queries=budget)
        numbers, shares = {}, {}
        for phase, pair in (("before", before),) if unchanged else (("before", before), ("after", after)):
            self.emit(StageStarted(f"research-{phase}",  # type: ignore[arg-type]
                                   f"{self.run.strategy} on {len(seeds)} seeds, {budget} queries each"))
            numbers[phase] = research(
                pair, self.run.strategy, seeds, settings, self.run.rng_seed, self.stop,
                on_seed=lambda done, found, p=phase: self.emit(
                    ResearchProgress(p, done, len(seeds), found)),  # type: ignore[arg-type]
            )
            shares[phase] = deviation_share(pair, seeds, s.profile_budget, s.profile_queries,
                                            self.run.rng_seed, self.stop, self.run.settings.criterion)
            if self.stop.is_set():
                return False
        if unchanged:
            numbers["after"], shares["after"] = numbers["before"], shares["before"]
        self.values.update(
            research_strategy=self.run.strategy, research_seeds=len(seeds),
            research_max_queries=budget,
            research_success_before=numbers["before"].success_rate,
            research_success_after=numbers["after"].success_rate,
            research_median_queries_before=numbers["before"].median_queries,
            research_median_queries_after=numbers["after"].median_queries,
            research_queries_per_trigger_before=numbers["before"].queries_per_trigger,
            research_queries_per_trigger_after=numbers["after"].queries_per_trigger,
            profile_linf=s.profile_budget / 255, profile_seeds=len(seeds),
            profile_share_before=shares["before"], profile_share_after=shares["after"],
        )
        return True


def _images(results: list[SeedResult], shape: tuple[int, int, int], of_seed: bool = False) -> torch.Tensor:
    """The results' triggers (or their seeds) as one batch of ``shape`` images."""
    if not results:
        return torch.empty((0, *shape))
    return torch.stack([(r.seed.image if of_seed else r.trigger.image).reshape(shape)  # type: ignore[union-attr]
                        for r in results])


def repair_run(
    store: Store,
    run_id: str,
    settings: RepairSettings | None = None,
    selection: str | None = None,
    *,
    emit: EventSink = no_events,
    stop: threading.Event | None = None,
    register: RegisterWhen = "if-better",
) -> RepairReport:
    """Fine-tune the compressed model of a run's pair on its chosen triggers (see module doc).

    Refuses a black-box compressed model before any work. Returns the report; the repaired
    pair is added to the user zoo (and the report to ``store``) as ``register`` says: by
    default only when the verdict is "better".
    """
    return Repair(store, run_id, settings, selection, emit=emit, stop=stop).execute(register)
