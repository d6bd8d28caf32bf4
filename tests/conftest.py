"""Shared fixtures: the real shipped data and zoo pairs (loaded once per session)."""

from __future__ import annotations

import os

# LeNets on 28x28 digits gain nothing from a second thread, and on a busy machine two threads
# per process stall each other; subprocesses (CLI tests, the served dashboard) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from compd_core.data import ImageDataset, load_mnist  # noqa: E402


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
