"""Every mutation operator and every corruption on real photographs, in colour and in grey,
at 64x64 and 224x224: same shape and dtype, values in [0, 1] on the 8-bit grid, the image
changed, and a colour image's channels kept aligned (a spatial change moves all channels alike).

The photos are scikit-image's ``astronaut`` (public domain, NASA), ``chelsea`` (CC0, Stefan van
der Walt) and ``coffee`` (CC0, Rachel Michetti); see tests/colour_support.py.
"""

from __future__ import annotations

import pytest
import torch

from compd_core.characterize.corruptions import CORRUPTIONS, SEVERITIES
from compd_core.mutations import MutationOperator, get_operators
from compd_core.mutations.squares import revert_square, square_step
from colour_support import photos

OPERATORS = get_operators("dflare") + get_operators("natural")
OP_IDS = [op.name for op in OPERATORS]
SIZES = (64, 224)
FORMS = [(3, 64), (3, 224), (1, 224)]
FORM_IDS = [f"{c}x{s}x{s}" for c, s in FORMS]
BLURS = ("average_blur", "gaussian_blur", "median_blur")  # kernel 1 is their identity
FACTORS = ("brightness", "contrast")  # one factor per image around 1
# Changes whose random draws do not depend on the channel count and that treat every channel
# alike: on a colour image each must equal the same change applied to each channel alone.
SPATIAL_OPERATORS = ("average_blur", "gaussian_blur", "median_blur", "rotation", "translation",
                     "elastic")
SPATIAL_CORRUPTIONS = ("gaussian_blur", "glass_blur", "motion_blur", "pixelate", "rotate",
                       "shear", "scale", "translate", "stripe", "zigzag", "dotted_line")


@pytest.fixture(scope="module", params=FORMS, ids=FORM_IDS)
def batch(request: pytest.FixtureRequest) -> torch.Tensor:
    """The three photos twice (6 images): enough draws for every operator to show itself."""
    channels, size = request.param
    return photos(size, channels).repeat(2, 1, 1, 1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_valid(out: torch.Tensor, x: torch.Tensor) -> None:
    assert out.shape == x.shape and out.dtype == x.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(torch.round(out * 255.0) / 255.0, out), "off the 8-bit grid"


def _changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a != b).flatten(1).any(1)


def test_the_photos_are_real_distinct_colour_images() -> None:
    x = photos(64)
    assert x.shape == (3, 3, 64, 64)
    assert torch.equal(torch.round(x * 255) / 255, x)
    # Colour, not grey in three channels: the channels differ by many grey levels.
    assert float((x[:, 0] - x[:, 2]).abs().mean()) > 0.05
    assert float((x[0] - x[1]).abs().mean()) > 0.1


@pytest.mark.parametrize("op", OPERATORS, ids=OP_IDS)
def test_operator_keeps_the_form_and_changes_the_photo(
    op: MutationOperator, batch: torch.Tensor
) -> None:
    result = op(batch, _gen())
    _assert_valid(result.images, batch)
    changed = _changed(result.images, batch)
    if op.name in BLURS:
        kernels = torch.tensor([p["kernel"] for p in result.params])
        assert torch.equal(changed, kernels > 1)
        assert bool((kernels > 1).any())
    elif op.name in FACTORS:
        # A factor drawn within 1% of 1 may round back to the photo; any other must change it.
        factors = torch.tensor([p["factor"] for p in result.params])
        assert torch.equal(changed | ((factors - 1).abs() <= 0.01), torch.ones(6, dtype=torch.bool))
        assert int(changed.sum()) >= 4
    else:
        assert bool(changed.all()), f"{op.name} left {int((~changed).sum())} of 6 photos unchanged"


@pytest.mark.parametrize("name", SPATIAL_OPERATORS)
def test_spatial_operators_move_every_channel_alike(name: str) -> None:
    x = photos(224)
    op = next(o for o in OPERATORS if o.name == name)
    together = op(x, _gen(5)).images
    for c in range(3):
        alone = op(x[:, c : c + 1], _gen(5)).images
        assert torch.equal(together[:, c : c + 1], alone), f"channel {c} moved differently"


def test_square_moves_change_all_channels_of_one_square() -> None:
    seeds = photos(224)
    eps = torch.full((3,), 16 / 255)
    moved = square_step(seeds, seeds, eps, _gen(2), max_side=7).images
    _assert_valid(moved, seeds)
    diff = (moved != seeds)
    assert bool(diff.flatten(1).any(1).all())
    # A pixel is changed in all its channels or in none (where the seed is not already
    # clipped at 0 or 1 by the step).
    unclipped = (seeds > 16 / 255) & (seeds < 1 - 16 / 255)
    per_pixel = (diff | ~unclipped).all(1) | ~(diff & unclipped).any(1)
    assert bool(per_pixel.all())
    back = revert_square(moved, seeds, _gen(3), max_side=7).images
    _assert_valid(back, seeds)
    assert int((back != seeds).sum()) < int(diff.sum())


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_keeps_the_form_and_changes_the_photo_at_every_severity(
    name: str, batch: torch.Tensor
) -> None:
    corruption = CORRUPTIONS[name]
    for severity in SEVERITIES:
        out = corruption.apply(batch, severity, _gen())
        _assert_valid(out, batch)
        changed = _changed(out, batch)
        assert bool(changed.all()), f"{name} s{severity} left a photo unchanged"


@pytest.mark.parametrize("name", SPATIAL_CORRUPTIONS)
def test_spatial_corruptions_move_every_channel_alike(name: str) -> None:
    x = photos(224)
    corruption = CORRUPTIONS[name]
    together = corruption.apply(x, 3, _gen(7))
    for c in range(3):
        alone = corruption.apply(x[:, c : c + 1], 3, _gen(7))
        assert torch.equal(together[:, c : c + 1], alone), f"channel {c} moved differently"
