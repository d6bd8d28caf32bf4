"""Bad datasets are caught at the door: one line naming the problem, exit code 2, no traceback.

Each case goes through the real `compd` command (in-process) on the real zoo pair and real
MNIST digits, and a good file of the same digits is checked to give the library's numbers.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compd_core.campaign import CampaignSpec, run_campaign
from compd_core.errors import DatasetError
from compd_core.models.evaluate import evaluate_pair
from cli_support import compd

PAIR = "lenet5-int8-static"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `compd ARGS` in this process; (exit code, stdout, stderr)."""
    done = compd(*args)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def digits(mnist_test) -> tuple[np.ndarray, np.ndarray]:
    """The first 60 real test digits as uint8 (N, 28, 28) and their labels."""
    x = np.round(mnist_test.images[:60, 0].numpy() * 255).astype(np.uint8)
    return x, mnist_test.labels[:60].numpy()


def _npz(folder: Path, name: str, **arrays: np.ndarray) -> Path:
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _bad_npz_files(folder: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Path]:
    def with_label(value: int) -> np.ndarray:
        changed = y.copy()
        changed[7] = value
        return changed

    good = _npz(folder, "good", x=x, y=y)
    truncated = folder / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {
        "empty": _npz(folder, "empty"),
        "truncated": truncated,
        "string images": _npz(folder, "strings", x=np.full(x.shape, "ab"), y=y),
        "string labels": _npz(folder, "string-labels", x=x, y=y.astype(str)),
        "labels to 10^9": _npz(folder, "huge", x=x, y=with_label(10**9)),
        "labels (N, 1)": _npz(folder, "column", x=x, y=y[:, None]),
        "negative label": _npz(folder, "negative", x=x, y=with_label(-1)),
        "label past the classes": _npz(folder, "past", x=x, y=with_label(10)),
        "float labels": _npz(folder, "float-labels", x=x, y=y.astype(np.float32)),
        "NaN pixels": _npz(folder, "nan", x=np.full(x.shape, np.nan, np.float32), y=y),
        "no images": _npz(folder, "none", x=x[:0], y=y[:0]),
    }


MESSAGES = {
    "empty": "must hold arrays 'x' and 'y', found no arrays at all",
    "truncated": "is not a readable .npz archive (damaged or truncated?)",
    "string images": "images 'x' must be numbers (uint8 0..255 or float 0..1), got dtype <U2",
    "string labels": "labels 'y' must be whole numbers of shape (N,), got dtype <U21",
    "labels to 10^9": "labels must lie in 0..9 (the 10 classes), found labels from 0 to 1000000000",
    "labels (N, 1)": "labels 'y' must be whole numbers of shape (N,), got dtype int64 and shape (60, 1)",
    "negative label": "labels must lie in 0..9 (the 10 classes), found labels from -1 to 9",
    "label past the classes": "labels must lie in 0..9 (the 10 classes), found labels from 0 to 10",
    "float labels": "labels 'y' must be whole numbers of shape (N,), got dtype float32",
    "NaN pixels": "float images must be finite and lie in [0, 1]",
    "no images": "with N >= 1, got (0, 28, 28)",
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_bad_npz_ends_in_one_line_and_exit_2(tmp_path, digits, case):
    path = _bad_npz_files(tmp_path, *digits)[case]
    code, out, err = run_cli("pair", "inspect", "--pair", PAIR, "--dataset", str(path),
                             "--json")
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert MESSAGES[case] in err


def test_characterize_and_campaign_check_labels_through_the_same_door(tmp_path, digits):
    x, y = digits
    y = y.copy()
    y[0] = 11
    path = _npz(tmp_path, "past", x=x, y=y)
    code, _, err = run_cli("characterize", "--pair", PAIR, "--dataset", str(path),
                           "--corruptions", "gaussian_noise", "--severities", "1")
    assert code == 2 and "labels must lie in 0..9" in err
    with pytest.raises(DatasetError, match="labels must lie in 0..9"):
        run_campaign(CampaignSpec(PAIR, "random", seeds=1, dataset=str(path)))


def test_a_good_npz_gives_the_library_numbers(tmp_path, digits, int8_pair, mnist_test):
    path = _npz(tmp_path, "good", x=digits[0], y=digits[1])
    code, out, _ = run_cli("pair", "inspect", "--pair", PAIR, "--dataset", str(path),
                           "--json")
    assert code == 0
    expected = evaluate_pair(int8_pair, mnist_test.subset(list(range(60))))
    assert json.loads(out)["accuracy_original"] == pytest.approx(expected.accuracy_original)


def _folder(root: Path, x: np.ndarray, y: np.ndarray, classes: tuple[int, ...]) -> Path:
    for label in classes:
        (root / str(label)).mkdir(parents=True)
    for i, (image, label) in enumerate(zip(x, y)):
        if int(label) in classes:
            Image.fromarray(image).save(root / str(label) / f"{i}.png")
    return root


def test_a_folder_of_some_classes_keeps_their_names(tmp_path, digits):
    x, y = digits
    root = _folder(tmp_path / "digits", x, y, (5, 6, 7))
    code, out, err = run_cli("pair", "inspect", "--pair", PAIR, "--dataset", str(root),
                             "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["images"] == int(np.isin(y, (5, 6, 7)).sum()) >= 10
    assert report["accuracy_original"] >= 0.9  # was 0.0: folders 5/6/7 were read as classes 0/1/2


def test_a_folder_whose_classes_the_models_do_not_know_is_refused(tmp_path, digits):
    x, y = digits
    root = _folder(tmp_path / "digits", x, y, (1, 2))
    (root / "1").rename(root / "cat")
    code, _, err = run_cli("pair", "inspect", "--pair", PAIR, "--dataset", str(root))
    assert code == 2
    assert "classes cat are not among the models' 10 classes" in err


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` greyscale pixels but is a few hundred bytes:
    a decoder that trusts the header allocates the whole image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height, message", [
    (60_000, 60_000, "declares more pixels than compd reads (at most 16,777,216"),
    (5_000, 5_000, "is 5000x5000 pixels; compd reads images of at most 16,777,216 pixels"),
])
def test_oversized_png_in_a_dataset_folder_is_refused_before_decoding(
    tmp_path, digits, width, height, message
):
    root = _folder(tmp_path / "digits", *digits, (0, 1))
    _png_header_only(root / "1" / "bomb.png", width, height)
    code, _, err = run_cli("pair", "inspect", "--pair", PAIR, "--dataset", str(root))
    assert code == 2 and err.count("\n") == 1, err
    assert message in err and "bomb.png" in err


def test_zoo_build_into_an_unwritable_folder_fails_before_training(tmp_path, monkeypatch):
    import compd_core.zoo.build

    def must_not_train(*args, **kwargs):
        raise AssertionError("training started before the destination was checked")

    monkeypatch.setattr(compd_core.zoo.build, "build_zoo", must_not_train)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    code, _, err = run_cli("zoo", "build", "--out", str(a_file))
    assert code == 2 and f"--out {a_file} is a file; give a folder" in err
    code, _, err = run_cli("zoo", "build", "--out", str(a_file / "zoo"))
    assert code == 2 and err.count("\n") == 1
    assert f"--out {a_file / 'zoo'} cannot be written (Not a directory)" in err


def test_own_model_files_on_a_folder_of_some_digits_are_scored_against_those_digits(
    tmp_path, digits, mnist_test
):
    from compd_core.models.loading import load_classifier
    from compd_core.models.pair import ModelPair
    from compd_core.paths import sample_models_dir

    x, y = digits
    root = _folder(tmp_path / "digits", x, y, (5, 6, 7))
    original = sample_models_dir() / "lenet5" / "onnx-int8.float.onnx"
    compressed = sample_models_dir() / "lenet5" / "onnx-int8.onnx"
    code, out, err = run_cli("pair", "inspect", "--original", str(original),
                             "--compressed", str(compressed), "--dataset", str(root), "--json")
    assert code == 0, err  # was: "onnx-int8.float has 10 classes but 3 class names"
    pair = ModelPair(load_classifier(original, (1, 28, 28)), load_classifier(compressed, (1, 28, 28)))
    positions = [i for i in range(60) if int(y[i]) in (5, 6, 7)]
    expected = evaluate_pair(pair, mnist_test.subset(positions))
    report = json.loads(out)
    assert report["images"] == len(positions)
    assert report["accuracy_original"] == pytest.approx(expected.accuracy_original)
    assert report["accuracy_compressed"] == pytest.approx(expected.accuracy_compressed)
