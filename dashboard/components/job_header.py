"""The first line of every live panel: what the job is doing, and its Stop button."""

from __future__ import annotations

import streamlit as st

from dashboard.job_registry import JobLifecycle, may_control


def job_header(job: JobLifecycle, key: str, working: str, stopping: str) -> None:
    """``working`` while the job runs, ``stopping`` once Stop was pressed (the button greys out).

    Someone watching another session's job (through its ``?job=`` link) gets no Stop button."""
    asked = job.stop_event.is_set()
    if not may_control(job):  # type: ignore[arg-type]
        st.markdown(stopping if asked else working)
        st.caption("Started in another browser: you can watch it here; only there can it be stopped.")
        return
    head, button = st.columns([5, 1], vertical_alignment="center")
    if button.button("Stop", key=key, icon=":material/stop_circle:", width="stretch",
                     disabled=asked):
        job.request_stop()
        asked = True
    head.markdown(stopping if asked else working)
