"""Models: choose the pair to study (a shipped one, or your own two files) and a dataset, and see
each model's card: accuracy, size, speed, and how often the two disagree."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from compd_core.data.named import is_named, parse_named
from compd_core.errors import CompdError, ConfigError
from compd_core.zoo.loading import pair_dataset, pair_datasets
from dashboard import profile_jobs, resources, session, uploads
from dashboard.choices import DatasetChoice, PairChoice
from dashboard.components.charts import profile_figure
from dashboard.components.feedback import user_errors
from dashboard.components.images import THUMB_SIZE, picture
from dashboard.components.job_header import job_header

MODEL_TYPES = ["tflite", "keras", "h5", "pt2", "onnx", "pt", "pth", "ts", "torchscript", "jit"]
MAX_DISAGREEMENTS_SHOWN = 8

st.title("Models")
st.caption("Pick the two models to compare: a shipped sample pair, or your own original and "
           "compressed model files. The other pages work on the pair chosen here.")


def sample_pair_ui(current: PairChoice) -> PairChoice:
    entries = resources.zoo_entries()
    ids = list(entries)
    index = ids.index(current.zoo_id) if current.zoo_id in entries else 0
    pair_id = st.selectbox("Sample pair", ids, index=index,
                           format_func=lambda i: f"{i}: {entries[i].description}")
    return PairChoice(zoo_id=pair_id)


def _class_names(text: str) -> tuple[str, ...] | None:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return names or None


def _model_source(role: str, upload: UploadedFile | None, path: str) -> str:
    """The path to load a model from: the uploaded file (kept on disk), else the typed path."""
    if upload is not None:
        return str(uploads.save_upload(upload.name, upload.getvalue()))
    if path.strip():
        return path.strip()
    raise ConfigError(f"give the {role} model: upload its file (at most {uploads.limit_mb()} MB; "
                      "the browser refuses a larger one) or type its path on this machine")


def own_files_ui(current: PairChoice) -> PairChoice | None:
    """Two model files (uploaded, or paths on this machine) with their input shape and classes."""
    st.caption("TorchScript (`torch.jit.script(model).save(...)`) or ONNX files that map a float "
               "batch (N, C, H, W) in [0, 1] to logits or probabilities. Put any normalisation "
               "inside the model.")
    with st.form("own-models", border=True):
        left, right = st.columns(2)
        limit = f"At most {uploads.limit_mb()} MB; type the path of a larger file."
        original_file = left.file_uploader("Original model", type=MODEL_TYPES, help=limit)
        compressed_file = right.file_uploader("Compressed model", type=MODEL_TYPES, help=limit)
        original_path = left.text_input("…or its path on this machine",
                                        value=current.original or "", key="original-path")
        compressed_path = right.text_input("…or its path on this machine",
                                           value=current.compressed or "",
                                           key="compressed-path")
        c, h, w, names = st.columns([1, 1, 1, 3])
        channels = c.number_input("Channels", 1, 4, current.input_shape[0])
        height = h.number_input("Height", 1, 1024, current.input_shape[1])
        width = w.number_input("Width", 1, 1024, current.input_shape[2])
        class_text = names.text_input("Class names, comma-separated (empty: 0, 1, 2, …)",
                                      value=",".join(current.class_names or ()))
        submitted = st.form_submit_button("Use these models", type="primary")
    if not submitted:
        return None if current.is_zoo else current
    original = _model_source("original", original_file, original_path)
    compressed = _model_source("compressed", compressed_file, compressed_path)
    return PairChoice.files(original, compressed, (int(channels), int(height), int(width)),
                            _class_names(class_text))


def dataset_ui(current: DatasetChoice) -> DatasetChoice:
    options = {
        "MNIST test split (2,000 digits)": "mnist",
        "MNIST train split (8,000 digits)": "mnist:train",
        "Fashion-MNIST test split (2,000 clothes)": "fashion-mnist",
        "Fashion-MNIST train split (8,000 clothes)": "fashion-mnist:train",
        "Upload an .npz (arrays x and y)": "upload",
        "A folder or .npz on this machine": "path",
    }
    labels = list(options)
    known = {v: k for k, v in options.items()}
    index = labels.index(known.get(current.spec, known["upload" if current.uploaded else "path"]))
    kind = options[st.radio("Dataset", labels, index=index, horizontal=True,
                            help="Models are measured on it, and seeds are drawn from it.")]
    if is_named(kind):
        return DatasetChoice(kind, known[kind].split(" (")[0])
    if kind == "upload":
        file = st.file_uploader("Dataset (.npz with x: images, y: labels)", type=["npz"],
                                help=f"At most {uploads.limit_mb()} MB.")
        if file is None:
            return current if current.uploaded else DatasetChoice()
        path = uploads.save_upload(file.name, file.getvalue())
        return DatasetChoice(str(path), file.name, uploaded=True)
    text = st.text_input("Folder (one sub-folder of PNG/JPG images per class) or .npz file",
                         value="" if current.spec in options.values() or current.uploaded
                         else current.spec)
    return DatasetChoice(text.strip(), text.strip()) if text.strip() else current


def own_dataset(choice: PairChoice | None, current: DatasetChoice) -> DatasetChoice:
    """A shipped pair opens on its own shipped dataset (a Fashion-MNIST pair on clothes, not
    digits); a dataset of the user's own is kept."""
    parsed = parse_named(current.spec)
    if choice is None or not choice.is_zoo or parsed is None:
        return current
    own = pair_dataset(choice.name)
    if parsed[0] == own:
        return current
    return DatasetChoice(own, "Fashion-MNIST test split" if own == "fashion-mnist" else "MNIST test split")


def readable(message: str, choice: PairChoice) -> str:
    """Name uploaded files by the name the user gave them, not by where they were saved."""
    folder = str(uploads.uploads_dir())
    for path in (choice.original, choice.compressed):
        if path and path.startswith(folder):
            message = message.replace(path, f"{Path(path).name} (uploaded)")
    return message


def _size_change(sizes: list[int]) -> str | None:
    """How the compressed file compares with the original's: pruned files with masks are larger."""
    original, compressed = sizes[0], sizes[1]
    if not original or not compressed:
        return None
    if compressed > original:
        return f"{compressed / original:.1f}× larger file"
    return f"{original / compressed:.1f}× smaller"


def _kib(size: int | None) -> str:
    return "—" if size is None else f"{size / 1024:,.0f} KiB"


def render_cards(choice: PairChoice, data_choice: DatasetChoice) -> None:
    pair = resources.new_pair(choice)
    data = resources.dataset(data_choice, pair.input_shape, pair.class_names)
    evaluation = resources.evaluation(choice, data_choice)
    if choice.is_zoo:
        entry = resources.zoo_entries()[choice.name]
        sizes: tuple[int | None, int | None] = (resources.zoo_original_size(choice.name),
                                                entry.size_bytes)
        latency = (entry.latency_ms_original, entry.latency_ms_compressed)
        latency_note = "measured when the zoo was built"
    else:
        sizes = (pair.original.info.size_bytes, pair.compressed.info.size_bytes)
        latency = resources.latencies(choice)
        latency_note = "measured on this machine"
    accuracy = (evaluation.accuracy_original, evaluation.accuracy_compressed)
    st.subheader(f"{pair.name} on {data.name} ({len(data):,} images)")
    for i, role in enumerate(("Original", "Compressed")):
        model = pair.original if i == 0 else pair.compressed
        with st.container(border=True):
            title, a, b, c, d, e = st.columns([1.6, 1, 1, 1, 1, 1], vertical_alignment="center")
            title.markdown(f"**{role} model**  \n{model.info.kind}, "
                           f"{model.info.num_classes} classes, input {model.info.input_shape}")
            delta = None if i == 0 else f"{(accuracy[1] - accuracy[0]) * 100:+.2f} points"
            a.metric("Accuracy", f"{accuracy[i]:.2%}", delta, delta_arrow="off")
            b.metric("Agreement", f"{evaluation.agreement_rate:.2%}",
                     help="Share of images on which both models give the same top answer")
            c.metric("Disagreements", f"{evaluation.disagreements:,}",
                     help=f"Images of {data.name} on which the two top answers differ")
            size_delta = _size_change(sizes) if i == 1 else None
            d.metric("Size", _kib(sizes[i]), size_delta, delta_color="off", delta_arrow="off")
            speed = None if i == 0 else f"{latency[0] / latency[1]:.1f}× the speed"
            e.metric("Latency", f"{latency[i]:.1f} ms", speed, delta_color="off", delta_arrow="off",
                     help=f"One batch of 256 images, median of 5; {latency_note}")
    st.caption("Accuracy hides where the two differ. The disagreements are what a search looks "
               "for; it finds many more by changing images, and the deviation profile below "
               "measures how large those changes must be.")
    disagree = evaluation.disagreement_indices[:MAX_DISAGREEMENTS_SHOWN].tolist()
    if disagree:
        names = pair.class_names
        st.markdown(f"**Images of {data.name} on which they already disagree**")
        columns = st.columns(MAX_DISAGREEMENTS_SHOWN)
        for column, position in zip(columns, disagree):
            said_o = names[int(evaluation.pred_original[position])]
            said_c = names[int(evaluation.pred_compressed[position])]
            column.image(picture(data.images[position], THUMB_SIZE), width="stretch",
                         caption=f"true {names[int(data.labels[position])]} · "
                                 f"original {said_o} · compressed {said_c}")


PROFILE_BUDGETS = (2, 4, 8, 16, 32, 64, 128)  # grey levels; 128 shows where most seeds give way
PROFILE_JOB_KEY = "profile_job_id"
REFRESH_SECONDS = 0.5


@st.fragment(run_every=REFRESH_SECONDS)
def profile_live(job_id: str) -> None:
    """Progress and Stop while the profile is measured; reruns the page when it has ended."""
    job = profile_jobs.get_job(job_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    job_header(job, f"stop-profile-{job_id}", f"**Measuring the deviation profile** of `{job.pair}`",
               "**Stopping** after the current seed: the budgets searched to the end are kept…")


def profile_ui(choice: PairChoice, data_choice: DatasetChoice) -> None:
    """Measure (as a background job) and draw the pair's deviation profile on request."""
    st.subheader("How close are the deviations? The deviation profile")
    st.caption("For test images on which both models agree, the share on which a search finds a "
               "change of at most N grey levels per pixel that makes the compressed model answer "
               "differently while the original keeps its answer (ties never count). Each budget "
               "searches only the images no smaller budget changed.")
    key = f"profile-{choice.name}-{data_choice.spec}"
    job = profile_jobs.get_job(st.session_state.get(PROFILE_JOB_KEY))
    running = job is not None and job.running
    # Drawn while the job runs too (greyed out): a widget left out of a run forgets its value.
    seeds_col, queries_col, original_col, compressed_col = st.columns(4, vertical_alignment="bottom")
    seeds = seeds_col.number_input("Seed images", 5, 200, 20, step=5, key="profile-seeds",
                                   disabled=running)
    queries = queries_col.number_input("Queries per image and budget", 100, 5_000, 500, step=100,
                                       key="profile-queries", disabled=running)
    margin_original = original_col.number_input(
        "Original's margin at least", 0.0, 0.95, 0.0, step=0.05, key="profile-margin-original",
        disabled=running, help="Count only deviations where the original stays this sure of the "
        "seed's label (its probability minus the next class's); 0: strict only.")
    margin_compressed = compressed_col.number_input(
        "Compressed model's margin at least", 0.0, 0.95, 0.0, step=0.05,
        key="profile-margin-compressed", disabled=running, help="Count only deviations where the "
        "compressed model prefers its new label by this much; 0: strict only (a tie never counts).")
    clicked = st.button("Measure the profile", icon=":material/stacked_bar_chart:",
                        disabled=running)
    if job is not None and running:
        profile_live(job.id)
        return
    if job is not None and job.pair == choice.name and job.dataset == data_choice.spec:
        if job.status == "failed":
            st.error(job.error or "the deviation profile failed", icon=":material/error:")
        elif job.profile is not None:
            st.session_state[key] = job.profile  # kept per pair, for coming back to it
    if clicked:
        job = profile_jobs.start_profile(choice, data_choice.spec, int(seeds), PROFILE_BUDGETS,
                                         int(queries), float(margin_original), float(margin_compressed))
        st.session_state[PROFILE_JOB_KEY] = job.id
        st.rerun()
    profile = st.session_state.get(key)
    if profile is None:
        return
    if profile.stopped:
        st.warning(f"Stopped: {len(profile.points)} of {len(PROFILE_BUDGETS)} budgets were searched "
                   "to the end; the larger ones are not shown.", icon=":material/stop_circle:")
    st.plotly_chart(profile_figure(profile.budgets, [p.share for p in profile.points],
                                   [p.solved for p in profile.points], profile.seeds),
                    key="profile-chart", config={"displayModeBar": False})
    st.markdown(f"**{profile.sentence()}**")
    st.caption(f"Search: {profile.strategy}, {profile.max_queries:,} queries per image and budget, "
               f"{sum(p.queries for p in profile.points):,} queries in all."
               + (f" `compd profile --pair {choice.name}` measures it from the command line."
                  if choice.is_zoo else ""))


current_pair, current_data = session.pair_choice(), session.dataset_choice()
source = st.radio("Models", ["A shipped sample pair", "My own model files"], horizontal=True,
                  index=0 if current_pair.is_zoo else 1)
chosen: PairChoice | None = None
with user_errors():
    if source == "A shipped sample pair":
        chosen = sample_pair_ui(current_pair)
    else:
        chosen = own_files_ui(current_pair)
    current_data = own_dataset(chosen, current_data)
data_choice = dataset_ui(current_data)

if chosen is None:
    st.info("Upload or give the paths of both model files, then press **Use these models**.",
            icon=":material/upload_file:")
else:
    try:
        render_cards(chosen, data_choice)
    except CompdError as exc:
        st.error(readable(str(exc), chosen), icon=":material/error:")
    else:
        session.set_pair_and_dataset(chosen, data_choice)
        with user_errors():
            profile_ui(chosen, data_choice)

with st.expander("All shipped sample pairs"):
    import pandas as pd

    datasets = pair_datasets()
    rows = [
        {"Pair": e.id, "Dataset": datasets[e.id], "Compression": e.description,
         "Accuracy (original)": e.accuracy_original,
         "Accuracy (compressed)": e.accuracy_compressed,
         "Disagreements (test)": e.disagreements, "Size (KiB)": e.size_bytes / 1024,
         "Latency (ms, 256 images)": e.latency_ms_compressed}
        for e in resources.zoo_entries().values()
    ]
    percent = st.column_config.NumberColumn(format="percent", width="small")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "Pair": st.column_config.TextColumn(pinned=True),
        "Compression": st.column_config.TextColumn(width="large"),
        "Accuracy (original)": percent,
        "Accuracy (compressed)": percent,
        "Disagreements (test)": st.column_config.NumberColumn(width="small"),
        "Size (KiB)": st.column_config.NumberColumn(format="%.0f", width="small"),
        "Latency (ms, 256 images)": st.column_config.NumberColumn(format="%.1f", width="small"),
    })
