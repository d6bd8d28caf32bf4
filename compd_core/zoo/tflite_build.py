"""Build the zoo's TFLite pairs: Keras LeNets converted three ways, measured without TensorFlow.

Two steps in two environments. TensorFlow (``pip install '.[zoo-tflite]'``, best in a venv of
its own) trains the Keras originals and converts them (``tflite_convert.py``, run as a
subprocess); this process then loads the written files exactly as users will (Keras on the
torch backend, ``ai-edge-litert`` with the builtin kernels), measures every pair on the MNIST
test split and records it in the zoo's manifest beside the PyTorch pairs::

    python -m compd_core.zoo.tflite_build --python /path/to/tf-venv/bin/python
    python -m compd_core.zoo.tflite_build --measure-only   # files exist: measure and record

Same seed, same TensorFlow version and CPU type -> the same files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from compd_core.compress.tflite import TFLITE_RECIPES, TFLiteConversion
from compd_core.data.mnist import MNIST_CLASSES, load_mnist
from compd_core.errors import ModelLoadError
from compd_core.models.evaluate import evaluate_pair, latency_ms
from compd_core.models.loading import load_classifier
from compd_core.models.pair import ModelPair
from compd_core.models.tflite import TFLiteClassifier
from compd_core.paths import mnist_path, sample_models_dir
from compd_core.zoo.loading import INPUT_SHAPE
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry, update_manifest

_log = logging.getLogger(__name__)
SUBFOLDER = "tflite"  # under the zoo directory: <arch>/original.keras and <arch>/<conversion>.tflite
ARCHS = ("lenet5", "lenet1")
KERNELS = "builtin"  # the kernels every recorded number was measured with
CONVERTER = Path(__file__).with_name("tflite_convert.py")
Progress = Callable[[str], None]


def convert(python: str, directory: Path, seed: int, epochs: int) -> None:
    """Run the TensorFlow side (training and conversion) in ``python``'s environment."""
    command = [python, str(CONVERTER), "--mnist", str(mnist_path()), "--out",
               str(directory / SUBFOLDER), "--seed", str(seed), "--epochs", str(epochs),
               "--archs", ",".join(ARCHS)]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ModelLoadError(
            f"the TensorFlow converter failed (exit {result.returncode}); does {python} have "
            f"tensorflow-cpu (pip install '.[zoo-tflite]')?\n{tail}"
        )


def measure(directory: Path, on_progress: Progress | None = None) -> Manifest:
    """Load the converted files with the runtime, measure each pair, record it in the manifest
    (replacing earlier TFLite entries, keeping every other pair)."""
    say = on_progress or (lambda message: _log.info(message))
    facts = json.loads((directory / SUBFOLDER / "build.json").read_text())
    test_set = load_mnist("test")
    originals: dict[str, OriginalEntry] = {}
    pairs: list[PairEntry] = []
    for arch in ARCHS:
        name = f"{arch}-keras"
        file = f"{SUBFOLDER}/{arch}/original.keras"
        original = load_classifier(directory / file, INPUT_SHAPE, MNIST_CLASSES, name=name)
        accuracy = float((original.predict_proba(test_set.images).argmax(1) == test_set.labels)
                         .float().mean())
        size = (directory / file).stat().st_size
        originals[name] = OriginalEntry(name=name, arch=arch, file=file, accuracy=accuracy,
                                        size_bytes=size, format="keras",
                                        parameters=facts["models"][arch]["parameters"])
        latency_original = latency_ms(original, INPUT_SHAPE)
        for recipe in TFLITE_RECIPES.values():
            entry = _measure_pair(directory, arch, name, recipe, original, latency_original, facts)
            say(f"{entry.id}: accuracy {entry.accuracy_compressed:.4f} (original "
                f"{entry.accuracy_original:.4f}), {entry.disagreements} disagreements")
            pairs.append(entry)

    def record(manifest: Manifest) -> Manifest:
        kept = [p for p in manifest.pairs if p.compression not in TFLITE_RECIPES]
        platform_facts = {**manifest.platform, **runtime_platform()}
        return replace(manifest, originals={**manifest.originals, **originals},
                       pairs=kept + pairs, platform=platform_facts)

    return update_manifest(directory, record)


def _measure_pair(directory: Path, arch: str, original_name: str, recipe: TFLiteConversion,
                  original, latency_original: float, facts: dict) -> PairEntry:
    pair_id = f"{arch}-{recipe.kind}"
    file = f"{SUBFOLDER}/{arch}/{recipe.conversion}.tflite"
    compressed = TFLiteClassifier(directory / file, INPUT_SHAPE, MNIST_CLASSES, kernels=KERNELS,
                                  name=pair_id)
    evaluation = evaluate_pair(ModelPair(original, compressed, name=pair_id), load_mnist("test"))
    return PairEntry(
        id=pair_id,
        original=original_name,
        compression=recipe.kind,
        description=recipe.description,
        arch=arch,
        files={"model": file},
        accuracy_original=evaluation.accuracy_original,
        accuracy_compressed=evaluation.accuracy_compressed,
        disagreements=evaluation.disagreements,
        size_bytes=(directory / file).stat().st_size,
        latency_ms_original=latency_original,
        latency_ms_compressed=latency_ms(compressed, INPUT_SHAPE),
        white_box=False,
        extra={"kernels": KERNELS, "input_dtype": str(compressed.input_dtype),
               "converter": f"tensorflow {facts['tensorflow']}", "keras_at_build": facts["keras"],
               "epochs": facts["epochs"], "seed": facts["seed"]},
    )


def runtime_platform() -> dict[str, str]:
    """Versions of the TensorFlow-free runtime the TFLite numbers were measured with."""
    from importlib.metadata import version

    return {"ai_edge_litert": version("ai-edge-litert"), "keras": version("keras"),
            "machine": platform.machine()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build and measure the zoo's TFLite pairs.")
    parser.add_argument("--python", default=sys.executable,
                        help="a Python with tensorflow-cpu (the zoo-tflite extra)")
    parser.add_argument("--out", type=Path, default=None, help="zoo directory (default: sample_models/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--measure-only", action="store_true",
                        help="measure and record files that were already converted")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    directory = (args.out or sample_models_dir()).resolve()
    if not args.measure_only:
        _log.info("training and converting with %s", args.python)
        convert(args.python, directory, args.seed, args.epochs)
    measure(directory)
    _log.info("TFLite pairs recorded in %s", directory / "manifest.json")


if __name__ == "__main__":
    main()
