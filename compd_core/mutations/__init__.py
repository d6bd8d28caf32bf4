"""Mutation operators (batch in, batch out, injected generator) and operator-choice policies."""

from compd_core.mutations.base import MutationOperator, MutationResult, snap_to_grid
from compd_core.mutations.filters import (
    AverageBlur,
    GaussianBlur,
    gaussian_kernel1d,
    opencv_gaussian_sigma,
)
from compd_core.mutations.geometric import Elastic, Rotation, Translation
from compd_core.mutations.median import MedianBlur
from compd_core.mutations.noise import GaussianNoise, MultiplicativeNoise, PixelChange, SaltPepper
from compd_core.mutations.photometric import Brightness, Contrast, JpegReencode
from compd_core.mutations.policies import (
    NO_PREVIOUS,
    POLICIES,
    MetropolisHastingsPolicy,
    OperatorPolicy,
    UniformPolicy,
    get_policy,
)
from compd_core.mutations.registry import OPERATOR_SETS, get_operators

__all__ = [
    "NO_PREVIOUS",
    "OPERATOR_SETS",
    "POLICIES",
    "AverageBlur",
    "Brightness",
    "Contrast",
    "Elastic",
    "GaussianBlur",
    "GaussianNoise",
    "JpegReencode",
    "MedianBlur",
    "MetropolisHastingsPolicy",
    "MultiplicativeNoise",
    "MutationOperator",
    "MutationResult",
    "OperatorPolicy",
    "PixelChange",
    "Rotation",
    "SaltPepper",
    "Translation",
    "UniformPolicy",
    "gaussian_kernel1d",
    "get_operators",
    "get_policy",
    "opencv_gaussian_sigma",
    "snap_to_grid",
]
