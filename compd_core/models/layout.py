"""Channel order of a model's image input: PyTorch models take (N, C, H, W), TensorFlow and
Keras models usually (N, H, W, C). Every adapter hands the package's NCHW batches over in the
order its model declares."""

from __future__ import annotations

from typing import Literal

import numpy as np

from compd_core.errors import ModelLoadError

Layout = Literal["nchw", "nhwc"]


def image_layout(declared: tuple[object, ...], input_shape: tuple[int, int, int], source: str) -> Layout:
    """Which order ``declared`` (one image's shape, unknown sizes as None or -1) takes the
    data's ``input_shape`` (C, H, W) in; NCHW wins where both fit (a 1x1 image or C == H == W)."""
    c, h, w = input_shape

    def fits(want: tuple[int, int, int]) -> bool:
        return len(declared) == 3 and all(
            d is None or (isinstance(d, (int, np.integer)) and (d < 0 or d == x))
            for d, x in zip(declared, want)
        )

    if fits((c, h, w)):
        return "nchw"
    if fits((h, w, c)):
        return "nhwc"
    shown = tuple("?" if d is None or (isinstance(d, (int, np.integer)) and d < 0) else d for d in declared)
    raise ModelLoadError(
        f"{source} takes one image of shape {shown} but the data has images of shape "
        f"(C, H, W) = {input_shape} (or {(h, w, c)} channels-last); give data of the size the "
        "model was trained on, or export the model for that size"
    )


def to_layout(batch: np.ndarray, layout: Layout) -> np.ndarray:
    """An NCHW batch in the model's order, contiguous (interpreters read raw memory)."""
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1) if layout == "nhwc" else batch)
