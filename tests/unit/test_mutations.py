"""Mutation operators: properties on real MNIST digits, DFLARE's parameter distributions,
OpenCV's filter conventions, and equality with torchvision / Pillow for the natural set."""

from __future__ import annotations

import compd_core._torchvision_compat  # noqa: F401  (must precede torchvision)

import io
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from compd_core.data import load_mnist
from compd_core.errors import ConfigError, InvalidInputError
from compd_core.mutations import (
    OPERATOR_SETS,
    AverageBlur,
    Brightness,
    Contrast,
    Elastic,
    GaussianBlur,
    GaussianNoise,
    JpegReencode,
    MedianBlur,
    MultiplicativeNoise,
    MutationOperator,
    PixelChange,
    Rotation,
    SaltPepper,
    Translation,
    gaussian_kernel1d,
    get_operators,
    opencv_gaussian_sigma,
    snap_to_grid,
)
from compd_core.mutations.filters import filter_matrix, gaussian_weights, separable_filter
from compd_core.mutations.geometric import elastic_warp, rotate, translate
from compd_core.mutations.median import batcher_network, median_filter, selection_network
from compd_core.mutations.photometric import adjust_brightness, adjust_contrast

ALL_OPERATORS = get_operators("dflare") + get_operators("natural")
BLURS = ("average_blur", "gaussian_blur", "median_blur")
OP_IDS = [op.name for op in ALL_OPERATORS]


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_mnist("test").images[:16]


@pytest.fixture(scope="module")
def many_digits() -> torch.Tensor:
    """4,096 images (256 real digits, 16 times) for parameter distributions."""
    return load_mnist("test").images[:256].repeat(16, 1, 1, 1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a != b).flatten(1).any(1)


def _frequencies(values: list[int], support: list[int]) -> np.ndarray:
    counts = np.array([values.count(v) for v in support], dtype=float)
    return counts / len(values)


# --- properties every operator has -------------------------------------------------------


def test_registry_holds_the_seven_dflare_and_six_natural_operators() -> None:
    assert [op.name for op in get_operators("dflare")] == [
        "gaussian_noise",
        "salt_pepper",
        "multiplicative_noise",
        "pixel_change",
        "average_blur",
        "gaussian_blur",
        "median_blur",
    ]
    assert [op.name for op in get_operators("natural")] == [
        "brightness",
        "contrast",
        "rotation",
        "translation",
        "elastic",
        "jpeg",
    ]
    assert all(isinstance(op, MutationOperator) for op in ALL_OPERATORS)
    assert get_operators("dflare") is not get_operators("dflare")  # callers get their own list


def test_unknown_operator_set_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="dflare, natural"):
        get_operators("dflarre")
    assert set(OPERATOR_SETS) == {"dflare", "natural"}


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_output_is_a_valid_8bit_batch(op: MutationOperator, digits: torch.Tensor) -> None:
    result = op(digits, _gen())
    out = result.images
    assert out.shape == digits.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(snap_to_grid(out.clone()), out)  # already on the 256-level grid
    assert result.operator == op.name and len(result) == len(digits)
    assert torch.equal(digits, load_mnist("test").images[:16])  # input left untouched


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_same_seed_same_mutants_other_seed_other_mutants(
    op: MutationOperator, digits: torch.Tensor
) -> None:
    first, again, other = op(digits, _gen(7)), op(digits, _gen(7)), op(digits, _gen(8))
    assert torch.equal(first.images, again.images)
    assert first.params == again.params
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_params_are_one_json_dict_per_image(op: MutationOperator, digits: torch.Tensor) -> None:
    params = op(digits, _gen()).params
    assert len(params) == len(digits)
    decoded = json.loads(json.dumps(params))
    assert decoded == params and all(p for p in params)


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_operator_changes_real_digits(op: MutationOperator, digits: torch.Tensor) -> None:
    result = op(digits, _gen(1))
    changed = _changed(result.images, digits)
    if op.name in BLURS:
        kernels = torch.tensor([p["kernel"] for p in result.params])
        assert (kernels > 1).any() and (kernels == 1).any()  # both cases are exercised
        assert torch.equal(changed, kernels > 1)  # kernel 1 is the identity, others blur
    else:
        # A near-identity draw (e.g. multiplicative mean ~0) may round back to the input.
        assert int(changed.sum()) >= 15


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_colour_images_keep_their_shape(op: MutationOperator, digits: torch.Tensor) -> None:
    rgb = torch.cat([digits[:4], digits[4:8], digits[8:12]], dim=1)  # 3 digits as R, G, B
    out = op(rgb, _gen()).images
    assert out.shape == rgb.shape
    assert torch.equal(snap_to_grid(out.clone()), out)


@pytest.mark.parametrize("op", ALL_OPERATORS, ids=OP_IDS)
def test_malformed_batches_are_refused(op: MutationOperator, digits: torch.Tensor) -> None:
    with pytest.raises(InvalidInputError, match="unsqueeze"):
        op(digits[0], _gen())
    with pytest.raises(InvalidInputError, match="float"):
        op((digits * 255).to(torch.uint8), _gen())


# --- DFLARE's value operators --------------------------------------------------------------


def test_gaussian_noise_moves_one_value_in_nine_by_one_level() -> None:
    images = load_mnist("test").images[:256]
    out = GaussianNoise()(images, _gen()).images
    mid = (images > 1.5 / 255) & (images < 253.5 / 255)  # no clipping possible here
    moved = (out - images).abs()[mid]
    # var = 0.1 grey levels^2: P(|N(0, 0.1)| > 0.5) = 2 * (1 - Phi(0.5 / sqrt(0.1))) = 0.1138
    expected = math.erfc(0.5 / math.sqrt(0.1) / math.sqrt(2))
    assert abs(float((moved > 0).float().mean()) - expected) < 0.01
    assert float(moved.max()) <= 1 / 255 + 1e-6


def test_salt_pepper_sets_two_values_white_and_two_black() -> None:
    grey = torch.full((64, 1, 28, 28), 128 / 255)
    result = SaltPepper()(grey, _gen())
    whites = (result.images == 1.0).flatten(1).sum(1)
    blacks = (result.images == 0.0).flatten(1).sum(1)
    # ceil(0.004 * 784 / 2) = 2 each; drawn with replacement, so a collision leaves fewer.
    assert result.params[0] == {"amount": 0.004, "salt": 2, "pepper": 2}
    assert int((whites + blacks).max()) <= 4 and float((whites + blacks).float().mean()) > 3.9
    assert int((blacks >= 1).sum()) == 64 and int((whites >= 1).sum()) >= 63
    untouched = (result.images != 0) & (result.images != 1)
    assert torch.all(result.images[untouched] == 128 / 255)


def test_multiplicative_noise_uses_each_images_own_mean_and_variance() -> None:
    grey = torch.full((512, 1, 28, 28), 100 / 255)
    result = MultiplicativeNoise()(grey, _gen())
    noise = (result.images / (100 / 255) - 1).flatten(1)  # n = out / x - 1
    mean = torch.tensor([p["mean"] for p in result.params])
    var = torch.tensor([p["var"] for p in result.params])
    assert float(mean.min()) >= -0.5 and float(mean.max()) <= 0.5
    assert float(var.min()) >= 0.0 and float(var.max()) <= 0.05
    assert float(mean.min()) < -0.45 and float(mean.max()) > 0.45  # the whole range is drawn
    assert float((noise.mean(1) - mean).abs().max()) < 0.03
    assert float((noise.var(1) - var).abs().max()) < 0.012


def test_pixel_change_rewrites_at_most_k_values(many_digits: torch.Tensor) -> None:
    result = PixelChange()(many_digits, _gen())
    k = torch.tensor([p["k"] for p in result.params])
    changed = (result.images != many_digits).flatten(1).sum(1)
    assert torch.all(changed <= k)
    # E[k] = 5; a drawn level equal to the old value or a repeated position changes nothing.
    assert 4.8 < float(changed.float().mean()) <= 5.0
    freq = _frequencies(k.tolist(), list(range(1, 10)))
    assert np.abs(freq - 1 / 9).max() < 0.025


# --- DFLARE's blurs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "support"),
    [
        (AverageBlur(), [1, 2, 3, 4, 5]),
        (GaussianBlur(), [1, 3, 5, 7]),
        (MedianBlur(), [1, 3, 5, 7]),
    ],
    ids=BLURS,
)
def test_blur_kernels_are_uniform_over_dflares_choices(
    op: MutationOperator, support: list[int], many_digits: torch.Tensor
) -> None:
    centres = many_digits[..., 8:20, 8:20]  # 12x12 crops: the same draws, a tenth of the work
    kernels = [p["kernel"] for p in op(centres, _gen()).params]
    assert set(kernels) == set(support)
    assert np.abs(_frequencies(kernels, support) - 1 / len(support)).max() < 0.03


def test_gaussian_sigma_and_weights_match_opencvs_formula_by_hand() -> None:
    assert opencv_gaussian_sigma(3) == pytest.approx(0.8)
    assert opencv_gaussian_sigma(5) == pytest.approx(1.1)
    assert opencv_gaussian_sigma(7) == pytest.approx(1.4)
    # k=3, sigma=0.8: exp(-1/1.28) = 0.457833; weights = (0.457833, 1, 0.457833) / 1.915666
    assert gaussian_kernel1d(3) == pytest.approx((0.238994, 0.522011, 0.238994), abs=1e-6)
    # k=5, sigma=1.1: exp(-1/2.42) = 0.661509, exp(-4/2.42) = 0.191487, sum 2.705992
    assert gaussian_kernel1d(5) == pytest.approx(
        (0.070766, 0.244460, 0.369547, 0.244460, 0.070766), abs=1e-5
    )


def test_gaussian_blur_of_a_white_dot_is_the_outer_product_kernel() -> None:
    dot = torch.zeros(1, 1, 28, 28)
    dot[0, 0, 14, 14] = 1.0
    out = GaussianBlur(kernel_sizes=(3,))(dot, _gen()).images[0, 0] * 255
    # 0.522011^2 * 255 = 69.49, 0.238994 * 0.522011 * 255 = 31.81, 0.238994^2 * 255 = 14.57
    expected = torch.tensor([[15.0, 32.0, 15.0], [32.0, 69.0, 32.0], [15.0, 32.0, 15.0]])
    assert torch.allclose(out[13:16, 13:16], expected, atol=1e-3)
    assert float(out.sum()) == pytest.approx(15 * 4 + 32 * 4 + 69, abs=1e-2)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_gaussian_blur_matches_a_padded_convolution_on_digits(
    kernel: int, digits: torch.Tensor
) -> None:
    weights = torch.tensor(gaussian_kernel1d(kernel))
    half = kernel // 2
    padded = F.pad(digits, (half, half, half, half), mode="reflect")
    reference = snap_to_grid(F.conv2d(padded, torch.outer(weights, weights)[None, None]))
    out = GaussianBlur(kernel_sizes=(kernel,))(digits, _gen()).images
    diff = (out - reference).abs()
    assert float(diff.max()) <= 1 / 255 + 1e-6  # float summation order at a rounding edge
    assert float((diff > 0).float().mean()) < 0.001


def test_even_box_kernel_is_anchored_like_opencv() -> None:
    dot = torch.zeros(1, 1, 28, 28)
    dot[0, 0, 10, 10] = 1.0
    out = AverageBlur(kernel_sizes=(2,))(dot, _gen()).images[0, 0]
    # A 2x2 window covers the pixel and the one before it, so the dot spreads down-right.
    assert (out > 0).nonzero().tolist() == [[10, 10], [10, 11], [11, 10], [11, 11]]
    assert torch.allclose(out[10:12, 10:12], torch.full((2, 2), 64 / 255))  # 255 / 4 -> 64


def test_box_and_gaussian_borders_reflect_without_repeating_the_edge() -> None:
    edge = torch.zeros(1, 1, 28, 28)
    edge[..., 0] = 1.0
    out = AverageBlur(kernel_sizes=(3,))(edge, _gen()).images[0, 0]
    # reflect-101 mirrors column 1 (black) into column -1: (0 + 1 + 0) / 3; replicate would be 2/3
    assert torch.allclose(out[:, 0], torch.full((28,), 85 / 255))
    assert torch.allclose(out[:, 1], torch.full((28,), 85 / 255))
    assert float(out[:, 2:].abs().max()) == 0.0


def test_median_blur_border_is_replicated_like_opencv() -> None:
    edge = torch.zeros(1, 1, 28, 28)
    edge[..., 0] = 1.0
    out = MedianBlur(kernel_sizes=(3,))(edge, _gen()).images[0, 0]
    # Replicated, column 0's window holds 6 white values of 9, so it stays white.
    assert torch.equal(out[:, 0], torch.ones(28))
    assert float(out[:, 1:].abs().max()) == 0.0


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_median_blur_equals_torch_median_on_digits(kernel: int, digits: torch.Tensor) -> None:
    half = kernel // 2
    padded = F.pad(digits, (half, half, half, half), mode="replicate")
    windows = F.unfold(padded, kernel)
    reference = windows.median(dim=1).values.view_as(digits)
    out = MedianBlur(kernel_sizes=(kernel,))(digits, _gen()).images
    assert torch.equal(out, reference)
    assert not torch.equal(out, digits)


def test_batcher_network_sorts_every_binary_input_and_random_reals() -> None:
    for n in (9, 25, 49):
        pairs = batcher_network(n)
        rng = np.random.default_rng(n)
        inputs = [rng.random(n) for _ in range(200)]
        if n == 9:  # 0-1 principle: sorting all 2^9 binary inputs proves the network
            inputs = [np.array([(m >> b) & 1 for b in range(9)], float) for m in range(512)]
        for values in inputs:
            v = values.copy()
            for i, j in pairs:
                if v[i] > v[j]:
                    v[i], v[j] = v[j], v[i]
            assert np.array_equal(v, np.sort(values))


def test_pruned_selection_network_is_smaller_and_still_finds_the_median() -> None:
    network = selection_network(49, 24)
    assert len(network) < len(batcher_network(49))
    rng = np.random.default_rng(0)
    values = torch.from_numpy(rng.integers(0, 256, size=(49, 1, 1, 1, 500)).astype(np.uint8))
    wires = list(values)
    for low, high, keep_min, keep_max in network:
        a, b = wires[low], wires[high]
        if keep_min:
            wires[low] = torch.minimum(a, b)
        if keep_max:
            wires[high] = torch.maximum(a, b)
    assert torch.equal(wires[24], values.median(dim=0).values)


def test_median_filter_works_on_float_values_too(digits: torch.Tensor) -> None:
    padded = F.pad(digits, (1, 1, 1, 1), mode="replicate")
    reference = F.unfold(padded, 3).median(dim=1).values.view_as(digits)
    assert torch.equal(median_filter(digits, 3), reference)


def test_filter_matrices_refuse_a_kernel_wider_than_the_image() -> None:
    with pytest.raises(InvalidInputError, match="does not fit"):
        filter_matrix(3, (1 / 7,) * 7, 3)
    with pytest.raises(InvalidInputError, match="does not fit"):
        AverageBlur(kernel_sizes=(5,))(torch.zeros(2, 1, 2, 2), _gen())


@pytest.mark.parametrize(
    "build",
    [
        lambda: GaussianBlur(kernel_sizes=(2,)),
        lambda: MedianBlur(kernel_sizes=(3, 4)),
        lambda: AverageBlur(kernel_sizes=(0,)),
        lambda: AverageBlur(kernel_sizes=()),
        lambda: GaussianNoise(var=0.0),
        lambda: SaltPepper(amount=0.0),
        lambda: MultiplicativeNoise(var_range=(-0.1, 0.05)),
        lambda: PixelChange(max_values=0),
        lambda: Brightness(factor_range=(1.2, 0.8)),
        lambda: Rotation(max_degrees=0.0),
        lambda: Translation(max_shift=0),
        lambda: Elastic(sigma=0.0),
        lambda: JpegReencode(quality_range=(10, 100)),
    ],
)
def test_invalid_operator_settings_are_refused(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        build()


# --- natural operators: the same maths as torchvision, one parameter per image ------------


def test_brightness_and_contrast_match_torchvision_per_image(digits: torch.Tensor) -> None:
    factors = torch.linspace(0.7, 1.3, len(digits))
    bright = adjust_brightness(digits, factors).clamp(0, 1)
    contrast = adjust_contrast(digits, factors).clamp(0, 1)
    for i, f in enumerate(factors.tolist()):
        image = digits[i : i + 1]
        assert torch.allclose(bright[i : i + 1], TF.adjust_brightness(image, f), atol=1e-6)
        assert torch.allclose(contrast[i : i + 1], TF.adjust_contrast(image, f), atol=1e-6)


def test_contrast_matches_torchvision_on_colour_images(digits: torch.Tensor) -> None:
    rgb = torch.cat([digits[:4], digits[4:8], digits[8:12]], dim=1)
    factors = torch.tensor([0.7, 0.9, 1.1, 1.3])
    ours = adjust_contrast(rgb, factors).clamp(0, 1)
    for i, f in enumerate(factors.tolist()):
        assert torch.allclose(ours[i : i + 1], TF.adjust_contrast(rgb[i : i + 1], f), atol=1e-6)


def test_brightness_operator_applies_its_recorded_factor(digits: torch.Tensor) -> None:
    result = Brightness()(digits, _gen())
    for i, p in enumerate(result.params):
        assert 0.7 <= p["factor"] <= 1.3
        expected = snap_to_grid(TF.adjust_brightness(digits[i : i + 1], p["factor"]))
        assert float((result.images[i : i + 1] - expected).abs().max()) <= 1 / 255 + 1e-6


def test_rotation_and_translation_match_torchvision_per_image(digits: torch.Tensor) -> None:
    degrees = torch.linspace(-15, 15, len(digits))
    shifts = torch.tensor([[dx, dy] for dx in (-2, -1, 1, 2) for dy in (-2, 0, 1, 2)])
    rotated, shifted = rotate(digits, degrees), translate(digits, shifts)
    for i in range(len(digits)):
        image = digits[i : i + 1]
        ref_rot = TF.rotate(image, float(degrees[i]), interpolation=InterpolationMode.BILINEAR)
        ref_shift = TF.affine(
            image,
            angle=0.0,
            translate=[int(shifts[i, 0]), int(shifts[i, 1])],
            scale=1.0,
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        )
        assert torch.allclose(rotated[i : i + 1], ref_rot, atol=1e-5)
        assert torch.allclose(shifted[i : i + 1], ref_shift, atol=1e-5)


def test_translation_moves_content_by_whole_pixels(many_digits: torch.Tensor) -> None:
    result = Translation()(many_digits[:512], _gen())
    pairs = {(p["dx"], p["dy"]) for p in result.params}
    assert (0, 0) not in pairs and len(pairs) == 24  # every other shift in [-2, 2]^2
    first = result.params[0]
    moved = torch.roll(many_digits[0], shifts=(first["dy"], first["dx"]), dims=(1, 2))
    # MNIST digits have a black 2-pixel margin, so a shift of 2 loses nothing.
    assert torch.equal(result.images[0], moved)


def test_rotation_angles_cover_plus_minus_15_degrees(many_digits: torch.Tensor) -> None:
    degrees = torch.tensor([p["degrees"] for p in Rotation()(many_digits, _gen()).params])
    assert float(degrees.abs().max()) <= 15.0
    assert float(degrees.min()) < -14.5 and float(degrees.max()) > 14.5


def test_elastic_matches_torchvision_given_the_same_displacement(digits: torch.Tensor) -> None:
    op = Elastic()
    alphas, field = op.displacement(len(digits), 28, 28, _gen(3), torch.device("cpu"))
    warped = elastic_warp(digits, field)
    for i in range(len(digits)):
        reference = TF.elastic(digits[i : i + 1], field[i : i + 1])
        assert torch.allclose(warped[i : i + 1], reference, atol=1e-5)
    result = op(digits, _gen(3))  # the operator draws the same alphas and field first
    assert torch.equal(result.images, snap_to_grid(warped.clone()))
    assert [p["alpha"] for p in result.params] == alphas.tolist()
    pixels = field * 14  # normalised units -> pixels on a 28-pixel side
    assert 0.4 < float(pixels.norm(dim=-1).mean()) < 0.9
    per_image_max = pixels.norm(dim=-1).amax(dim=(1, 2))
    assert 1.0 < float(per_image_max.median()) < 2.0 and float(per_image_max.max()) < 4.0


def test_elastic_smoothing_equals_torchvisions_gaussian_blur() -> None:
    noise = torch.rand(8, 2, 28, 28, generator=_gen()) * 2 - 1
    rows = filter_matrix(28, gaussian_weights(41, 5.0), 20).float()
    ours = separable_filter(noise, rows, rows)
    assert torch.allclose(ours, TF.gaussian_blur(noise, [41, 41], [5.0, 5.0]), atol=1e-6)


def _pillow_jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    pixels = (image[0] * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=quality)
    decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255
    return torch.from_numpy(decoded)[None]


def test_jpeg_is_pillows_roundtrip_at_the_recorded_quality(digits: torch.Tensor) -> None:
    result = JpegReencode()(digits, _gen())
    for i, p in enumerate(result.params):
        assert 20 <= p["quality"] <= 90
        assert torch.equal(result.images[i], _pillow_jpeg(digits[i], p["quality"]))


def test_lower_jpeg_quality_loses_more_of_the_digit(digits: torch.Tensor) -> None:
    low = JpegReencode(quality_range=(20, 20))(digits, _gen()).images
    high = JpegReencode(quality_range=(90, 90))(digits, _gen()).images
    low_error = float((low - digits).abs().mean()) * 255
    high_error = float((high - digits).abs().mean()) * 255
    assert low_error > 2 * high_error > 0


@pytest.mark.parametrize("op", [Contrast(), JpegReencode()], ids=["contrast", "jpeg"])
def test_grey_or_rgb_only_operators_refuse_other_channel_counts(
    op: MutationOperator, digits: torch.Tensor
) -> None:
    with pytest.raises(InvalidInputError, match="channels"):
        op(torch.cat([digits, digits], dim=1), _gen())
