"""Process-wide cached resources: the results store, loaded models, datasets, evaluations.

Everything here is built once per process (``st.cache_resource``) and shared by every browser
session, so it is treated as read-only: a search gets its own ``ModelPair`` (own query counter)
over the shared classifiers, and nothing here is ever changed in place.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from compd_core.data.dataset import ImageDataset
from compd_core.data.resolve import load_dataset
from compd_core.models.base import Classifier
from compd_core.models.evaluate import PairEvaluation, evaluate_pair, latency_ms
from compd_core.models.pair import ModelPair
from compd_core.paths import default_db_path
from compd_core.store import Store
from compd_core.zoo import PairEntry
from dashboard.choices import DatasetChoice, PairChoice

def db_path() -> Path:
    """The results database of this server: ``$COMPD_DB`` (which ``compd dashboard --db`` sets
    and tests point at a temporary file), else ./compd.sqlite."""
    return default_db_path().expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """One ``Store`` per database file and process; it gives every thread its own connection."""
    return _store(str(db_path()))


@st.cache_resource(show_spinner="Loading the models…")
def classifiers(choice: PairChoice) -> tuple[Classifier, Classifier]:
    """The two models of a pair, loaded once per process."""
    return choice.load_classifiers()


def new_pair(choice: PairChoice) -> ModelPair:
    """A fresh pair (own query counter) over the cached models: one per search job."""
    original, compressed = classifiers(choice)
    return ModelPair(original, compressed, name=choice.name)


@st.cache_resource(show_spinner="Loading the dataset…")
def dataset(
    choice: DatasetChoice, input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None = None,
) -> ImageDataset:
    return load_dataset(choice.spec, input_shape, class_names)


@st.cache_resource(show_spinner="Running both models over the dataset…")
def evaluation(pair: PairChoice, data: DatasetChoice) -> PairEvaluation:
    """Both models' probabilities on every image: the model cards and the seed gallery use it."""
    model_pair = new_pair(pair)
    return evaluate_pair(model_pair, dataset(data, model_pair.input_shape,
                                             model_pair.class_names))


@st.cache_resource(show_spinner="Timing both models…")
def latencies(pair: PairChoice) -> tuple[float, float]:
    """Milliseconds per batch of 256 for (original, compressed), measured on this machine."""
    original, compressed = classifiers(pair)
    shape = original.info.input_shape
    return latency_ms(original, shape), latency_ms(compressed, shape)


@st.cache_resource(show_spinner=False)
def zoo_entries() -> dict[str, PairEntry]:
    """The shipped (and user-registered) pairs by id, read once per process."""
    from compd_core.zoo import list_pairs

    return {entry.id: entry for entry in list_pairs()}


@st.cache_resource(show_spinner=False)
def zoo_original_size(pair_id: str) -> int:
    from compd_core.zoo import find_entry

    _, manifest, entry = find_entry(pair_id)
    return manifest.originals[entry.original].size_bytes


def choice_for_run(source: PairChoice, session_choice: PairChoice) -> PairChoice | None:
    """How to rebuild a stored run's pair here, from ``RunRecord.pair_source()`` (or a job's
    ``CampaignSpec.source``): its own files while they are all there, a zoo pair the zoo knows,
    or, for a run stored before runs kept their files, this session's files of that name."""
    if not source.is_zoo:
        present = all(Path(path).is_file() for _, path, _ in source.model_files())
        return source if present else None
    if source.zoo_id in zoo_entries():
        return source
    if session_choice.name == source.zoo_id:
        return session_choice
    return None


def class_names_for(choice: PairChoice | None, num_classes: int) -> tuple[str, ...]:
    """Class names to label a run's charts with; plain numbers when the pair is unknown here."""
    if choice is not None:
        names = classifiers(choice)[0].info.class_names
        if len(names) == num_classes:
            return names
    return tuple(str(i) for i in range(num_classes))
