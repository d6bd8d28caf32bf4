"""The corruptions on real images: they change their input, grow with severity, and are exact
where their definition says so."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_images

import compd_core._torchvision_compat  # noqa: F401
from torchvision.transforms.v2 import functional as TF

from compd_core.characterize import corruptions as C
from compd_core.data import load_mnist
from compd_core.errors import ConfigError, InvalidInputError

NAMES = list(C.CORRUPTIONS)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_mnist("test").images[:200]


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """48 real colour patches (32x32) cut from scikit-learn's two bundled photographs."""
    patches = []
    for image in load_sample_images().images:
        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
        for row in range(4):
            for col in range(6):
                top, left = 40 + row * 90, 40 + col * 95
                patches.append(tensor[:, top : top + 32, left : left + 32])
    return torch.stack(patches)


def _apply(name: str, x: torch.Tensor, severity: int, seed: int = 0) -> torch.Tensor:
    return C.CORRUPTIONS[name].apply(x, severity, torch.Generator().manual_seed(seed))


def _changes(name: str, x: torch.Tensor) -> list[float]:
    return [float((_apply(name, x, s) - x).abs().mean()) for s in C.SEVERITIES]


def test_registry_has_at_least_ten_kinds_with_five_monotone_levels() -> None:
    assert len(C.CORRUPTIONS) >= 10
    families = {c.family for c in C.CORRUPTIONS.values()}
    assert {"noise", "blur", "affine", "photometric", "overlay"} <= families
    for corruption in C.CORRUPTIONS.values():
        assert len(corruption.levels) == 5, corruption.name


def test_docstring_table_matches_the_code() -> None:
    """The one parameter table (module docstring) must say what the classes do."""
    doc = C.__doc__ or ""
    for row in C.parameter_table():
        levels = " | ".join(str(row[f"severity_{s}"]) for s in C.SEVERITIES)
        expected = f"| {row['corruption']} | {row['family']} | {row['parameter']} | {levels} |"
        assert expected in doc, f"docstring row for {row['corruption']} is out of date"
    rows = re.findall(r"^\| ([a-z_]+) \|", doc, flags=re.MULTILINE)
    assert sorted(set(rows) - {"corruption"}) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_grows_with_severity_on_mnist(name: str, digits: torch.Tensor) -> None:
    changes = _changes(name, digits)
    assert changes[0] > 1e-3, f"{name} at severity 1 leaves the digits unchanged"
    assert all(a < b for a, b in zip(changes, changes[1:])), f"{name}: {changes}"


@pytest.mark.parametrize("name", NAMES)
def test_grows_with_severity_on_colour_photos(name: str, photos: torch.Tensor) -> None:
    changes = _changes(name, photos)
    assert changes[0] > 1e-3, f"{name} at severity 1 leaves the photos unchanged"
    assert all(a < b for a, b in zip(changes, changes[1:])), f"{name}: {changes}"


@pytest.mark.parametrize("name", NAMES)
def test_output_is_a_valid_snapped_batch_and_deterministic(name: str, photos: torch.Tensor) -> None:
    out = _apply(name, photos, 3, seed=7)
    assert out.shape == photos.shape and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(out, torch.round(out * 255) / 255)
    assert torch.equal(out, _apply(name, photos, 3, seed=7))


def test_random_corruptions_depend_on_the_seed(digits: torch.Tensor) -> None:
    deterministic = {"gaussian_blur", "pixelate", "scale", "brightness", "contrast", "canny_edges"}
    for name in set(NAMES) - deterministic:
        assert not torch.equal(_apply(name, digits, 3, 0), _apply(name, digits, 3, 1)), name


def test_overlays_are_nested_across_severities(digits: torch.Tensor) -> None:
    """Same generator seed: severity s draws the lines of s - 1 and adds one."""
    for name in ("zigzag", "dotted_line"):
        inked = [(_apply(name, digits, s) - digits) > 0 for s in C.SEVERITIES]
        for low, high in zip(inked, inked[1:]):
            assert bool((low & ~high).sum() == 0), name
            assert int(high.sum()) > int(low.sum()), name


def test_brightness_adds_its_delta_exactly(digits: torch.Tensor) -> None:
    out = _apply("brightness", digits, 2)
    expected = torch.round((digits + 0.2).clamp(0, 1) * 255) / 255
    assert torch.equal(out, expected)
    background = digits == 0
    assert torch.allclose(out[background], torch.tensor(51 / 255))


def test_contrast_is_torchvisions_adjust_contrast(photos: torch.Tensor) -> None:
    out = _apply("contrast", photos, 3)
    expected = torch.round(TF.adjust_contrast(photos, 0.3) * 255) / 255
    assert (out - expected).abs().max() <= 1 / 255 + 1e-6


GREY = 128 / 255  # on the 8-bit grid, so snapping alone changes nothing


def test_impulse_noise_hits_the_documented_fraction() -> None:
    grey = torch.full((50, 1, 28, 28), GREY)
    for severity, amount in zip(C.SEVERITIES, C.CORRUPTIONS["impulse_noise"].levels):
        out = _apply("impulse_noise", grey, severity)
        assert abs((out != GREY).float().mean().item() - amount) < 0.01, severity
        assert abs((out == 1).float().mean().item() - amount / 2) < 0.01, severity


def test_gaussian_noise_has_the_documented_sigma() -> None:
    grey = torch.full((50, 1, 28, 28), GREY)
    # Severities 1-3 only: beyond, clipping at 0 and 1 visibly shrinks the spread.
    for severity, sigma in list(zip(C.SEVERITIES, C.CORRUPTIONS["gaussian_noise"].levels))[:3]:
        std = (_apply("gaussian_noise", grey, severity) - GREY).std().item()
        assert abs(std - sigma) < 0.03 * sigma + 1 / 255, (severity, std)


def test_shot_noise_is_poisson_with_the_documented_photons(digits: torch.Tensor) -> None:
    grey = torch.full((50, 1, 28, 28), GREY)
    for severity, photons in list(zip(C.SEVERITIES, C.CORRUPTIONS["shot_noise"].levels))[:3]:
        out = _apply("shot_noise", grey, severity)
        assert abs(out.mean().item() - GREY) < 0.005, severity
        assert abs(out.std().item() - math.sqrt(GREY / photons)) < 0.005, severity
    assert _apply("shot_noise", digits, 5)[digits == 0].max() == 0  # no light, no photons


def test_translate_moves_the_centre_of_mass_by_its_distance(digits: torch.Tensor) -> None:
    def centre(x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(28.0).view(1, 1, 28, 1)
        cols = torch.arange(28.0).view(1, 1, 1, 28)
        mass = x.sum((1, 2, 3))
        return torch.stack([(x * cols).sum((1, 2, 3)) / mass, (x * rows).sum((1, 2, 3)) / mass], 1)

    for severity, distance in zip(C.SEVERITIES, C.CORRUPTIONS["translate"].levels):
        moved = (centre(_apply("translate", digits, severity)) - centre(digits)).norm(dim=1)
        assert abs(moved.median().item() - distance) < 0.25, (severity, moved.median())


def test_rotate_turns_by_the_documented_angle() -> None:
    """A horizontal bar through the centre comes out at +-angle (principal axis)."""
    bar = torch.zeros((64, 1, 29, 29))
    bar[:, :, 14, 4:25] = 1.0
    rows, cols = torch.meshgrid(torch.arange(29.0) - 14, torch.arange(29.0) - 14, indexing="ij")
    for severity, angle in zip(C.SEVERITIES, C.CORRUPTIONS["rotate"].levels):
        out = _apply("rotate", bar, severity)[:, 0]
        mass = out.sum((1, 2))
        cxx = (out * cols * cols).sum((1, 2)) / mass
        cyy = (out * rows * rows).sum((1, 2)) / mass
        cxy = (out * cols * rows).sum((1, 2)) / mass
        measured = torch.rad2deg(0.5 * torch.atan2(2 * cxy, cxx - cyy)).abs()
        assert torch.allclose(measured, torch.full_like(measured, float(angle)), atol=1.5)


def test_scale_shrinks_the_digit_by_its_factor(digits: torch.Tensor) -> None:
    for severity, factor in zip(C.SEVERITIES, C.CORRUPTIONS["scale"].levels):
        ink = _apply("scale", digits, severity).sum((1, 2, 3)) / digits.sum((1, 2, 3))
        assert abs(ink.median().item() - factor**2) < 0.08, (severity, ink.median())


def test_canny_at_full_strength_is_a_binary_edge_map(digits: torch.Tensor) -> None:
    edges = _apply("canny_edges", digits, 5)
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    strokes = digits > 0.5
    # Edges lie on the outline of strokes: near ink, and not deep inside the background.
    near_ink = torch.nn.functional.max_pool2d(digits, 5, stride=1, padding=2) > 0.1
    assert edges.bool().sum() > 0
    assert (edges.bool() & ~near_ink).sum() == 0
    assert (edges.bool() & strokes).float().sum() < edges.sum()


def test_invalid_severity_and_name_raise_config_errors_listing_valid_values(
    digits: torch.Tensor,
) -> None:
    with pytest.raises(ConfigError, match="1, 2, 3, 4, 5"):
        C.CORRUPTIONS["fog"].apply(digits, 6, torch.Generator())
    with pytest.raises(ConfigError, match="1, 2, 3, 4, 5"):
        C.check_severities([0, 2])
    with pytest.raises(ConfigError, match="shot_noise"):
        C.resolve_corruptions(["snow"])
    assert C.check_severities([5, 1, 5]) == (1, 5)
    assert [c.name for c in C.resolve_corruptions(["fog", "rotate"])] == ["fog", "rotate"]
    assert len(C.resolve_corruptions(None)) == len(NAMES)


def test_rejects_batches_that_are_not_grey_or_colour() -> None:
    with pytest.raises(InvalidInputError, match="C=2"):
        C.CORRUPTIONS["fog"].apply(torch.zeros((2, 2, 8, 8)), 1, torch.Generator())
    with pytest.raises(InvalidInputError):
        C.CORRUPTIONS["fog"].apply(torch.zeros((1, 8, 8)), 1, torch.Generator())


def test_parameter_table_rows_are_complete() -> None:
    rows = C.parameter_table()
    assert [r["corruption"] for r in rows] == NAMES
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in rows for v in r.values())
