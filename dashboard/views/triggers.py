"""Triggers: every deviation a run found, side by side with its seed, the two models' answers and
a replay of how it was made; hand-pick some for repair and export them."""

from __future__ import annotations

import math

import streamlit as st
import torch

from compd_core.search.results import SeedResult
from compd_core.export import run_summary
from compd_core.store import RunRecord, Store
from compd_core.strength import STRONG_MARGIN, TIE_TEXT, margin_text, summarize_strength
from dashboard import jobs, resources, session
from dashboard.choices import PairChoice
from dashboard.downloads import selection_downloads
from dashboard.components.charts import replay_figure
from dashboard.components.run_pair import run_pair_ui
from dashboard.components.feedback import guarded, show_pending, user_errors
from dashboard.components.images import THUMB_SIZE, picture
from dashboard.components.trigger_view import (
    PLOTLY_CONFIG,
    class_name,
    render_trigger,
    source_name,
)

PER_ROW = 8
ROWS = 3

st.title("Triggers")


def run_label(run: RunRecord) -> str:
    return (f"{run.id} · {run.pair} · {run.strategy} · {run.found} of {run.seeds_done} found"
            + ("" if run.status == "finished" else f" · {run.status}"))


def choose_run(store: Store) -> RunRecord | None:
    runs = {r.id: r for r in store.list_runs()}
    if not runs:
        st.info("No runs yet. Start one with **Find a deviation now** or on the Search page.",
                icon=":material/info:")
        st.page_link("views/start.py", label="Start", icon=":material/rocket_launch:")
        return None
    ids = list(runs)
    current = session.current_run()
    chosen = st.selectbox("Run", ids, index=ids.index(current) if current in runs else 0,
                          format_func=lambda i: run_label(runs[i]))
    if chosen != current:
        session.set_current_run(chosen)
    return runs[chosen]


@guarded
def _toggle(store: Store, run_id: str, position: int) -> None:
    selected = set(store.get_selection(run_id)) ^ {position}
    store.set_selection(run_id, selected)


@guarded
def _select(store: Store, run_id: str, positions: list[int]) -> None:
    store.set_selection(run_id, positions)


def gallery(store: Store, run: RunRecord, found: list[SeedResult], names: tuple[str, ...]) -> int:
    """Thumbnails with a repair checkbox and an inspect button; returns the inspected position."""
    selected = set(store.get_selection(run.id))
    inspected_key = f"inspect-{run.id}"
    if st.session_state.get(inspected_key) not in {r.seed.position for r in found}:
        st.session_state[inspected_key] = found[0].seed.position
    per_page = PER_ROW * ROWS
    pages = max(1, math.ceil(len(found) / per_page))
    head, all_button, none_button, pager = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    head.markdown(f"**{len(selected)} of {len(found)} selected for repair** (saved with the run)")
    all_button.button("Select all", on_click=_select, args=(store, run.id,
                      [r.seed.position for r in found]), width="stretch")
    none_button.button("Clear", on_click=_select, args=(store, run.id, []), width="stretch")
    page = pager.number_input(f"Page (of {pages})", 1, pages, 1)
    shown = found[(page - 1) * per_page: page * per_page]
    for start in range(0, len(shown), PER_ROW):
        for column, result in zip(st.columns(PER_ROW), shown[start:start + PER_ROW]):
            trigger, p = result.trigger, result.seed.position
            if trigger is None:
                continue
            column.image(picture(trigger.image, THUMB_SIZE),
                         caption=f"{class_name(names, trigger.label_original)} → "
                                 f"{class_name(names, trigger.label_compressed)} · "
                                 f"{source_name(result.seed.index).replace('image ', '')} · "
                                 f"{margins_text(result)}",
                         width="stretch")
            column.checkbox("for repair", value=p in selected, key=f"sel-{run.id}-{p}-{p in selected}",
                            on_change=_toggle, args=(store, run.id, p))
            inspected = st.session_state[inspected_key] == p
            if column.button("Inspect", key=f"inspect-{run.id}-{p}", width="stretch",
                             type="primary" if inspected else "secondary"):
                st.session_state[inspected_key] = p
                st.rerun()
    return int(st.session_state[inspected_key])


def margins_text(result: SeedResult) -> str:
    """'0.85/0.40' (original/compressed margin) under a thumbnail, or 'tie'."""
    trigger = result.trigger
    if trigger is None or not trigger.is_strict:
        return "tie"
    return f"{margin_text(trigger.margin_original)}/{margin_text(trigger.margin_compressed)}"


ORDERS = {
    "as found": None,
    "strongest first (smaller of the two margins)": lambda r: -min(r.trigger.margins),
    "closest first (L2 to the seed)": lambda r: r.trigger.l2,
}


def _forget_inspected(run_id: str) -> None:
    if f"inspect-{run_id}" in st.session_state:
        del st.session_state[f"inspect-{run_id}"]


def order_ui(run: RunRecord, found: list[SeedResult]) -> list[SeedResult]:
    """The gallery in the order a user picks: strongest or closest triggers first.

    A new order inspects its first trigger, so "strongest first" opens the strongest one.
    """
    order = st.radio("Order", list(ORDERS), horizontal=True, key="trigger-order",
                     on_change=_forget_inspected, args=(run.id,),
                     help="Margins are probability differences: how sure the original stays of the "
                          "seed's label, how clearly the compressed model prefers its new one.")
    key = ORDERS[order]
    return found if key is None else sorted(found, key=key)


def strength_ui(results: list[SeedResult]) -> None:
    """Median margins, strong triggers and stored ties of the run."""
    strength = summarize_strength([r.trigger for r in results if r.trigger is not None])
    if not strength.triggers:
        return
    a, b, c = st.columns(3)
    a.metric("Median margin, original", f"{strength.median_margin_original:.2f}",
             help="p(seed's label) minus the next class, original model, median over triggers")
    b.metric("Median margin, compressed", f"{strength.median_margin_compressed:.2f}",
             help="p(new label) minus p(seed's label), compressed model, median over triggers")
    c.metric(f"Both margins ≥ {STRONG_MARGIN}", f"{strength.strong} of {strength.triggers}",
             f"{strength.strong_share:.0%}", delta_color="off", delta_arrow="off")
    caveat = strength.caveat()
    if caveat:
        st.info(caveat, icon=":material/help:")
    if strength.not_strict:
        st.warning(f"{strength.not_strict} of these stored triggers are ties ({TIE_TEXT}); an older, "
                   "non-strict search stored them. Their thumbnails say **tie**.",
                   icon=":material/balance:")


def export_ui(store: Store, run: RunRecord) -> None:
    selected = store.get_selection(run.id)
    st.markdown("**Export the selection**")
    if not selected:
        st.caption("Tick **for repair** under the triggers you want, then download them here.")
        return
    for column, item in zip(st.columns(3), selection_downloads(store, run.id, selected)):
        column.download_button(item.label, item.data, file_name=item.file_name, mime=item.mime,
                               icon=item.icon, on_click="ignore", width="stretch")


@st.cache_resource(show_spinner=False, max_entries=8)
def run_results(db: str, run_id: str, version: tuple[float, int]) -> list[SeedResult]:
    """A run's results without chains, read once per version (last write, seeds done): every
    tick of a checkbox reruns the page, and a large run takes a while to decode. Read-only."""
    return resources.get_store().load_results(run_id, details=False)


@st.cache_data(show_spinner=False, max_entries=64)
def replay_probabilities(
    _choice: PairChoice, key: str, _images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both models' probabilities at every step of a chain (the store keeps only labels).

    ``key`` names the pair, run and seed: the cache's identity for the unhashed arguments.
    """
    prediction = resources.new_pair(_choice).predict(_images)
    return prediction.original, prediction.compressed


def replay(result: SeedResult, names: tuple[str, ...], choice: PairChoice | None, run_id: str) -> None:
    """A slider over the accepted mutations: the image and both models' answers at each step."""
    trigger = result.trigger
    if trigger is None:
        return
    images = [result.seed.image] + [s.image for s in result.chain]
    captions = ["the seed"] + [f"{s.operator}" + (f" ({_params(s.params)})" if s.params else "")
                               for s in result.chain]
    if not torch.equal(images[-1], trigger.image):
        images.append(trigger.image)
        captions.append("walked back toward the seed, still deviating")
    steps = len(images) - 1
    st.markdown(f"**Replay: how the seed became the trigger** ({steps} step{'s' * (steps != 1)})")
    step = st.slider("Step", 0, len(images) - 1, len(images) - 1,
                     key=f"replay-{run_id}-{result.seed.position}")
    left, right = st.columns([1, 2.5], gap="medium")
    left.image(picture(images[step]), caption=f"Step {step}: {captions[step]}")
    if choice is None:
        right.info("The models of this run are not loaded here (they were your own files in another "
                   "session); load them on the Models page to see their answers at each step.")
        return
    probs_o, probs_c = replay_probabilities(
        choice, f"{choice.name}/{run_id}/{result.seed.position}", torch.stack(images))
    o, c = int(probs_o[step].argmax()), int(probs_c[step].argmax())
    if not (torch.allclose(probs_o[-1], trigger.probs_original, atol=1e-3)
            and torch.allclose(probs_c[-1], trigger.probs_compressed, atol=1e-3)):
        st.warning("The models of this pair answer the trigger differently now than when the run "
                   "found it: they were changed (rebuilt or replaced) since. The replay shows "
                   "today's models; the trigger view above shows what the search saw.",
                   icon=":material/warning:")
    with right:
        a, b = st.columns(2)
        a.metric("Original model says", class_name(names, o), f"{float(probs_o[step, o]):.0%} sure",
                 delta_color="off", delta_arrow="off")
        b.metric("Compressed model says", class_name(names, c), f"{float(probs_c[step, c]):.0%} sure",
                 delta_color="off", delta_arrow="off")
        st.plotly_chart(replay_figure(probs_o, probs_c, result.seed.label,
                                      class_name(names, result.seed.label), step),
                        key=f"replay-chart-{run_id}-{result.seed.position}", config=PLOTLY_CONFIG)


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


store = resources.get_store()
show_pending()
with user_errors():
    run = choose_run(store)
    if run is None:
        st.stop()
    live = jobs.job_for_run(run.id)
    if live is not None:
        st.info("This run is still searching; new triggers appear when you refresh.",
                icon=":material/hourglass_top:")
        st.button("Refresh", icon=":material/refresh:")
    results = run_results(str(store.path), run.id, (run.updated, run.seeds_done))
    found = [r for r in results if r.trigger is not None]
    summary = run_summary(results)
    queries, linf = summary["median_queries_found"], summary["median_linf"]
    a, b, c, d = st.columns(4)
    a.metric("Seeds searched", f"{len(results)} / {run.seed_count}")
    b.metric("Triggers found", len(found))
    c.metric("Median queries per trigger", "—" if queries is None else f"{queries:,.0f}")
    d.metric("Median largest pixel change", "—" if linf is None else f"{linf * 255:.0f} / 255")
    if not found or found[0].trigger is None:
        st.info("This run has found no trigger (yet).", icon=":material/search_off:")
        st.stop()
    strength_ui(found)
    pair_choice = run_pair_ui(run)
    names = resources.class_names_for(pair_choice, found[0].trigger.probs_original.numel())
    position = gallery(store, run, order_ui(run, found), names)
    export_ui(store, run)
    st.divider()
    detail = store.load_results(run.id, [position], details=True)[0]
    render_trigger(detail, names, key=f"{run.id}-{position}")
    replay(detail, names, pair_choice, run.id)
