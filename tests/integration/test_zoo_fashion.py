"""The Fashion-MNIST pairs: real data (the official test set, shipped), a ResNet over 90%,
its compressed variants re-measured, and commands that pick the pairs' own dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compd_core.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    OFFICIAL_DIR,
    fashion_mnist_path,
    load_fashion_mnist,
    load_official_arrays,
)
from compd_core.data.resolve import load_dataset
from compd_core.errors import DatasetError
from compd_core.models.evaluate import evaluate_pair
from compd_core.paths import sample_models_dir
from compd_core.store import Store
from compd_core.zoo import list_pairs, load_pair
from compd_core.zoo.build import PLANS
from compd_core.zoo.loading import load_original, pair_dataset, pair_datasets, read_manifest
from compd_core.zoo.platform import build_platform
from cli_support import compd

PAIRS = [p for p in list_pairs() if pair_datasets()[p.id] == "fashion-mnist"]
INT8_PAIR = "resnet-fashion-int8-static"
# Measured at build time and documented in sample_models/README.md: 90% pruning keeps 7.3k of
# the ResNet's 73k weights (-3.3 points); the student has a quarter of its width (-4.9 points).
# Both are fine-tuned on 8,000 of the 60,000 training images to keep the build short.
CAPACITY_LIMITED = {"resnet-fashion-prune90": 0.04, "resnet-fashion-distilled": 0.055}


@pytest.fixture(scope="module")
def fashion_test():
    return load_fashion_mnist("test")


def test_the_zoo_holds_every_recipe_of_the_resnet_on_fashion_mnist():
    assert {p.id for p in PAIRS} == {f"resnet-fashion-{k}" for k in PLANS["resnet-fashion"].kinds}
    assert len(PAIRS) == 7
    original = read_manifest(sample_models_dir()).originals["resnet-fashion"]
    assert original.dataset == "fashion-mnist" and original.arch == "resnet-fashion"


def test_shipped_data_is_the_official_test_set_split_class_by_class():
    with np.load(fashion_mnist_path()) as archive:
        parts = {key: archive[key] for key in archive.files}
    assert parts["x_train"].shape == (8000, 28, 28) and parts["x_test"].shape == (2000, 28, 28)
    assert parts["x_train"].dtype == np.uint8
    for split, per_class in (("train", 800), ("test", 200)):
        assert np.bincount(parts[f"y_{split}"], minlength=10).tolist() == [per_class] * 10
    sources = np.concatenate([parts["source_index_train"], parts["source_index_test"]])
    assert sorted(sources.tolist()) == list(range(10_000))  # every official test image, once
    if not (OFFICIAL_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed: shipped images not compared")
    images, labels = load_official_arrays("test")
    for split in ("train", "test"):
        index = parts[f"source_index_{split}"]
        assert np.array_equal(parts[f"x_{split}"], images[index])
        assert np.array_equal(parts[f"y_{split}"], labels[index])


def test_dataset_names_load_both_parts_with_the_class_names():
    test, train = load_dataset("fashion-mnist"), load_dataset("fashion-mnist:train")
    assert (len(test), len(train)) == (2000, 8000)
    assert test.class_names == FASHION_MNIST_CLASSES and test.class_names[9] == "Ankle boot"
    assert torch.equal(load_dataset("fashion-mnist:test").images, test.images)
    with pytest.raises(DatasetError, match="fashion-mnist"):
        load_dataset("fashion-mnist:validation")


def test_original_is_over_90_percent_on_the_official_test_set():
    """The shipped archive holds all 10,000 official test images: both parts together."""
    model = load_original(sample_models_dir(), "resnet-fashion")
    correct = sum(int((model.predict_proba(d.images).argmax(1) == d.labels).sum())
                  for d in (load_fashion_mnist("train"), load_fashion_mnist("test")))
    assert correct / 10_000 > 0.90
    assert model.info.class_names == FASHION_MNIST_CLASSES


@pytest.mark.parametrize("entry", PAIRS, ids=[p.id for p in PAIRS])
def test_each_pair_reloads_with_its_recorded_numbers(entry, fashion_test):
    """Same rules as the MNIST pairs: within 2 points of the original (the documented
    exceptions aside), the recorded accuracy and disagreement count reproduced exactly (the
    failure names both platforms)."""
    evaluation = evaluate_pair(load_pair(entry.id), fashion_test)
    recorded = read_manifest(sample_models_dir()).platform
    where = f"recorded on {recorded}, measured on {build_platform()}"
    allowed_loss = CAPACITY_LIMITED.get(entry.id, 0.02)
    assert evaluation.accuracy_compressed >= evaluation.accuracy_original - allowed_loss
    assert evaluation.accuracy_compressed == pytest.approx(entry.accuracy_compressed, abs=1e-6), where
    assert evaluation.disagreements == entry.disagreements, where
    assert entry.disagreements > 0  # a pair that never disagrees would give search nothing


def test_a_zoo_pair_knows_its_dataset():
    assert pair_dataset(INT8_PAIR) == "fashion-mnist"
    assert pair_dataset("lenet5-int8-static") == "mnist"


def test_a_campaign_in_python_takes_the_pairs_dataset_unless_told_otherwise():
    from compd_core.campaign import CampaignSpec

    assert CampaignSpec(INT8_PAIR).dataset == "fashion-mnist"
    assert CampaignSpec("lenet5-int8-static").dataset == "mnist"
    assert CampaignSpec(INT8_PAIR, dataset="fashion-mnist:train").dataset == "fashion-mnist:train"


def test_search_on_a_fashion_pair_draws_its_seeds_from_fashion_mnist(tmp_path):
    db = tmp_path / "runs.sqlite"
    result = compd("search", "--pair", INT8_PAIR, "--seeds", "3", "--budget", "300",
                   "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    with Store(db, create=False) as store:
        run = store.get_run(summary["run_id"])
    assert run.dataset == "fashion-mnist"
    listed = json.loads(compd("zoo", "list", "--json").stdout)["pairs"]
    assert {p["id"]: p["dataset"] for p in listed}[INT8_PAIR] == "fashion-mnist"


def test_zoo_build_of_an_unknown_original_is_refused_in_one_line(tmp_path):
    result = compd("zoo", "build", "--original", "resnet-cifar", "--out", str(tmp_path / "zoo"))
    assert result.returncode == 2
    assert "no original named resnet-cifar" in result.stderr and "resnet-fashion" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "zoo" / "manifest.json").exists()
