"""Seeds page: the filtered gallery, picks by hand and at random, and uploaded images."""

from __future__ import annotations

import io

import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from compd_core.data import load_mnist
from compd_core.models.evaluate import evaluate_pair
from compd_core.search.criterion import log_margin
from compd_core.zoo import load_pair
from dashboard_support import PAIR, open_page


def _evaluation():
    return evaluate_pair(load_pair(PAIR), load_mnist("test"))


def _matching(at: AppTest) -> int:
    text = next(m.value for m in at.markdown if "images match" in m.value)
    return int(text.split("**")[1].split()[0].replace(",", ""))


def test_gallery_filters_by_class_and_agreement(app: AppTest) -> None:
    open_page(app, "seeds")
    assert not app.exception and not app.error
    evaluation = _evaluation()
    agree = evaluation.pred_original == evaluation.pred_compressed
    assert _matching(app) == int(agree.sum())  # "agreeing only" is on by default
    assert len(app.image) == 32  # one page
    app.multiselect[0].select(3).run()  # true class 3
    assert _matching(app) == int((agree & (evaluation.labels == 3)).sum())
    app.checkbox[0].uncheck().run()  # agreeing only: off
    assert _matching(app) == int((evaluation.labels == 3).sum())


def test_lowest_margin_first_puts_the_closest_image_first(app: AppTest) -> None:
    open_page(app, "seeds")
    app.selectbox[0].select("lowest margin first").run()
    evaluation = _evaluation()
    margins = log_margin(evaluation.probs_compressed, evaluation.pred_original)
    agree = evaluation.pred_original == evaluation.pred_compressed
    first = int(torch.nonzero(agree).flatten()[margins[agree].argmin()])
    assert app.image[0].captions[0].startswith(f"#{first} ")
    assert f"margin {float(margins[first]):.1f}" in app.image[0].captions[0]


def test_picks_by_hand_and_at_random_are_kept_for_the_search(app: AppTest) -> None:
    open_page(app, "seeds")
    picks = [c for c in app.checkbox if c.label == "pick" and not c.disabled]
    picks[0].check().run()
    assert len(app.session_state["picked_positions"]) == 1
    app.number_input[0].set_value(5).run()  # how many
    next(b for b in app.button if b.label.startswith("Pick 5")).click().run()
    picked = app.session_state["picked_positions"]
    assert 2 <= len(picked) <= 6  # the random five may include the hand-picked one
    assert any(f"Your seeds: {len(picked)} picked" in m.value for m in app.markdown)
    next(b for b in app.button if b.label == "Clear picks").click().run()
    assert app.session_state["picked_positions"] == set()


def _png(image: torch.Tensor, size: int) -> bytes:
    pixels = (image[0] * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_images_are_converted_previewed_and_bad_ones_named(app: AppTest) -> None:
    open_page(app, "seeds")
    test = load_mnist("test")
    app.file_uploader[0].set_value([
        ("digit.png", _png(test.images[0], 56), "image/png"),  # twice the size: resized to 28
        ("notes.png", b"just some text", "image/png"),
    ]).run()
    assert not app.exception
    assert len(app.error) == 1 and "notes.png** is not a readable image" in app.error[0].value
    (upload,) = app.session_state["uploads"]
    assert upload.name == "digit.png" and upload.shape == (1, 28, 28)
    label = int(load_pair(PAIR).predict(test.images[:1]).labels_original[0])
    assert any(i.captions == [f"digit.png · both say {label}"] for i in app.image)
