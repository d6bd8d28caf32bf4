"""Search: choose strategy, budget and operators, start a search in the background, watch it live,
stop it at any time. Every seed's result is saved the moment it ends."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from compd_core.campaign import CampaignSpec
from compd_core.errors import CompdError, ConfigError
from compd_core.mutations import OPERATOR_SETS
from compd_core.search.criterion import DEFAULT_MAX_LINF, Criterion, CriterionKind
from compd_core.search.settings import SearchSettings
from compd_core.search.strategies import STRATEGIES, get_strategy
from dashboard import jobs, resources, seeding, session
from dashboard.components.live import live_panel, render_progress

ENGINE_CHOOSES = "Let the search choose them"
OPERATOR_HELP = {
    "dflare": "noise, pixel changes and blurs (the published DFLARE operators)",
    "natural": "brightness, contrast, small rotations and shifts, elastic warps, JPEG",
}

st.title("Search")


@dataclass(frozen=True)
class SearchForm:
    """What the form asks for, as plain values."""

    strategy: str
    operators: str
    use_picks: bool
    seeds: int
    order: str
    max_queries: int
    time_budget: float | None
    max_linf: float | None
    criterion: CriterionKind
    rng_seed: int
    min_margin_original: float = 0.0  # 0 = strict only
    min_margin_compressed: float = 0.0
    max_l2: float | None = None


LAST_FORM = "last_search_form"


def _index(options: list[str], value: str) -> int:
    return options.index(value) if value in options else 0


def search_form_ui(picked: int, last: SearchForm | None) -> tuple[SearchForm, bool]:
    """The settings (starting from the last search's) and whether Start was pressed.

    One form: changing a setting does not rerun the page, only Start does. Seeds picked by hand
    are the default whenever there are any (that is why the user picked them)."""
    last = last or SearchForm("compd", "dflare", False, 20, "lowest margin first", 2_000, None,
                              DEFAULT_MAX_LINF, "valid", 0)
    with st.form("search_settings", border=False):
        return _settings(picked, last)


def _settings(picked: int, last: SearchForm) -> tuple[SearchForm, bool]:
    """The form's widgets, read back as a ``SearchForm``."""
    a, b = st.columns(2)
    strategies, operator_sets = list(STRATEGIES), list(OPERATOR_SETS)
    described = {name: f"{name}: {get_strategy(name).description}" for name in strategies}
    strategy = a.selectbox("Strategy", strategies, index=_index(strategies, last.strategy),
                           format_func=described.__getitem__)
    operators = b.selectbox("Operator set", operator_sets,
                            index=_index(operator_sets, last.operators),
                            format_func=lambda n: f"{n}: {OPERATOR_HELP.get(n, '')}")
    options = [ENGINE_CHOOSES] + ([f"My {picked} picked or uploaded seeds"] if picked else [])
    source = st.radio("Seeds", options, index=len(options) - 1, horizontal=True,
                      help="Pick seeds by hand or upload images on the Seeds page")
    use_picks = source != ENGINE_CHOOSES
    c, d, e, f = st.columns(4)
    chosen_only = "Used when the search chooses the seeds"
    seeds = c.number_input("Number of seeds", 1, 2000, last.seeds, help=chosen_only)
    orders = ["lowest margin first", "random"]
    order = d.selectbox("Which seeds", orders, index=_index(orders, last.order),
                        help=f"{chosen_only}. Lowest margin: the images the compressed model is "
                             "least sure about")
    max_queries = e.number_input("Query budget per seed", 10, 1_000_000, last.max_queries,
                                 step=500, help="One query = one image through both models")
    rng_seed = f.number_input("Random seed", 0, 2**31 - 1, last.rng_seed,
                              help="Same seed, same triggers")
    with st.expander("Limits and criterion: margins and distance budget"):
        g, h, i = st.columns(3)
        time_budget = g.number_input("Time budget per seed (s, 0 = none)", 0.0, 3600.0,
                                     last.time_budget or 0.0)
        max_linf = h.slider("Largest pixel change allowed (grey levels, 0 = no limit)", 0, 255,
                            round((last.max_linf or 0.0) * 255))
        criteria: list[CriterionKind] = ["valid", "any"]
        criterion = i.radio("Counts as a deviation", criteria,
                            index=_index(list(criteria), last.criterion),
                            format_func={"valid": "the original keeps its answer",
                                         "any": "any disagreement"}.get)
        j, k, m = st.columns(3)
        margin_original = j.number_input(
            "Original's margin at least", 0.0, 0.95, last.min_margin_original, step=0.05,
            help="p(seed's label) minus the next class, original model. 0: strict only (a tie "
                 "never counts); 0.5: the original is clearly sure the input still is the seed")
        margin_compressed = k.number_input(
            "Compressed model's margin at least", 0.0, 0.95, last.min_margin_compressed, step=0.05,
            help="p(its new label) minus p(seed's label), compressed model. 0.2: it clearly "
                 "answers something else")
        max_l2 = m.number_input("Largest L2 distance (0 = no limit)", 0.0, 28.0, last.max_l2 or 0.0,
                                step=0.5, help="Euclidean distance to the seed, pixel values in [0, 1]")
    clicked = st.form_submit_button("Start search", type="primary", icon=":material/play_arrow:")
    form = SearchForm(strategy or last.strategy, operators or last.operators, use_picks,
                      int(seeds), order or last.order, int(max_queries),
                      time_budget or None, max_linf / 255 if max_linf else None,
                      criterion or last.criterion, int(rng_seed), float(margin_original),
                      float(margin_compressed), max_l2 or None)
    return form, clicked


def start(form: SearchForm) -> list[str]:
    """Start the search; returns the seeds that were left out, and why."""
    choice, data_choice = session.pair_choice(), session.dataset_choice()
    pair = resources.new_pair(choice)
    data = resources.dataset(data_choice, pair.input_shape, pair.class_names)
    settings = SearchSettings(max_queries=form.max_queries, time_budget=form.time_budget,
                              criterion=Criterion(kind=form.criterion, max_linf=form.max_linf,
                                                  max_l2=form.max_l2,
                                                  min_margin_original=form.min_margin_original,
                                                  min_margin_compressed=form.min_margin_compressed),
                              operators=form.operators)
    dataset_name, seeds, dropped = data_choice.spec, form.seeds, []
    if form.use_picks:
        picked = seeding.compose_seeds(data, resources.evaluation(choice, data_choice),
                                       sorted(session.picked_positions()), session.uploads(), pair)
        dropped = picked.dropped
        if picked.dataset is None:
            raise ConfigError("none of your seeds can be searched (the models already disagree "
                              "on them, or the original is wrong); pick others on the Seeds page")
        data, seeds = picked.dataset, len(picked.dataset)
        dataset_name = f"{data_choice.label}: {seeds} hand-picked"
    spec = CampaignSpec(pair=choice.name, strategy=form.strategy, seeds=seeds, settings=settings,
                        rng_seed=form.rng_seed, dataset=dataset_name,
                        seed_order="margin" if form.order == "lowest margin first" else "random",
                        pair_spec=None if choice.is_zoo else choice.with_hashes())
    job = jobs.start_search(resources.get_store(), spec, pair, data, choices=session.snapshot())
    session.set_current_job(job)
    return dropped


def render_outcome(job: jobs.Job) -> None:
    """The final state of this session's last search."""
    if job.status == "failed":
        st.error(job.error or "the search failed", icon=":material/error:")
        return
    verb = "finished" if job.status == "finished" else "was stopped"
    st.subheader(f"The last search {verb}")
    asked = ("" if job.stop_seconds is None or job.halt_seconds is None else
             f" · stopped querying {job.halt_seconds:.2f} s after Stop, everything saved "
             f"{job.stop_seconds:.2f} s after")
    st.caption(f"Run `{job.run_id}` · `{job.spec.strategy}` on `{job.spec.pair}` · "
               f"{job.spec.settings.max_queries:,} queries per seed{asked}")
    progress = job.progress()
    stopped = progress.stopped_seeds
    if stopped:
        st.caption(f"{stopped} seed{'s were' if stopped != 1 else ' was'} still being searched "
                   "when it stopped; the others ended on their own (found, or budget spent).")
    render_progress(job, progress)
    st.page_link("views/triggers.py", label="Open its triggers", icon=":material/compare:")


job = session.current_job()  # first: a reload takes the job's pair and seeds back from it
choice = session.pair_choice()
st.caption(f"Pair **{choice.name}** · dataset **{session.dataset_choice().label}** "
           "(change them on the Models page)")
for reason in st.session_state.pop("search_left_out", []):
    st.warning(f"Left out {reason}.", icon=":material/filter_alt_off:")
if job is not None and job.running:
    live_panel(job.id)
else:
    picked = len(session.picked_positions()) + len(session.uploads())
    form, clicked = search_form_ui(picked, st.session_state.get(LAST_FORM))
    if clicked:
        st.session_state[LAST_FORM] = form
        try:
            st.session_state["search_left_out"] = start(form)
        except CompdError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()
    if job is not None:
        st.divider()
        render_outcome(job)
