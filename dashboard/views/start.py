"""Start: what a compression deviation is, and one click that finds one live.

This page must be usable within seconds of `compd dashboard`: until the button is pressed (or a
demo is running) it imports nothing heavy, and it warms the models up once it has drawn.
"""

from __future__ import annotations

import streamlit as st

from dashboard import warmup
from dashboard.demo import (
    DEMO_BUDGET,
    DEMO_FOUND,
    DEMO_MARGIN_COMPRESSED,
    DEMO_MARGIN_ORIGINAL,
    DEMO_MAX_LEVELS,
    DEMO_NOTE,
    DEMO_PAIR,
    DEMO_SEEDS,
    strongest_closest,
)

st.title("Where does the compressed model stop agreeing with its original?")
st.markdown(
    "A **compression deviation** is an input on which a compressed model (quantized, pruned or "
    "distilled to run on a small device) answers differently from the original model it was "
    "made from, while the original still answers correctly. The demo below looks for one that "
    f"changes no pixel by more than {DEMO_MAX_LEVELS} of 255 grey levels, and says by how much "
    "each model is sure: such inputs are exactly where the compressed copy can no longer be "
    "trusted."
)


def _start_demo() -> None:
    from compd_core.campaign import CampaignSpec
    from compd_core.search.criterion import Criterion
    from compd_core.search.settings import SearchSettings
    from dashboard import jobs, resources, session
    from dashboard.choices import DatasetChoice, PairChoice, SessionChoices

    running = session.current_job()
    if running is not None and running.running:
        st.warning("One of your searches is still running (see the Search page); stop it before "
                   "starting the demo.", icon=":material/hourglass_top:")
        return
    choice, data_choice = PairChoice(zoo_id=DEMO_PAIR), DatasetChoice()
    pair = resources.new_pair(choice)
    data = resources.dataset(data_choice, pair.input_shape, pair.class_names)
    criterion = Criterion(min_margin_original=DEMO_MARGIN_ORIGINAL,
                          min_margin_compressed=DEMO_MARGIN_COMPRESSED, max_linf=DEMO_MAX_LEVELS / 255)
    spec = CampaignSpec(pair=choice.name, strategy="compd", seeds=DEMO_SEEDS,
                        settings=SearchSettings(max_queries=DEMO_BUDGET, criterion=criterion),
                        rng_seed=0, dataset=data_choice.spec, seed_order="random")
    job = jobs.start_search(resources.get_store(), spec, pair, data, kind="demo",
                            stop_after=DEMO_FOUND, note=DEMO_NOTE,
                            choices=SessionChoices(choice, data_choice))
    session.set_current_job(job)


def _show_demo() -> None:
    from dashboard import resources, session
    from dashboard.components.live import live_panel
    from dashboard.components.trigger_view import render_trigger

    job = session.current_job()
    if job is None or job.kind != "demo":
        return
    if job.running:
        live_panel(job.id, compact=True)
        return
    if job.status == "failed":
        st.error(job.error or "the search failed", icon=":material/error:")
        return
    results = resources.get_store().load_results(job.run_id, details=True)
    found = [r for r in results if r.found]
    if not found:
        st.info(f"No deviation among the {len(results)} seeds searched within "
                f"{DEMO_BUDGET:,} queries each. Try a larger budget on the Search page.")
        return
    result = strongest_closest(found)
    queries = sum(r.queries for r in results)
    st.success(f"Found {len(found)} deviation{'s' * (len(found) != 1)} in {job.seconds:.1f} s, "
               f"searching {len(results)} digits at once ({queries:,} queries of both models in "
               "all). The strongest, closest one:", icon=":material/check_circle:")
    render_trigger(result, job.class_names, key=f"demo-{job.run_id}")
    st.page_link("views/triggers.py", label="Inspect this trigger and how it was made",
                 icon=":material/compare:")


def _has_job() -> bool:
    return bool(st.session_state.get("job_id") or st.query_params.get("job"))


clicked = False
with st.container(border=True):
    text, action = st.columns([3, 1], vertical_alignment="center")
    text.markdown(
        f"**Try it now.** Search the shipped pair `{DEMO_PAIR}` (LeNet-5 on handwritten "
        f"digits against a smaller student distilled from it) from {DEMO_SEEDS} test digits "
        f"for inputs that change no pixel by more than {DEMO_MAX_LEVELS}/255, on which the "
        f"original stays sure of the digit (probability margin at least {DEMO_MARGIN_ORIGINAL}) "
        f"and the compressed model clearly answers another (margin at least "
        f"{DEMO_MARGIN_COMPRESSED}). It stops after {DEMO_FOUND}: a few seconds on a busy 2-core machine."
    )
    clicked = action.button("Find a deviation now", type="primary", icon=":material/bolt:",
                            width="stretch")

if clicked or _has_job():
    from compd_core.errors import CompdError

    try:
        if clicked:
            _start_demo()
        _show_demo()
    except CompdError as exc:
        st.error(str(exc), icon=":material/error:")

st.divider()
steps = st.columns(3)
steps[0].page_link("views/models.py", label="Compare models, or load your own",
                   icon=":material/memory:")
steps[1].page_link("views/seeds.py", label="Choose or upload seed images",
                   icon=":material/grid_view:")
steps[2].page_link("views/search.py", label="Run a full search, live",
                   icon=":material/travel_explore:")
warmup.start()
