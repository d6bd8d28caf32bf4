"""One repair from start to finish: refuse what cannot be fine-tuned, split, train, judge, save.

The source pair is never modified: its cached, shared models are only read, and the model that
is trained is a deep copy rebuilt from the pair's files. A stop before the end leaves no new
pair and no record behind.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from compd_core.compress import get_recipe
from compd_core.compress.base import Compressed
from compd_core.compress.quantization import CALIBRATION_IMAGES
from compd_core.data.dataset import ImageDataset
from compd_core.data.resolve import load_dataset
from compd_core.errors import ConfigError, UnknownPairError, WhiteBoxRequiredError
from compd_core.models.pair import ModelPair
from compd_core.mutations import get_operators
from compd_core.repair.data import labelled, trigger_set
from compd_core.repair.evaluate import agreement_rate, research, test_numbers
from compd_core.repair.events import (
    EpochFinished,
    RepairFinished,
    RepairSink,
    ResearchProgress,
    StageStarted,
    no_repair_events,
)
from compd_core.repair.registry import SourcePair, new_pair_id, register_repaired_pair, source_pair
from compd_core.repair.report import RepairReport
from compd_core.repair.serving import served_form
from compd_core.repair.settings import RepairSettings
from compd_core.repair.split import split_triggers
from compd_core.repair.train import fine_tune
from compd_core.search.results import SeedResult
from compd_core.store import DEFAULT_SELECTION, RunRecord, Store
from compd_core.zoo import load_pair
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


class _Repair:
    """The state one repair carries between its stages."""

    def __init__(self, store: Store, run_id: str, settings: RepairSettings, selection: str | None,
                 emit: RepairSink, stop: threading.Event) -> None:
        self.store, self.settings, self.emit, self.stop = store, settings, emit, stop
        self.started = time.perf_counter()
        self.run = store.get_run(run_id)
        self.source = fine_tunable_source(self.run.pair)
        self.recipe = get_recipe(self.source.entry.compression)
        loaded = self.recipe.load(self.source.entry.arch, self.source.files)
        self.model: nn.Module = self.recipe.trainable(loaded)  # a deep copy: the pair stays as it is
        self.selection, chosen, self.results = chosen_triggers(store, run_id, selection)
        self.split = split_triggers([r.seed.position for r in chosen], settings.heldout_fraction,
                                    settings.seed)
        by_position = {r.seed.position: r for r in chosen}
        self.train = [by_position[p] for p in self.split.train]
        self.heldout = [by_position[p] for p in self.split.heldout]
        self.values: dict[str, Any] = {
            "run_id": run_id, "selection": self.selection, "pair_before": self.run.pair,
            "repaired_pair": None, "stopped": False, "triggers": len(chosen),
            "train_positions": list(self.split.train), "heldout_positions": list(self.split.heldout),
        }

    @staticmethod
    def _images(results: list[SeedResult]) -> torch.Tensor:
        return torch.stack([r.trigger.image for r in results])  # type: ignore[union-attr]

    def _pair_after(self, before: ModelPair, compressed: Compressed) -> ModelPair:
        return ModelPair(before.original, classifier_for(compressed, f"{self.run.pair} (repaired)", 0),
                         name=f"{self.run.pair} (repaired)")

    def _report(self, **changes: Any) -> RepairReport:
        self.values.update(changes, seconds=time.perf_counter() - self.started)
        return RepairReport(**self.values)

    def execute(self) -> RepairReport:
        s, emit = self.settings, self.emit
        before = load_pair(self.run.pair)
        train_images, heldout_images = self._images(self.train), self._images(self.heldout)
        clean_set = load_dataset(s.clean_dataset, before.input_shape, before.class_names)
        full_test, test_set = _test_set(s, self.run, [r.seed.index for r in self.train], before)
        emit(StageStarted("variants", f"{s.variants_per_trigger} variants around each of "
                          f"{len(self.train)} training triggers"))
        generator = torch.Generator().manual_seed(s.seed)
        references = torch.tensor([r.seed.label for r in self.train])
        made = trigger_set(before.original, train_images, references, s.variants_per_trigger,
                           s.variant_steps, get_operators(s.operators), generator)
        clean = labelled(before.original, clean_set.images)
        self.values.update(
            variants_made=made.variants_made, variants_kept=made.variants_kept,
            trigger_set_images=len(made.data), clean_images=len(clean),
            heldout_repaired_before=agreement_rate(before, heldout_images),
            train_repaired_before=agreement_rate(before, train_images),
        )
        calibration = clean_set.images[:CALIBRATION_IMAGES]
        losses: list[float] = []

        def on_epoch(epoch: int, loss: float) -> bool:
            losses.append(loss)
            pair = self._pair_after(before, served_form(self.recipe, self.model, calibration))
            emit(EpochFinished(epoch + 1, s.epochs, loss, agreement_rate(pair, train_images),
                               agreement_rate(pair, heldout_images)))
            return False  # no early stopping: the last epoch's model is the result

        emit(StageStarted("training", f"{s.epochs} epochs over {len(made.data)} trigger-set "
                          f"images mixed with {len(clean)} clean images"))
        completed = fine_tune(self.model, made.data, clean, s, on_epoch=on_epoch, stop=self.stop)
        self.values.update(epochs_run=len(losses), final_loss=losses[-1] if losses else None)
        if not completed:
            return self._report(stopped=True)

        emit(StageStarted("evaluating", "held-out and training triggers, test split"))
        repaired = served_form(self.recipe, self.model, calibration)
        after = self._pair_after(before, repaired)
        test_before, test_after = test_numbers(before, test_set), test_numbers(after, test_set)
        self.values.update(
            heldout_repaired_rate=agreement_rate(after, heldout_images),
            train_repaired_rate=agreement_rate(after, train_images),
            test_images=test_before.images, accuracy_original=test_before.accuracy_original,
            accuracy_before=test_before.accuracy_compressed,
            accuracy_after=test_after.accuracy_compressed,
            disagreements_before=test_before.disagreements,
            disagreements_after=test_after.disagreements,
        )
        if s.research and not self._research(before, after):
            return self._report(stopped=True)
        if self.stop.is_set():
            return self._report(stopped=True)

        emit(StageStarted("saving", "registering the repaired pair in the user zoo"))
        report = self._report()
        extra = {"run_id": self.run.id, "selection": self.selection,
                 "heldout_repaired_rate": report.heldout_repaired_rate,
                 "train_triggers": len(self.train), "heldout_triggers": len(self.heldout)}
        pair_id = register_repaired_pair(self.source, repaired, new_pair_id(self.run.pair, self.run.id),
                                         full_test, extra).id
        report = self._report(repaired_pair=pair_id)
        repair_id = self.store.save_repair(self.run.id, self.selection, self.run.pair, pair_id,
                                           s, report)
        report = replace(report, repair_id=repair_id)
        emit(RepairFinished(report))
        return report

    def _research(self, before: ModelPair, after: ModelPair) -> bool:
        """Search the seeds not trained on, on both pairs; False when stopped."""
        s, trained = self.settings, set(self.split.train)
        seeds = [r.seed for r in self.results if r.seed.position not in trained]
        budget = s.research_max_queries or self.run.settings.max_queries
        settings = replace(self.run.settings, max_queries=budget)
        numbers = {}
        for phase, pair in (("before", before), ("after", after)):
            self.emit(StageStarted(f"research-{phase}",  # type: ignore[arg-type]
                                   f"{self.run.strategy} on {len(seeds)} seeds, {budget} queries each"))
            numbers[phase] = research(
                pair, self.run.strategy, seeds, settings, self.run.rng_seed, self.stop,
                on_seed=lambda done, found, p=phase: self.emit(
                    ResearchProgress(p, done, len(seeds), found)),  # type: ignore[arg-type]
            )
            if self.stop.is_set():
                return False
        self.values.update(
            research_strategy=self.run.strategy, research_seeds=len(seeds),
            research_max_queries=budget,
            research_success_before=numbers["before"].success_rate,
            research_success_after=numbers["after"].success_rate,
            research_median_queries_before=numbers["before"].median_queries,
            research_median_queries_after=numbers["after"].median_queries,
            research_queries_per_trigger_before=numbers["before"].queries_per_trigger,
            research_queries_per_trigger_after=numbers["after"].queries_per_trigger,
        )
        return True


def repair_run(
    store: Store,
    run_id: str,
    settings: RepairSettings | None = None,
    selection: str | None = None,
    *,
    emit: RepairSink = no_repair_events,
    stop: threading.Event | None = None,
) -> RepairReport:
    """Fine-tune the compressed model of a run's pair on its chosen triggers (see module doc).

    Refuses a black-box compressed model before any work. Returns the report; when the repair
    finishes, the new pair is in the user zoo and the report in ``store``.
    """
    job = _Repair(store, run_id, settings or RepairSettings(), selection, emit,
                  stop or threading.Event())
    return job.execute()
