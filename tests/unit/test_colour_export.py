"""Colour triggers in every view that draws or writes them: RGB PNGs that read back bit-exactly
(grey PNGs for grey images), a difference picture in which opposite channel changes do not
cancel, and change sizes counted in pixels, not channel values.

The seeds are scikit-image's photos ``astronaut`` (public domain, NASA), ``chelsea`` (CC0,
Stefan van der Walt) and ``coffee`` (CC0, Rachel Michetti); see tests/colour_support.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from colour_support import photos
from compd_core.export import diff_image, export_run, png_bytes, selection_zip_bytes
from compd_core.report import build_report, diff_heatmap
from compd_core.search.results import ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.strength import change_size
from dashboard.components.images import difference_picture, picture

PROBS_ORIGINAL = torch.tensor([0.80, 0.15, 0.05])
PROBS_COMPRESSED = torch.tensor([0.30, 0.60, 0.10])


def _with_patch(seed: torch.Tensor) -> torch.Tensor:
    """The seed with a 3x3 patch changed by 40 grey levels in its first and last channel (red
    up and blue down where the photo leaves room; the other way where it does not)."""
    image = seed.clone()
    step = 40 / 255
    for channel, sign in ((0, 1.0), (2, -1.0)) if len(seed) == 3 else ((0, 1.0),):
        patch = image[channel, 10:13, 20:23]
        moved = patch + sign * step
        image[channel, 10:13, 20:23] = torch.where((moved < 0) | (moved > 1), patch - sign * step,
                                                   moved)
    return torch.round(image * 255) / 255


def _results(seeds: torch.Tensor) -> list[SeedResult]:
    out = []
    for position, seed_image in enumerate(seeds):
        seed = Seed(position, 100 + position, seed_image, 0, 0)
        if position == 1:
            out.append(SeedResult(seed, ExitReason.QUERY_BUDGET, 500, 500, 1.0, trace=[0.5]))
            continue
        image = _with_patch(seed_image)
        delta = (image - seed_image).flatten()
        trigger = Trigger(image, PROBS_ORIGINAL, PROBS_COMPRESSED, float(delta.norm()),
                          float(delta.abs().max()))
        out.append(SeedResult(seed, ExitReason.FOUND, 40, 40, 0.5, trigger, trace=[0.5, -0.1]))
    return out


@pytest.fixture(params=[(3, 64), (3, 224), (1, 64)], ids=["rgb64", "rgb224", "grey64"])
def stored(request: pytest.FixtureRequest, tmp_path):
    channels, size = request.param
    store = Store(tmp_path / "compd.sqlite")
    run_id = store.create_run("photo-pair", "compd", SearchSettings(max_queries=500), 3, 0,
                              "photos", note="colour export test")
    results = _results(photos(size, channels))
    for result in results:
        store.save_result(run_id, result)
    store.finish_run(run_id, "finished", 1.0)
    yield store, run_id, results
    store.close()


def _read_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _uint8(image: torch.Tensor) -> np.ndarray:
    array = torch.round(image * 255).to(torch.uint8).numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def test_exported_pngs_read_back_bit_exactly(stored, tmp_path) -> None:
    store, run_id, results = stored
    channels = results[0].seed.image.shape[0]
    written = export_run(store, run_id, tmp_path / "out", formats={"png"})
    names = sorted(p.name for p in written)
    assert names == ["diff_0.png", "diff_2.png", "seed_0.png", "seed_1.png", "seed_2.png",
                     "trigger_0.png", "trigger_2.png"]
    mode = "RGB" if channels == 3 else "L"
    for result in results:
        position = result.seed.position
        seed_png = _read_png((tmp_path / "out" / "png" / f"seed_{position}.png").read_bytes())
        assert seed_png.mode == mode
        assert np.array_equal(np.asarray(seed_png), _uint8(result.seed.image))
        if result.trigger is None:
            continue
        path = tmp_path / "out" / "png" / f"trigger_{position}.png"
        trigger_png = _read_png(path.read_bytes())
        assert trigger_png.mode == mode and trigger_png.size == seed_png.size
        back = torch.from_numpy(np.array(trigger_png)).float() / 255
        back = back[None] if channels == 1 else back.permute(2, 0, 1)
        assert torch.equal(back, result.trigger.image)  # the PNG is the trigger itself
        diff = _read_png((tmp_path / "out" / "png" / f"diff_{position}.png").read_bytes())
        assert diff.mode == mode


def test_colour_diff_png_is_mid_grey_where_unchanged_and_shows_each_channel() -> None:
    seed = photos(64)[0]
    diff = diff_image(seed, _with_patch(seed))
    assert diff.shape == (3, 64, 64)
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[10:13, 20:23] = False
    assert torch.all(diff[:, outside] == 128 / 255)
    patch = diff[:, 10:13, 20:23]
    assert torch.all(patch[0] != 128 / 255) and torch.all(patch[2] != 128 / 255)
    assert torch.all(patch[1] == 128 / 255)  # green did not change
    assert set(torch.round(patch[[0, 2]] * 255).unique().tolist()) <= {0.0, 255.0}  # 40 = largest


def test_heatmap_shows_a_change_whose_channels_cancel_out() -> None:
    """Red up and blue down by the same amount: the mean change is zero, the picture is not."""
    seed = torch.full((3, 16, 16), 0.5)
    trigger = seed.clone()
    trigger[0, 4, 4] += 40 / 255
    trigger[2, 4, 4] -= 40 / 255
    heat = diff_heatmap(seed, trigger)
    background = heat[:, 0, 0]
    assert not torch.equal(heat[:, 4, 4], background)
    assert float(heat[0, 4, 4]) > float(heat[2, 4, 4])  # saturated red: the largest change
    unchanged = torch.ones(16, 16, dtype=torch.bool)
    unchanged[4, 4] = False
    assert torch.all(heat[:, unchanged] == background[:, None])


def test_change_size_counts_pixels_not_channel_values() -> None:
    seed = photos(64)[0]
    size = change_size(seed, _with_patch(seed))
    assert size.pixels == 64 * 64
    assert size.pixels_changed == 9  # the 3x3 patch, changed in two of its three channels
    assert size.max_levels == 40
    grey = photos(64, channels=1)[0]
    moved = grey.clone()
    moved[0, :2, :3] = 1.0 - moved[0, :2, :3]
    assert change_size(grey, moved).pixels_changed == int((moved != grey).sum())


@pytest.mark.parametrize("channels", [1, 3])
def test_dashboard_pictures_are_rgb_for_colour_and_grey_for_grey(channels: int) -> None:
    seed = photos(32, channels)[1]
    shown = picture(seed, size=96)
    assert shown.dtype == np.uint8
    assert shown.shape == ((96, 96, 3) if channels == 3 else (96, 96))
    expected = _uint8(seed).repeat(3, axis=0).repeat(3, axis=1)
    assert np.array_equal(shown, expected)  # enlarged by whole pixels, colours untouched
    assert difference_picture(seed, _with_patch(seed) if channels == 3 else seed,
                              size=96).shape == (96, 96, 3)


def test_png_bytes_of_a_large_colour_photo_and_the_html_report(stored) -> None:
    store, run_id, results = stored
    image = results[0].trigger.image
    data = png_bytes(image)
    assert np.array_equal(np.asarray(_read_png(data)), _uint8(image))
    zipped = selection_zip_bytes(store, run_id, [0, 2])
    assert len(zipped) > 0
    html = build_report(store, run_id, class_names=("cat", "cup", "astronaut"))
    assert html.count("data:image/png;base64,") >= 6  # seed, trigger and heat map per trigger
