"""The live chain strip is one HTML block: a redraw caught half way cannot mix two chains."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from dashboard.components.images import picture, strip_html


def test_the_strip_holds_every_picture_and_caption_in_order(mnist_test) -> None:
    images = [mnist_test.images[i] for i in range(3)]
    captions = ["seed", "6: square", "trigger: 7 → 9 <b>"]
    block = strip_html(images, captions, "How the latest deviation was made (image #953, 2 changes)")
    assert block.count("<figure") == 3
    assert re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", block) == [
        "seed", "6: square", "trigger: 7 → 9 &lt;b&gt;"]  # captions are text, not markup
    assert "<strong>How the latest deviation was made</strong> (image #953, 2 changes)" in block
    shown = [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
             for data in re.findall(r'src="data:image/png;base64,([^"]+)"', block)]
    assert len(shown) == 3
    for image, decoded in zip(images, shown):
        assert np.array_equal(decoded, picture(image, 84))  # each tile is its own image, exactly
