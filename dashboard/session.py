"""One browser session's choices, kept in ``st.session_state`` and mirrored in the URL.

The URL carries the job and run a session is looking at (``?job=…&run=…``), so a reload, which
starts a new session, finds them again, and with the job the pair, dataset, picked seeds and
uploads it was started with; everything heavier stays in ``resources`` and ``jobs``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import jobs, resources
from dashboard.choices import DatasetChoice, PairChoice, SessionChoices, Upload, default_pair
from dashboard.uploads import unpark_uploads

_PAIR = "pair_choice"
_DATASET = "dataset_choice"
_JOB = "job_id"
_RUN = "run_id"
_PICKS = "picked_positions"
_UPLOADS = "uploads"


def pair_choice() -> PairChoice:
    """The pair this session works on; the shipped default until the user picks another."""
    return st.session_state.get(_PAIR) or default_pair()


def dataset_choice() -> DatasetChoice:
    return st.session_state.get(_DATASET) or DatasetChoice()


def set_pair_and_dataset(pair: PairChoice, data: DatasetChoice) -> None:
    """Switch pair or dataset; seeds picked for the previous ones no longer apply."""
    if pair != pair_choice() or data != dataset_choice():
        st.session_state[_PICKS] = set()
    st.session_state[_PAIR] = pair
    st.session_state[_DATASET] = data


def current_job() -> jobs.Job | None:
    """This session's search job, re-attached from the URL after a reload (with the choices
    the job was started with: the reloaded page then shows the job's pair, not the default)."""
    job_id = st.session_state.get(_JOB)
    if job_id is None:
        found = jobs.get_job(st.query_params.get("job"))
        if found is not None:
            job_id = st.session_state[_JOB] = found.id
            restore(found.choices or _choices_of_spec(found))
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


def snapshot() -> SessionChoices:
    """This session's choices, for a job to carry (see ``current_job``)."""
    return SessionChoices(pair_choice(), dataset_choice(), tuple(sorted(picked_positions())),
                          tuple(uploads()))


def restore(choices: SessionChoices) -> None:
    """Take over the choices a job was started with (a reloaded page has none of its own)."""
    st.session_state[_PAIR] = choices.pair
    st.session_state[_DATASET] = choices.dataset
    st.session_state[_PICKS] = set(choices.picks)
    st.session_state[_UPLOADS] = unpark_uploads(choices)


def _choices_of_spec(job: jobs.Job) -> SessionChoices:
    """For a job started without a session's choices (a resumed run): its own pair when it can
    be rebuilt here, this session's otherwise; no picks or uploads."""
    pair = resources.choice_for_run(job.spec.source, pair_choice()) or pair_choice()
    return SessionChoices(pair, dataset_choice())
