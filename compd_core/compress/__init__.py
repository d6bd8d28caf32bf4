"""Compression recipes: how each compressed variant is made, stored, rebuilt and fine-tuned."""

from compd_core.compress.base import Compressed, Recipe
from compd_core.compress.distillation import Distillation
from compd_core.compress.onnx_int8 import OnnxInt8
from compd_core.compress.precision import BFloat16
from compd_core.compress.pruning import GlobalL1Pruning
from compd_core.compress.quantization import DynamicInt8, QatInt8, StaticInt8
from compd_core.compress.tflite import TFLITE_RECIPES
from compd_core.errors import ConfigError

RECIPES: dict[str, Recipe] = {
    recipe.kind: recipe
    for recipe in (
        StaticInt8(),
        DynamicInt8(),
        QatInt8(),
        GlobalL1Pruning(0.5),
        GlobalL1Pruning(0.9),
        Distillation(),
        BFloat16(),
        OnnxInt8(),
    )
}


def get_recipe(kind: str) -> Recipe:
    """The recipe for a compression kind (made here, or converted by TensorFlow), or a
    ``ConfigError`` listing the known kinds."""
    known = {**RECIPES, **TFLITE_RECIPES}
    if kind not in known:
        raise ConfigError(f"unknown compression {kind!r}; known: {', '.join(known)}")
    return known[kind]


__all__ = ["RECIPES", "TFLITE_RECIPES", "Compressed", "Recipe", "get_recipe"]
