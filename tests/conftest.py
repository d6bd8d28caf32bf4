"""Shared fixtures: the real shipped data and zoo pairs (loaded once per session)."""

from __future__ import annotations

import pytest

from compd_core.data import ImageDataset, load_mnist


@pytest.fixture(scope="session")
def mnist_test() -> ImageDataset:
    return load_mnist("test")


@pytest.fixture(scope="session")
def mnist_train() -> ImageDataset:
    return load_mnist("train")


@pytest.fixture(scope="session")
def int8_pair():
    from compd_core.zoo import load_pair

    return load_pair("lenet5-int8-static")
