"""Seeds: the images a search starts from. Browse and filter the dataset, pick by hand or at
random, or upload your own pictures."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from compd_core.data.dataset import ImageDataset
from compd_core.data.files import read_image
from compd_core.errors import CompdError, DatasetError
from compd_core.models.evaluate import PairEvaluation
from compd_core.models.pair import ModelPair
from dashboard import resources, seeding, session
from dashboard.choices import Upload
from dashboard.components.feedback import user_errors
from dashboard.components.images import THUMB_SIZE, image_strip, picture

PER_ROW = 8
ROWS = 4  # 32 images a page: enough to browse, few enough to draw quickly

st.title("Seeds")
st.caption("A search starts from seed images on which both models agree and the original is "
           "right, and changes them step by step. Pick seeds here, or let the Search page "
           "choose them for you.")


def _toggle(position: int) -> None:
    picks = session.picked_positions()
    picks.symmetric_difference_update({position})


def filters_ui(names: tuple[str, ...]) -> seeding.GalleryFilter:
    a, b, c, d = st.columns([2, 2, 2, 1.4], vertical_alignment="bottom")
    classes = a.multiselect("True class", range(len(names)), format_func=lambda i: names[i],
                            placeholder="any")
    labels = b.multiselect("Original model's answer", range(len(names)),
                           format_func=lambda i: names[i], placeholder="any")
    orders: list[seeding.GalleryOrder] = ["dataset order", "lowest margin first"]
    order = c.selectbox("Order", orders,
                        help="Margin: how sure the compressed model is of the original's answer. "
                             "Low-margin images are closest to flipping; searches start there.")
    agreeing = d.checkbox("Agreeing only", value=True,
                          help="Only images on which both models give the same answer")
    return seeding.GalleryFilter(tuple(classes), tuple(labels), agreeing,
                                 order or "dataset order")


def random_picks_ui(positions: np.ndarray) -> None:
    a, b, c, d = st.columns([1, 1, 1.2, 1.2], vertical_alignment="bottom")
    count = a.number_input("How many", 1, 500, 16)
    seed = b.number_input("Random seed", 0, 2**31 - 1, 0)
    if c.button(f"Pick {count} at random", icon=":material/casino:", width="stretch",
                disabled=len(positions) == 0, help="From the images the filters show"):
        session.picked_positions().update(seeding.random_picks(positions, int(count), int(seed)))
    if d.button("Clear picks", icon=":material/deselect:", width="stretch"):
        session.picked_positions().clear()


def gallery(positions: np.ndarray, data: ImageDataset, evaluation: PairEvaluation,
            names: tuple[str, ...]) -> None:
    per_page = PER_ROW * ROWS
    pages = max(1, math.ceil(len(positions) / per_page))
    head, pager = st.columns([4, 1], vertical_alignment="bottom")
    page = pager.number_input(f"Page (of {pages})", 1, pages, 1)
    head.markdown(f"**{len(positions):,} images match** · {len(session.picked_positions())} "
                  "picked")
    shown = positions[(page - 1) * per_page: page * per_page]
    margins = seeding.margins(evaluation)
    ok = seeding.eligible(evaluation)
    picks = session.picked_positions()
    for start in range(0, len(shown), PER_ROW):
        for column, position in zip(st.columns(PER_ROW), shown[start:start + PER_ROW]):
            p = int(position)
            o, c = int(evaluation.pred_original[p]), int(evaluation.pred_compressed[p])
            answer = names[o] if o == c else f"{names[o]} vs {names[c]}"
            truth = int(evaluation.labels[p])
            if truth != o:
                answer += f" (true {names[truth]})"
            column.image(picture(data.images[p], THUMB_SIZE), width="stretch",
                         caption=f"#{int(data.indices[p])} · says {answer} · margin {margins[p]:.1f}")
            # The key carries the picked state, so picks made by the buttons above show at once.
            column.checkbox("pick", value=p in picks, key=f"seed-{p}-{p in picks}",
                            on_change=_toggle, args=(p,), disabled=not bool(ok[p]),
                            help=None if bool(ok[p]) else "Not searchable: the models disagree "
                            "or the original is wrong")


def uploads_ui(pair: ModelPair, names: tuple[str, ...]) -> None:
    shape = pair.input_shape
    files = st.file_uploader(f"PNG or JPG images (converted to {shape[0]} channel(s), "
                             f"{shape[1]}×{shape[2]} pixels)", type=["png", "jpg", "jpeg"],
                             accept_multiple_files=True,
                             key=f"uploads-{st.session_state.get('upload_round', 0)}")
    invert = st.checkbox("Invert colours", help="MNIST digits are light on dark: invert photos "
                         "of dark ink on light paper")
    if files:
        converted: list[Upload] = []
        for file in files:
            try:
                pixels = read_image(file.getvalue(), shape[0], (shape[1], shape[2]))
            except DatasetError as exc:
                reason = str(exc).removeprefix("uploaded image ")  # says what is wrong
                st.error(f"**{file.name[:80]}** {reason}",
                         icon=":material/broken_image:")
                continue
            if invert:
                pixels = 255 - pixels
            converted.append(Upload(file.name, pixels.tobytes(), tuple(pixels.shape)))
        session.set_uploads(converted)
    converted = session.uploads()
    if not converted:
        return
    if st.button("Remove the uploaded seeds", icon=":material/delete:"):
        session.set_uploads([])
        st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1
        st.rerun()
    batch = seeding.upload_tensor(converted)
    prediction = pair.predict(batch)
    captions = []
    for i, item in enumerate(converted):
        o = int(prediction.labels_original[i])
        c = int(prediction.labels_compressed[i])
        verdict = f"both say {names[o]}" if o == c else f"already differ: {names[o]} vs {names[c]}"
        captions.append(f"{item.name} · {verdict}")
    st.markdown(f"**{len(converted)} uploaded image(s), as the models see them**")
    image_strip(list(batch), captions, per_row=PER_ROW)


choice, data_choice = session.pair_choice(), session.dataset_choice()
st.caption(f"Pair **{choice.name}** · dataset **{data_choice.label}** (change them on the "
           "Models page)")
try:
    pair = resources.new_pair(choice)
    data = resources.dataset(data_choice, pair.input_shape, pair.class_names)
    evaluation = resources.evaluation(choice, data_choice)
except CompdError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

names = pair.class_names
from_dataset, from_uploads = st.tabs(["From the dataset", "Upload images"])
with from_dataset:
    rule = filters_ui(names)
    positions = seeding.gallery_positions(evaluation, rule)
    random_picks_ui(positions)
    gallery(positions, data, evaluation, names)
with from_uploads, user_errors():
    uploads_ui(pair, names)

picks = sorted(session.picked_positions())
uploaded = session.uploads()
st.divider()
if picks or uploaded:
    st.markdown(f"**Your seeds: {len(picks)} picked from {data.name}, {len(uploaded)} uploaded.**")
    if picks:
        shown = picks[:16]
        image_strip([data.images[p] for p in shown], [f"#{int(data.indices[p])}" for p in shown],
                    per_row=16, size=56)
        if len(picks) > len(shown):
            st.caption(f"…and {len(picks) - len(shown)} more.")
    st.page_link("views/search.py", label="Search from these seeds", icon=":material/arrow_forward:")
else:
    st.caption("No seeds picked: the Search page will choose them (at random, or lowest margin "
               "first).")
