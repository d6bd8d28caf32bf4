"""The first line of every live panel: what the job is doing, and its Stop button."""

from __future__ import annotations

import streamlit as st

from dashboard.job_registry import JobLifecycle


def job_header(job: JobLifecycle, key: str, working: str, stopping: str) -> None:
    """``working`` while the job runs, ``stopping`` once Stop was pressed (the button greys out)."""
    head, button = st.columns([5, 1], vertical_alignment="center")
    asked = job.stop_event.is_set()
    if button.button("Stop", key=key, icon=":material/stop_circle:", width="stretch",
                     disabled=asked):
        job.request_stop()
        asked = True
    head.markdown(stopping if asked else working)
