"""Named operator sets, so a strategy or the CLI can ask for operators by one word.

Operators are frozen and stateless, so every caller can share the same instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from compd_core.errors import ConfigError
from compd_core.mutations.base import MutationOperator
from compd_core.mutations.filters import AverageBlur, GaussianBlur
from compd_core.mutations.median import MedianBlur
from compd_core.mutations.geometric import Elastic, Rotation, Translation
from compd_core.mutations.noise import GaussianNoise, MultiplicativeNoise, PixelChange, SaltPepper
from compd_core.mutations.photometric import Brightness, Contrast, JpegReencode

OPERATOR_SETS: Mapping[str, tuple[MutationOperator, ...]] = MappingProxyType(
    {
        # DFLARE's seven operators with the published parameters, in the paper's order.
        "dflare": (
            GaussianNoise(),
            SaltPepper(),
            MultiplicativeNoise(),
            PixelChange(),
            AverageBlur(),
            GaussianBlur(),
            MedianBlur(),
        ),
        # Changes a camera, a scanner or a different hand could make to a real image.
        "natural": (
            Brightness(),
            Contrast(),
            Rotation(),
            Translation(),
            Elastic(),
            JpegReencode(),
        ),
    }
)


def get_operators(name: str) -> list[MutationOperator]:
    """The operators of one named set, in a fresh list the caller may reorder or extend."""
    try:
        return list(OPERATOR_SETS[name])
    except KeyError:
        valid = ", ".join(sorted(OPERATOR_SETS))
        raise ConfigError(f"unknown operator set {name!r}; choose one of: {valid}") from None
