"""One browser session's choices, kept in ``st.session_state`` and mirrored in the URL.

The URL carries the job and run a session is looking at (``?job=…&run=…``), so a reload, which
starts a new session, finds them again; everything heavier stays in ``resources`` and ``jobs``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import jobs
from dashboard.choices import DatasetChoice, PairChoice, Upload

_PAIR = "pair_choice"
_DATASET = "dataset_choice"
_JOB = "job_id"
_RUN = "run_id"
_PICKS = "picked_positions"
_UPLOADS = "uploads"


def pair_choice() -> PairChoice:
    """The pair this session works on; the shipped default until the user picks another."""
    return st.session_state.get(_PAIR) or PairChoice()


def dataset_choice() -> DatasetChoice:
    return st.session_state.get(_DATASET) or DatasetChoice()


def set_pair_and_dataset(pair: PairChoice, data: DatasetChoice) -> None:
    """Switch pair or dataset; seeds picked for the previous ones no longer apply."""
    if pair != pair_choice() or data != dataset_choice():
        st.session_state[_PICKS] = set()
    st.session_state[_PAIR] = pair
    st.session_state[_DATASET] = data


def current_job() -> jobs.Job | None:
    """This session's search job, re-attached from the URL after a reload."""
    job_id = st.session_state.get(_JOB)
    if job_id is None:
        from_url = st.query_params.get("job")
        if from_url and jobs.get_job(from_url) is not None:
            job_id = st.session_state[_JOB] = from_url
    job = jobs.get_job(job_id)
    if job is not None and st.query_params.get("job") != job.id:
        st.query_params["job"] = job.id
    return job


def set_current_job(job: jobs.Job) -> None:
    st.session_state[_JOB] = job.id
    st.query_params["job"] = job.id
    set_current_run(job.run_id)


def current_run() -> str | None:
    """The run the Triggers and Report pages open on (from the session, else the URL)."""
    run_id = st.session_state.get(_RUN) or st.query_params.get("run")
    if run_id and st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    return run_id


def set_current_run(run_id: str | None) -> None:
    st.session_state[_RUN] = run_id
    if run_id is None:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = run_id


def picked_positions() -> set[int]:
    """Dataset positions picked by hand on the Seeds page (mutable: the page edits it)."""
    return st.session_state.setdefault(_PICKS, set())


def uploads() -> list[Upload]:
    """Uploaded seed images, already converted to the pair's input shape."""
    return st.session_state.setdefault(_UPLOADS, [])


def set_uploads(items: list[Upload]) -> None:
    st.session_state[_UPLOADS] = items
