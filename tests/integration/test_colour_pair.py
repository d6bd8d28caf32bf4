"""A colour pair end to end: a small CNN trained on real photo patches (3x32x32) and its
bfloat16 copy made by the project's own recipe, wrapped as a ``ModelPair``. The ``compd``
search stores what it finds, the export writes RGB PNGs that still deviate when read back,
characterize runs a cell on it, and the engine's chain cap changes how fast, not what.

The photos are scikit-image's ``astronaut`` (public domain, NASA), ``chelsea`` (CC0, Stefan van
der Walt), ``coffee`` (CC0, Rachel Michetti) and scikit-learn's ``china`` and ``flower``
(CC BY 2.0); see tests/colour_support.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from colour_support import PATCH_CLASSES, photo_patches
from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.characterize import CORRUPTIONS, characterize, corruption_seed
from compd_core.compress import BFloat16
from compd_core.compress.training import TrainSettings, accuracy, train
from compd_core.data.dataset import ImageDataset
from compd_core.export import export_run
from compd_core.models.adapters import TorchClassifier
from compd_core.models.base import ModelInfo
from compd_core.models.pair import ModelPair
from compd_core.search.events import SeedFinished, SeedStarted
from compd_core.search.results import ExitReason
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from own_pair_support import compd
from replay_support import assert_strict_replay

SHAPE = (3, 32, 32)
SEEDS = 12
BUDGET = 1000  # queries per seed
SETTINGS = SearchSettings(max_queries=BUDGET)


def _small_cnn() -> nn.Module:
    """Two conv stages and a linear head for 3x32x32 inputs, seeded weights."""
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, len(PATCH_CLASSES)),
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model


def _info(name: str) -> ModelInfo:
    return ModelInfo(name, SHAPE, len(PATCH_CLASSES), PATCH_CLASSES, "torch")


@pytest.fixture(scope="module")
def dataset() -> ImageDataset:
    images, labels = photo_patches()
    return ImageDataset(images, labels, PATCH_CLASSES, "photo-patches")


@pytest.fixture(scope="module")
def models(dataset: ImageDataset) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(original, served bf16 copy, its float stand-in); about 3 s of training."""
    original = _small_cnn()
    train(original, dataset.images, dataset.labels,
          TrainSettings(epochs=6, batch_size=32, seed=0, shift_pixels=0))
    assert accuracy(original, dataset.images, dataset.labels) > 0.5  # 5 classes: chance is 0.2
    compressed = BFloat16().compress(original, "small-cnn", dataset.images, dataset.labels, 0)
    return original, compressed.served, compressed.standin


def _pair(models, max_batch: int | None = None) -> ModelPair:
    original, served, standin = models
    return ModelPair(TorchClassifier(original, _info("cnn")),
                     TorchClassifier(served, _info("cnn-bf16"), standin=standin),
                     name="cnn-bf16", max_batch=max_batch)


def _spec() -> CampaignSpec:
    return CampaignSpec(pair="cnn-bf16", strategy="compd", seeds=SEEDS, settings=SETTINGS,
                        dataset="photo-patches")


def test_colour_search_is_stored_and_exported_as_rgb_pngs_that_still_deviate(
    models, dataset, tmp_path
) -> None:
    pair = _pair(models)
    assert pair.max_batch == 256  # 3x32x32 stays under the float budget at the usual batch
    store = Store(tmp_path / "compd.sqlite")
    summary = run_campaign(_spec(), store, pair=pair, dataset=dataset)
    results = store.load_results(summary.run_id)
    assert summary.seeds == len(results) == SEEDS
    found = [r for r in results if r.found]
    # Measured: 1 of the 12 seeds deviates within 1,000 queries at L-inf 64/255.
    assert found, "no seed deviated: the search no longer finds the measured colour trigger"
    for result in results:
        assert result.seed.image.shape == SHAPE
        if result.trigger is None:
            assert result.exit_reason is ExitReason.QUERY_BUDGET and result.queries == BUDGET
    assert_strict_replay(pair, SETTINGS.criterion, found)
    for result in found:
        assert result.trigger.image.shape == SHAPE
        assert result.trigger.linf <= 64 / 255 + 1e-6

    export_run(store, summary.run_id, tmp_path / "out", formats={"png", "csv"})
    for result in results:
        with Image.open(tmp_path / "out" / "png" / f"seed_{result.seed.position}.png") as seed_png:
            assert seed_png.mode == "RGB" and seed_png.size == (32, 32)
    read_back = []
    for result in found:
        with Image.open(tmp_path / "out" / "png" / f"trigger_{result.seed.position}.png") as png:
            assert png.mode == "RGB"
            read_back.append(torch.from_numpy(np.array(png)).permute(2, 0, 1).float() / 255)
    images = torch.stack(read_back)
    assert torch.equal(images, torch.stack([r.trigger.image for r in found]))
    replay = pair.predict(images)
    labels = torch.tensor([r.seed.label for r in found])
    seeds = torch.stack([r.seed.image for r in found])
    assert bool(SETTINGS.criterion.met(replay.original, replay.compressed, labels, images,
                                       seeds).all())
    store.close()


def test_fewer_chains_at_once_give_the_same_search(models, dataset) -> None:
    """With max_batch 3 the engine never runs more than 3 seeds at once, and every seed's
    search (queries, trigger) is the same as with more together (on this pair the engine
    starts probing chains two per step, so not all 12 run at once either way)."""
    runs = {}
    for max_batch in (None, 3):
        finished, live, most = [], 0, 0

        def watch(event, finished=finished) -> None:
            nonlocal live, most
            if isinstance(event, SeedStarted):
                live += 1
                most = max(most, live)
            elif isinstance(event, SeedFinished):
                live -= 1
                finished.append(event.result)

        run_campaign(_spec(), pair=_pair(models, max_batch), dataset=dataset, emit=watch)
        runs[max_batch] = (most, {r.seed.position: r for r in finished})
    assert runs[None][0] > 3 and runs[3][0] == 3
    wide, narrow = runs[None][1], runs[3][1]
    assert sorted(wide) == sorted(narrow) == list(range(SEEDS))
    for position, result in narrow.items():
        twin = wide[position]
        assert (result.queries, result.found) == (twin.queries, twin.found)
        if result.found:
            assert torch.equal(result.trigger.image, twin.trigger.image)


def test_characterize_runs_a_cell_on_the_colour_pair(models, dataset) -> None:
    pair = _pair(models)
    report = characterize(pair, dataset, corruptions=["gaussian_noise"], severities=[3], seed=4)
    assert report.complete and len(report.cells) == 1
    cell = report.cells[0]
    assert (cell.corruption, cell.severity, cell.n) == ("gaussian_noise", 3, len(dataset))
    # The same corruption made by hand gives the same disagreements.
    generator = torch.Generator().manual_seed(corruption_seed(4, "gaussian_noise"))
    shifted = CORRUPTIONS["gaussian_noise"].apply(dataset.images, 3, generator)
    assert shifted.shape == dataset.images.shape
    assert int(pair.predict(shifted).disagree.sum()) == cell.disagreements
    assert report.clean.n == len(dataset)


class _Bf16Inside(nn.Module):
    """A bfloat16 model behind a float32 interface, as one exported file: the adapters feed a
    program its first parameter's dtype, so a float32 one (an exact 1.0) comes first."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.unit = nn.Parameter(torch.ones(()), requires_grad=False)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x * self.unit).to(torch.bfloat16)).float()


def test_the_command_line_searches_and_exports_a_colour_pair_given_as_files(
    models, dataset, tmp_path
) -> None:
    """torch.export files and an .npz of colour patches, through `compd search` and
    `compd runs export`: the same search as in Python, RGB PNGs out."""
    original, served, _ = models
    batch = torch.export.Dim("batch", min=1)
    files = {}
    for name, model in (("original", original), ("bf16", _Bf16Inside(served))):
        program = torch.export.export(model.eval(), (torch.zeros(2, *SHAPE),),
                                      dynamic_shapes=({0: batch},))
        files[name] = tmp_path / f"{name}.pt2"
        torch.export.save(program, files[name])
    data = tmp_path / "patches.npz"
    pixels = torch.round(dataset.images * 255).to(torch.uint8).numpy()
    np.savez(data, x=pixels, y=dataset.labels.numpy())
    db = tmp_path / "compd.sqlite"
    done = compd("search", "--original", files["original"], "--compressed", files["bf16"],
                 "--dataset", data, "--seeds", str(SEEDS), "--budget", str(BUDGET), "--db", db,
                 "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["seeds"] == SEEDS and summary["found"] >= 1
    out = tmp_path / "out"
    exported = compd("runs", "export", summary["run_id"], "--db", db, "--out", out,
                     "--format", "png")
    assert exported.returncode == 0, exported.stderr
    triggers = sorted((out / "png").glob("trigger_*.png"))
    assert len(triggers) == summary["found"]
    assert len(list((out / "png").glob("seed_*.png"))) == SEEDS
    for path in triggers:
        with Image.open(path) as png:
            assert png.mode == "RGB" and png.size == (32, 32)
