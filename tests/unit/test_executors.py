"""The executor choice and the device choice: checked at the door, picklable where they travel."""

from __future__ import annotations

import pickle
import sys

import pytest
import torch

from compd_core.cli import main
from compd_core.errors import ConfigError
from compd_core.executors import InProcessExecutor, PairLoader, chunk_size, make_executor
from compd_core.executors.base import MAX_CHUNK, MIN_CHUNK
from compd_core.models.device import resolve_device
from compd_core.zoo import load_pair


@pytest.mark.parametrize("seeds, workers, expected", [
    (1000, 2, 125),  # four chunks per worker
    (1000, 1, 250),
    (10, 2, MIN_CHUNK),  # never so small that the engine's batches run half empty
    (100_000, 2, MAX_CHUNK),  # never more chains than the engine searches at once
])
def test_chunks_fill_the_engines_batches(seeds, workers, expected):
    assert chunk_size(seeds, workers) == expected


def test_the_default_executor_is_in_process_and_ray_options_need_ray():
    assert isinstance(make_executor("inprocess"), InProcessExecutor)
    with pytest.raises(ConfigError, match="apply to --executor ray only"):
        make_executor("inprocess", workers=2)
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        make_executor("dask")


def test_a_missing_ray_is_one_line_that_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--pair", "lenet5-int8-static", "--db", str(tmp_path / "r.sqlite"),
              "--executor", "ray"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip() == "error: --executor ray needs Ray: pip install 'compd[ray]'"
    assert not (tmp_path / "r.sqlite").exists()  # refused before anything was written


def test_search_help_names_the_extra_that_brings_ray(capsys):
    """Square brackets are markup in the help's renderer: unescaped, '[ray]' vanished."""
    main(["search", "--help"])
    assert "'compd[ray]'" in capsys.readouterr().out


def test_cuda_without_a_gpu_is_refused_and_auto_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"--device cuda needs a CUDA GPU.*use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_a_pair_loader_is_a_few_picklable_bytes_that_build_the_same_pair(mnist_test):
    loader = PairLoader("lenet5-int8-static")
    sent = pickle.dumps(loader)
    assert len(sent) < 300  # what travels with every task: never the models
    rebuilt = pickle.loads(sent)()
    reference = load_pair("lenet5-int8-static")
    x = mnist_test.images[:64]
    a, b = rebuilt.predict(x), reference.predict(x)
    assert torch.equal(a.original, b.original) and torch.equal(a.compressed, b.compressed)
    assert rebuilt.queries == 64 and reference.queries == 64  # each pair counts its own


def test_on_the_cpu_a_pair_answers_as_before_and_int8_models_stay_on_the_cpu(mnist_test):
    pair = load_pair("lenet5-int8-static")
    moved = pair.on("cpu")
    x = mnist_test.images[:32]
    assert torch.equal(moved.predict(x).compressed, pair.predict(x).compressed)
    # PyTorch's int8 kernels exist only on the CPU: asking for another device keeps it there
    assert pair.compressed.on("cuda") is pair.compressed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_a_float_model_runs_there_and_answers_on_the_cpu(mnist_test):
    pair = load_pair("lenet5-distilled")
    moved = pair.on("cuda")
    x = mnist_test.images[:64]
    on_gpu, on_cpu = moved.predict(x), pair.predict(x)
    assert on_gpu.original.device.type == "cpu" and moved.original.device.type == "cuda"
    assert torch.allclose(on_gpu.original, on_cpu.original, atol=1e-4)
    assert pair.original.device.type == "cpu"  # the shared, cached model was not moved


def test_what_travels_between_driver_and_workers_is_its_own_size(int8_pair, mnist_test):
    """A seed is a view of its dataset and a chain step's image one of its search batch:
    pickled as they are, they carry those whole storages along."""
    import pickle

    from compd_core.executors.base import chunked, compact_result
    from compd_core.search.seeds import select_seeds
    from compd_core.search.settings import SearchSettings
    from compd_core.search.strategies import SearchContext, get_strategy

    seeds = select_seeds(int8_pair, mnist_test, 4, seed=0)
    chunk = chunked(seeds, 4)[0]
    assert len(pickle.dumps(chunk)) < 4 * 8_000  # four 28x28 images and their labels
    assert [s.index for s in chunk] == [s.index for s in seeds]
    assert all(torch.equal(a.image, b.image) for a, b in zip(chunk, seeds))
    context = SearchContext(int8_pair, SearchSettings(max_queries=150), 0)
    results = list(get_strategy("compd").run(context, seeds))
    assert any(r.chain for r in results)
    for result in results:
        sent = compact_result(result)
        steps = max(1, len(result.chain))
        assert len(pickle.dumps(sent)) < 8_000 * (2 + steps)  # seed, trigger, one image a step
        assert [torch.equal(a.image, b.image) for a, b in zip(sent.chain, result.chain)] == [True] * len(result.chain)
        assert (sent.queries, sent.exit_reason, sent.trace) == (result.queries, result.exit_reason, result.trace)
        if result.trigger is not None:
            assert torch.equal(sent.trigger.image, result.trigger.image)


def test_a_servers_executor_comes_from_its_environment(monkeypatch):
    for name in ("COMPD_EXECUTOR", "COMPD_RAY_ADDRESS", "COMPD_RAY_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    from compd_core.executors import executor_from_environment

    assert isinstance(executor_from_environment(), InProcessExecutor)
    monkeypatch.setenv("COMPD_EXECUTOR", "dask")
    with pytest.raises(ConfigError, match=r"COMPD_EXECUTOR.*unknown executor 'dask'"):
        executor_from_environment()
    monkeypatch.setenv("COMPD_EXECUTOR", "ray")
    monkeypatch.setenv("COMPD_RAY_WORKERS", "two")
    with pytest.raises(ConfigError, match="COMPD_RAY_WORKERS must be a whole number >= 1, got 'two'"):
        executor_from_environment()
    pytest.importorskip("ray")
    monkeypatch.setenv("COMPD_RAY_WORKERS", "2")
    executor = executor_from_environment()
    assert (executor.name, executor.workers, executor.address) == ("ray", 2, None)


def test_a_worker_loads_each_pair_once_and_keeps_a_few():
    """A worker of a campaign over several pairs: a pair is loaded the first time one of its
    chunks arrives, reused after, and the least recently used dropped beyond the limit."""
    from dataclasses import dataclass

    from compd_core.executors.ray_executor import MAX_PAIRS_PER_WORKER, ChunkSearcher
    from compd_core.search.settings import SearchSettings
    from compd_core.executors import SearchWork

    built: list[str] = []

    @dataclass(frozen=True)
    class Recording(PairLoader):
        def __call__(self):
            built.append(self.source)
            return object()

    worker = ChunkSearcher(SearchWork(Recording("a"), "compd", SearchSettings(), 0))
    first = worker.pair_for(Recording("a"))
    assert worker.pair_for(Recording("a")) is first and built == ["a"]
    names = [f"p{k}" for k in range(MAX_PAIRS_PER_WORKER)]
    for name in names:
        worker.pair_for(Recording(name))
    assert built == ["a", *names] and len(worker.pairs) == MAX_PAIRS_PER_WORKER
    worker.pair_for(Recording("a"))  # dropped as the least recently used: loaded again
    assert built == ["a", *names, "a"]
    worker.pair_for(Recording(names[-1]))
    assert built[-1] == "a"  # the most recent ones were kept
