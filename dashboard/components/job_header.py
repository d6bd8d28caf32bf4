"""The head of every live panel, whatever the job: what it is doing, its Stop button and its
progress bar, drawn from the job protocol's ``Progress`` events."""

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
        progress_bar(job)
        return
    head, button = st.columns([5, 1], vertical_alignment="center")
    if button.button("Stop", key=key, icon=":material/stop_circle:", width="stretch",
                     disabled=asked):
        job.request_stop()
        asked = True
    head.markdown(stopping if asked else working)
    progress_bar(job)


def progress_bar(job: JobLifecycle) -> None:
    """How far the job is: done of total units, the job's own line, the time so far."""
    latest, elapsed = job.latest, f"{job.seconds:.1f} s"
    if latest is None:
        st.progress(0.0, text=f"starting · {elapsed}")
        return
    if latest.total:
        count = f"{latest.done} of {latest.total} {latest.unit}{'' if latest.total == 1 else 's'} · "
    else:
        count = ""
    st.progress(latest.fraction or 0.0, text=f"{count}{latest.line} · {elapsed}")
