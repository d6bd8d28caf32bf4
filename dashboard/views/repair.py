"""Repair: fine-tune the compressed model on a run's hand-picked triggers, watch it learn, judge it
on triggers it never saw, and search the repaired pair."""

from __future__ import annotations

import math

import streamlit as st

from compd_core.errors import CompdError
from compd_core.repair import (RepairReport, RepairSettings, default_change_scales, default_epochs,
                               default_head_grid, default_lr, fine_tunable)
from compd_core.repair.report import kept_words, training_words, unrepaired_words
from compd_core.repair.settings import CHECKPOINT_RULES, HEAD_GRID_KINDS, RANK_RULES, number_list
from compd_core.store import RunRecord, Store
from dashboard import repair_jobs, resources, session
from dashboard.choices import PairChoice
from dashboard.components.feedback import show_pending, user_errors
from dashboard.components.images import image_strip
from dashboard.components.repair_charts import (
    before_after_figure,
    before_after_table,
    training_figure,
)
from dashboard.components.trigger_view import PLOTLY_CONFIG
from dashboard.components.job_header import job_header

JOB_KEY = "repair_job_id"
LAST_SETTINGS_KEY = "repair_last_settings"
REFRESH_SECONDS = 0.5
SHOWN_TRIGGERS = 16
DEMO_RESEARCH_QUERIES = 1_000  # a re-search at the run's own budget can take minutes
DEMO_MINED_SEEDS = 256  # a quarter of the default: the demo repair takes seconds, not minutes

st.title("Repair")
st.caption("Fine-tune the compressed model on the triggers you picked, so that it answers like "
           "the original again. Half of them are held out: only triggers the repair never saw "
           "show whether it generalises.")


def choose_run(store: Store) -> RunRecord | None:
    runs = {r.id: r for r in store.list_runs()}
    if not runs:
        st.info("No runs yet: search for triggers first, then pick some on the Triggers page.",
                icon=":material/info:")
        return None
    ids = list(runs)
    current = session.current_run()
    chosen = st.selectbox("Run", ids, index=ids.index(current) if current in runs else 0,
                          format_func=lambda i: f"{i} · {runs[i].pair} · {runs[i].strategy} · "
                                                f"{runs[i].found} triggers")
    if chosen != current:
        session.set_current_run(chosen)
    return runs[chosen]


def selection_ui(store: Store, run: RunRecord) -> bool:
    """The triggers the repair will use; False when there are none."""
    picked = store.get_selection(run.id)
    found = [r for r in store.load_results(run.id, picked or None, details=False) if r.found]
    if not found:
        st.info("This run has found no trigger: there is nothing to repair.",
                icon=":material/search_off:")
        return False
    if picked:
        st.markdown(f"**{len(found)} hand-picked trigger{'s' * (len(found) != 1)}** (picked on "
                    "the Triggers page)")
    else:
        st.markdown(f"**No hand-picked selection: all {len(found)} triggers of the run** will be "
                    "used (pick some on the Triggers page)")
    shown = found[:SHOWN_TRIGGERS]
    image_strip([r.trigger.image for r in shown if r.trigger is not None],
                [f"{r.trigger.label_original} → {r.trigger.label_compressed} · #{r.seed.index}"
                 for r in shown if r.trigger is not None], per_row=SHOWN_TRIGGERS // 2, size=56)
    if len(found) > len(shown):
        st.caption(f"…and {len(found) - len(shown)} more.")
    return True


CHECKPOINT_LABELS = {"no-rise": "No new disagreements (default)",
                     "fewest": "Fewest validation failures", "last": "Last epoch"}
RANK_LABELS = {"failures": "Fewest validation failures",
               "triggers": "Fewest validation triggers left (default)"}


def _shown_defaults(run: RunRecord) -> RepairSettings:
    """What the form starts from: the settings of this session's last repair (the form is not
    drawn while a repair runs, so Streamlit forgets what was typed), else small demo ones."""
    last = st.session_state.get(LAST_SETTINGS_KEY)
    if isinstance(last, RepairSettings):
        return last
    return RepairSettings(mined_seeds=DEMO_MINED_SEEDS,
                          research_max_queries=min(run.settings.max_queries, DEMO_RESEARCH_QUERIES))


def _scales_text(scales: tuple[float, ...]) -> str:
    return ", ".join(f"{a:g}" for a in scales)


def settings_ui(run: RunRecord, compression: str) -> tuple[RepairSettings, bool]:
    """The settings (small enough for a demo) and whether Start was pressed; raises ConfigError.

    ``compression`` is the compressed model's kind: it has its own default learning rate,
    number of epochs and scaled trigger changes."""
    shown = _shown_defaults(run)
    own_lr, own_epochs = default_lr(compression), default_epochs(compression)
    a, b, c, d = st.columns(4)
    epochs = a.number_input("Epochs", 1, 200, shown.epochs or own_epochs,
                            help=f"Most passes over the trigger set; the epoch with the fewest "
                                 f"validation disagreements is kept. {own_epochs} is the default "
                                 f"for a {compression} model")
    variants = b.number_input("Variants per trigger", 0, 256, shown.variants_per_trigger,
                              help="Label-preserving mutants made around each training trigger")
    lr = c.number_input("Learning rate", 1e-6, 1.0, shown.lr or own_lr, step=own_lr / 2, format="%.1e",
                        help=f"Adam's step; {own_lr:.1e} is the default for a {compression} model "
                             "(finer rounding steps get smaller ones)")
    mix = d.number_input("Teacher share of each batch", 0.0, 0.99, shown.mix_ratio, step=0.05,
                         help="Clean and corrupted training digits labelled by the original: "
                              "agreement everywhere, not only on the triggers")
    e, scales_col, f, g, h = st.columns(5, vertical_alignment="bottom")
    mined = e.number_input("Training digits to mine", 0, 8000, shown.mined_seeds,
                           help="Training digits searched for more deviations to learn from")
    own_scales = default_change_scales(compression)
    scales = scales_col.text_input(
        "Scaled trigger changes",
        _scales_text(own_scales if shown.change_scales is None else shown.change_scales),
        help="Each training trigger's change from its seed is also learned at these multiples "
             f"(comma-separated, empty for none); '{_scales_text(own_scales) or 'none'}' is the "
             f"default for a {compression} model")
    heldout = f.number_input("Held-out share", 0.05, 0.95, shown.heldout_fraction, step=0.05,
                             help="Triggers kept out of training to judge the repair")
    seed = g.number_input("Random seed", 0, 2**31 - 1, shown.seed)
    research = h.checkbox("Re-search both pairs", value=shown.research,
                          help="Run the run's search and the deviation profile again on the "
                               "seeds not trained on")
    own_grid = default_head_grid(compression)
    head_grid = own_grid
    if compression in HEAD_GRID_KINDS:
        head_grid = st.checkbox(
            "Narrow the int8 head's output grid",
            value=own_grid if shown.head_grid is None else shown.head_grid,
            help="Its output levels then span only the logits where the top-1 is decided, so "
                 "close classes no longer round to a tie (fewer disagreements on clean and "
                 "corrupted digits); the model stays int8. Dropped before training when the "
                 "narrowed grid alone adds validation disagreements")
    checkpoint = st.radio(
        "Epoch kept", CHECKPOINT_RULES, index=CHECKPOINT_RULES.index(shown.checkpoint),
        horizontal=True, format_func=CHECKPOINT_LABELS.get,
        help="no-rise: never an epoch that adds disagreements on the validation digits (clean or "
             "corrupted), so at worst the model stays as it was (or as the narrowed int8 head grid "
             "alone made it); fewest: the fewest validation failures, trading new disagreements "
             "for repaired triggers; last: the last epoch")
    rank_by = st.radio(
        "Among the epochs it may keep, prefer", RANK_RULES, index=RANK_RULES.index(shown.rank_by),
        horizontal=True, format_func=RANK_LABELS.get, disabled=checkpoint == "last",
        help="triggers: the most validation triggers repaired first, then the fewest failures "
             "(measured on every LeNet pair: 8-18 points more held-out triggers repaired on the "
             "rounded ones than failures, with a few more corrupted disagreements); failures: "
             "triggers, clean and corrupted disagreements counted together")
    with st.expander("When is a repair worse? (verdict thresholds)"):
        i, j, k, budget_col = st.columns(4)
        drop = i.number_input("Largest accuracy drop (points)", 0.0, 100.0,
                              100 * shown.max_accuracy_drop, step=0.1)
        rise = j.number_input("Disagreements it may add", 0, 100_000, shown.max_disagreement_rise,
                              help="On clean and on corrupted test digits")
        min_heldout = k.number_input("Held-out share to repair", 0.0, 1.0,
                                     shown.min_heldout_repaired, step=0.05)
        budget = budget_col.number_input("Re-search queries per seed", 1, 1_000_000,
                                         shown.research_max_queries or DEMO_RESEARCH_QUERIES,
                                         disabled=not research)
    clicked = st.button("Start repair", type="primary", icon=":material/play_arrow:")
    change_scales = number_list(scales, "Scaled trigger changes", "above 0 and at most 4, e.g. 0.5,0.75")
    settings = RepairSettings(lr=None if float(lr) == own_lr else float(lr),  # None: the model's own
                              epochs=None if int(epochs) == own_epochs else int(epochs),
                              change_scales=None if change_scales == own_scales else change_scales,
                              head_grid=None if head_grid == own_grid else head_grid,
                              mix_ratio=float(mix),
                              variants_per_trigger=int(variants), mined_seeds=int(mined),
                              heldout_fraction=float(heldout), seed=int(seed), research=research,
                              research_max_queries=int(budget), max_accuracy_drop=float(drop) / 100,
                              max_disagreement_rise=int(rise), min_heldout_repaired=float(min_heldout),
                              checkpoint=checkpoint, rank_by=rank_by)
    return settings, clicked


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel(job_id: str) -> None:
    """Stage, loss and repair curves while the job runs; reruns the page when it has ended."""
    job = repair_jobs.get_job(job_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    progress = job.progress()
    job_header(job, f"stop-repair-{job_id}",
               f"**Repairing** `{job.pair}` (run `{job.run_id}`)",
               "**Stopping:** nothing of this repair will be saved…")
    if progress.epochs:
        last = progress.epochs[-1]
        a, b, c = st.columns(3)
        a.metric("Loss", "—" if math.isnan(last.loss) else f"{last.loss:.4f}")
        b.metric("Held-out triggers repaired", f"{last.heldout_repaired_rate:.0%}")
        c.metric("Trained-on triggers repaired", f"{last.train_repaired_rate:.0%}")
        st.plotly_chart(training_figure(progress.epochs), key=f"repair-live-{job_id}",
                        config=PLOTLY_CONFIG)
    for phase, item in progress.research.items():
        st.caption(f"Re-search {phase} the repair: {item.seeds_done} of {item.seeds_total} seeds, "
                   f"{item.found} deviated")


def _search_repaired(run_id: str, repaired: str) -> None:
    """Switch to the repaired pair: a new zoo pair, or (own files) the original beside the
    repaired model file."""
    resources.zoo_entries.clear()  # a new zoo pair: forget the cached list so every page sees it
    source = resources.get_store().get_run(run_id).pair_source()
    choice = PairChoice.zoo(repaired) if source.is_zoo else PairChoice.files(
        source.original or "", repaired, source.input_shape, source.class_names,
        allow_code=source.allow_code)
    session.set_pair_and_dataset(choice, session.dataset_choice())
    st.switch_page("views/search.py")


def render_verdict(report: RepairReport) -> None:
    """The verdict first, in plain words: better by every threshold, unchanged, or how it is worse."""
    if report.verdict == "better":
        st.success("**Better by every threshold:** held-out triggers repaired, test accuracy and "
                   "disagreements (clean and corrupted) within the bounds you set.",
                   icon=":material/verified:")
    elif report.verdict == "unchanged":
        st.warning("**Unchanged.** " + " ".join(report.verdict_reasons), icon=":material/pause_circle:")
    else:
        st.error("**This repair made things worse.** " + " ".join(report.verdict_reasons),
                 icon=":material/warning:")


def register_ui(job: repair_jobs.RepairJob, report: RepairReport) -> None:
    """Nothing is registered without the user's say: one button, and a confirmation when worse."""
    if report.registered:
        st.markdown(f"The repaired pair is saved as **`{report.repaired_pair}`**: every page can "
                    "select it on the Models page.")
        if st.button("Search the repaired pair", type="primary", icon=":material/travel_explore:"):
            _search_repaired(job.run_id, report.repaired_pair)  # type: ignore[arg-type]
        return
    if report.verdict == "unchanged":
        st.markdown("Nothing to register: the model was kept exactly as it was.")
        return
    st.markdown("The repaired model is **not registered** yet.")
    confirmed = True
    if report.verdict != "better":
        confirmed = st.checkbox("I have read why it is worse and want to keep it as a pair anyway",
                                key=f"confirm-register-{job.id}")
    if st.button("Register the repaired pair", icon=":material/save:", disabled=not confirmed,
                 type="primary" if report.verdict == "better" else "secondary"):
        job.register()
        resources.zoo_entries.clear()
        st.rerun()


def render_outcome(job: repair_jobs.RepairJob) -> None:
    if job.status == "failed" or job.report is None:
        st.error(job.error or "the repair failed", icon=":material/error:")
        return
    report: RepairReport = job.report
    if report.stopped:
        st.warning(f"The repair of `{report.pair_before}` was stopped after {report.epochs_run} "
                   "epoch(s); no repaired pair was saved.", icon=":material/stop_circle:")
        return
    st.subheader("The last repair finished")
    render_verdict(report)
    st.caption(f"Run `{report.run_id}` · selection `{report.selection}` · {report.triggers} "
               f"triggers: {len(report.train_positions)} trained on "
               f"({report.validation_triggers} of them kept to pick the epoch), "
               f"{len(report.heldout_positions)} held out · {report.mined_triggers} deviations "
               f"mined on training digits · {kept_words(report)}{training_words(report)} · "
               f"{report.seconds or 0:.1f} s")
    a, b, c = st.columns(3)
    a.metric("Held-out triggers repaired", "—" if report.heldout_repaired_rate is None
             else f"{report.heldout_repaired_rate:.1%}")
    b.metric("Test accuracy after", "—" if report.accuracy_after is None
             else f"{report.accuracy_after:.2%}")
    c.metric("Test disagreements after", "—" if report.disagreements_after is None
             else f"{report.disagreements_after:,}")
    if unrepaired := unrepaired_words(report):
        st.caption(unrepaired)
    register_ui(job, report)
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Before and after**")
        st.dataframe(before_after_table(report), hide_index=True, width="stretch")
    with right:
        st.plotly_chart(before_after_figure(report), key=f"repair-bars-{job.id}",
                        config=PLOTLY_CONFIG)
    epochs = job.progress().epochs
    if epochs:
        st.plotly_chart(training_figure(epochs), key=f"repair-curves-{job.id}",
                        config=PLOTLY_CONFIG)


store = resources.get_store()
show_pending()
job = repair_jobs.get_job(st.session_state.get(JOB_KEY))
if job is not None and job.running:
    live_panel(job.id)
    st.stop()

with user_errors():
    run = choose_run(store)
    if run is not None:
        try:
            recipe = fine_tunable(run)[0]
        except CompdError as exc:
            st.error(str(exc), icon=":material/block:")
        else:
            if selection_ui(store, run):
                settings, clicked = settings_ui(run, recipe.kind)
                if clicked:
                    st.session_state[LAST_SETTINGS_KEY] = settings
                    job = repair_jobs.start_repair(store, run.id, settings)
                    st.session_state[JOB_KEY] = job.id
                    st.rerun()

if job is not None:
    st.divider()
    render_outcome(job)
