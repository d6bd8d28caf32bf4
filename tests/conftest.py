"""Shared fixtures: the real shipped data and zoo pairs (loaded once per session)."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

# Tests never write to the user's home or working folder: the user zoo (repaired pairs), the
# uploads folder and the default results database live in one temporary folder for the whole
# session, and subprocesses (CLI tests, the served dashboard) inherit it.
_SCRATCH = tempfile.mkdtemp(prefix="compd-tests-")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["COMPD_USER_ZOO"] = os.path.join(_SCRATCH, "user-zoo")
os.environ["COMPD_UPLOADS"] = os.path.join(_SCRATCH, "uploads")
os.environ["COMPD_DB"] = os.path.join(_SCRATCH, "compd.sqlite")

# LeNets on 28x28 digits gain nothing from a second thread, and on a busy machine two threads
# per process stall each other; subprocesses (CLI tests, the served dashboard) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A shell without job control starts a background command (`pytest &`) with SIGINT ignored, and
# children inherit that: the Ctrl-C tests would press a key no process hears. Python's own
# handler takes it back here (a child gets the default again when it starts).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster of 2 CPUs for a module; its workers find compd_core and tests/
    (where tasks that tests define live) like this process does."""
    ray = pytest.importorskip("ray")
    tests = Path(__file__).parent
    paths = [str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
