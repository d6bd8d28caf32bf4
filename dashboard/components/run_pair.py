"""The pair a stored run searched, rebuilt from the description stored with it."""

from __future__ import annotations

import streamlit as st

from compd_core.store import RunRecord
from dashboard import resources, session
from dashboard.choices import PairChoice


def run_pair_ui(run: RunRecord) -> PairChoice | None:
    """The run's pair (None when it cannot be rebuilt here), saying in plain words when one of
    its model files changed or is gone since the run was searched (its stored results still
    show either way)."""
    source = run.pair_source()
    for note in source.changed_files(refuse_missing=False):
        st.warning(note, icon=":material/warning:")
    return resources.choice_for_run(source, session.pair_choice())
