"""A search's progress: drawn live (a fragment that redraws itself) while it runs, then once more
from the same data when it has ended."""

from __future__ import annotations

import time

import streamlit as st

from compd_core.search.results import SeedResult
from dashboard import jobs
from dashboard.components.charts import fitness_figure, operator_figure
from dashboard.components.images import strip_html
from dashboard.components.trigger_view import PLOTLY_CONFIG, source_name
from dashboard.components.job_header import job_header

REFRESH_SECONDS = 0.5  # the panel must refresh at least once a second; half leaves headroom
MAX_STRIP = 10  # images in the chain strip (long chains are thinned evenly)


def render_progress(job: jobs.Job, progress: jobs.Progress, *, compact: bool = False,
                    live: bool = False) -> None:
    """Counters, then (unless compact) fitness curves, operator use and the latest chain. Live,
    the panel's header draws the progress bar (as for every job)."""
    total = job.spec.seeds
    if not live:
        st.progress(min(progress.seeds_done / total, 1.0),
                    text=f"{progress.seeds_done} of {total} seeds searched · "
                         f"{progress.found} deviation{'s' if progress.found != 1 else ''} found")
    columns = st.columns(5)
    columns[0].metric("Seeds searched", f"{progress.seeds_done} / {total}")
    columns[1].metric("Deviations found", progress.found)
    columns[2].metric("Queries", f"{progress.queries:,}",
                      help="One query = one image evaluated by both models")
    columns[3].metric("Queries per second", f"{progress.queries_per_second:,.0f}")
    columns[4].metric("Elapsed", f"{job.seconds:.1f} s")
    if compact:
        return
    finished = progress.finished
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Fitness of each seed's chain**")
        if any(progress.traces.values()):
            boundary = 0.0 if job.spec.strategy == "compd" else None
            st.plotly_chart(fitness_figure(progress.traces, finished, boundary),
                            key=f"fitness-{job.id}", config=PLOTLY_CONFIG)
        else:
            st.caption("Waiting for the first steps…")
    with right:
        st.markdown("**Mutation operators: tried and helpful**")
        if progress.operators:
            st.plotly_chart(operator_figure(progress.operators), key=f"operators-{job.id}",
                            config=PLOTLY_CONFIG)
        else:
            st.caption("Waiting for the first steps…")
    render_chain_strip(job.latest_found(progress), job.class_names)


def render_chain_strip(result: SeedResult | None, names: tuple[str, ...]) -> None:
    """The accepted mutations that turned the latest seed into a trigger, as images."""
    if result is None or result.trigger is None:
        return
    steps = result.chain
    if len(steps) > MAX_STRIP - 2:
        stride = len(steps) / (MAX_STRIP - 2)
        steps = [steps[int(i * stride)] for i in range(MAX_STRIP - 2)]
    images = [result.seed.image] + [s.image for s in steps] + [result.trigger.image]
    captions = (["seed"] + [f"{s.iteration}: {s.operator.replace('_', ' ')}" for s in steps]
                + [f"trigger: {names[result.trigger.label_original]} → "
                   f"{names[result.trigger.label_compressed]}"])
    heading = (f"How the latest deviation was made ({source_name(result.seed.index)}, "
               f"{len(result.chain)} accepted changes)")
    st.html(strip_html(images, captions, heading))


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel(job_id: str, compact: bool = False) -> None:
    """Redraws itself every ``REFRESH_SECONDS`` while the job runs; reruns the page when it ends,
    so the page can draw the final state without a timer."""
    job = jobs.get_job(job_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    job_header(job, f"stop-{job_id}",
               f"**Searching** with `{job.spec.strategy}` on `{job.spec.pair}` "
               f"(run `{job.run_id}`)",
               "**Stopping:** no more queries; saving the seeds that were in progress…")
    render_progress(job, job.progress(), compact=compact, live=True)
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 10) % 10}"
    st.caption(f"Live · updated {stamp} · every seed's result is saved as soon as it ends",
               help="Refreshes twice a second")
