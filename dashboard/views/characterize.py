"""Characterize: how often the two models disagree on clean and naturally corrupted inputs, which
uncertainty indicator predicts it, how pairs compare, and the lowest-margin inputs as seeds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from compd_core.characterize import CORRUPTIONS, SEVERITIES, lowest_margin_indices
from compd_core.characterize.analysis import CharacterizationReport, PairComparison
from compd_core.characterize.figures import comparison_figure, disagreement_heatmap
from compd_core.data.dataset import ImageDataset
from compd_core.errors import CompdError
from compd_core.models.evaluate import PairEvaluation
from compd_core.models.pair import ModelPair
from dashboard import characterize_jobs, resources, seeding, session
from dashboard.choices import PairChoice
from dashboard.components.feedback import user_errors
from dashboard.components.roc_chart import render_indicators
from dashboard.components.shift_examples import disagreeing_examples, render_examples
from dashboard.components.trigger_view import PLOTLY_CONFIG
from dashboard.components.job_header import job_header

# A first look in a few seconds: one corruption of each family, every severity.
DEFAULT_CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "rotate", "brightness", "stripe")
JOB_KEY = "characterize_job_id"
SETTINGS_KEY = "characterize_settings"  # what was last started, shown again after the run
EXAMPLES = 8
REFRESH_SECONDS = 0.5
COMPARISON_HEADERS = {
    "pair": "Pair", "original": "Original model",
    "clean_disagreement_rate": "Disagree (clean)", "shifted_disagreement_rate": "Disagree (shifted)",
    "shift_effect": "Shift effect", "clean_accuracy_compressed": "Accuracy compressed (clean)",
    "shifted_accuracy_compressed": "Accuracy compressed (shifted)",
    "best_indicator": "Best indicator", "complete": "Complete",
}
PERCENT_COLUMNS = ("clean_disagreement_rate", "shifted_disagreement_rate", "shift_effect",
                   "clean_accuracy_compressed", "shifted_accuracy_compressed")

st.title("Characterize")
st.caption("How often do the two models disagree on ordinary test images, and on the same "
           "images blurred, rotated, noised or overdrawn (Hu et al., CAIN 2023)? And which "
           "uncertainty indicator warns of a disagreement best?")


def settings_ui(current: str) -> tuple[list[str], list[int], list[str], int, bool]:
    """(corruptions, severities, pairs to compare with, seed, whether Start was pressed).

    A form: changing a setting does not rerun the page. What was last started is kept in the
    session (the widgets are not drawn while a job runs, which would forget their values)."""
    last = st.session_state.get(SETTINGS_KEY, {})
    others = [i for i in resources.zoo_entries() if i != current]
    with st.form("characterize-settings", border=False):
        a, b = st.columns([3, 1])
        corruptions = a.multiselect("Corruptions", list(CORRUPTIONS),
                                    default=last.get("corruptions", list(DEFAULT_CORRUPTIONS)),
                                    help="All 18 at all 5 severities take about half a minute")
        severities = b.multiselect("Severities", list(SEVERITIES),
                                   default=last.get("severities", list(SEVERITIES)))
        c, d = st.columns([3, 1])
        compare = c.multiselect("Compare with these pairs", others, placeholder="none",
                                default=[p for p in last.get("compare", []) if p in others],
                                help="Characterized on the same images, corruptions and severities")
        seed = d.number_input("Random seed", 0, 2**31 - 1, last.get("seed", 0),
                              help="Same seed, same corrupted images")
        clicked = st.form_submit_button("Characterize", type="primary", icon=":material/play_arrow:")
    if clicked:
        st.session_state[SETTINGS_KEY] = {"corruptions": corruptions, "severities": severities,
                                          "compare": compare, "seed": int(seed)}
    return corruptions, severities, compare, int(seed), clicked


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel(job_id: str) -> None:
    """Progress and Stop while the job runs; reruns the page when it has ended."""
    job = characterize_jobs.get_job(job_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    pairs = ", ".join(f"`{p}`" for p in job.pairs)
    job_header(job, f"stop-{job_id}", f"**Characterizing** {pairs}",
               "**Stopping** after the current cell…")


def _percent(value: float) -> str:
    return f"{value:.2%}"


def render_summary(report: CharacterizationReport) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Images", f"{report.clean.n:,}")
    b.metric("Clean disagreement rate", _percent(report.clean_disagreement_rate),
             help=f"{report.clean.disagreements} images")
    c.metric("Shifted disagreement rate", _percent(report.shifted_disagreement_rate)
             if report.cells else "—", help="Mean over the corruption × severity cells")
    d.metric("Best indicator", report.best_indicator or "—",
             help="Highest AUROC for predicting a disagreement, averaged over models and data")
    for note in report.notes:
        st.caption(note)


def render_comparison(comparison: PairComparison) -> None:
    st.subheader("The pairs side by side")
    if not comparison.shared_original:
        st.caption("These pairs do not compress the same original model; compare with care.")
    st.plotly_chart(comparison_figure(comparison), key="characterize-comparison",
                    config=PLOTLY_CONFIG)
    table = pd.DataFrame(comparison.rows()).rename(columns=COMPARISON_HEADERS)
    percent = st.column_config.NumberColumn(format="percent", width="small")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Pair": st.column_config.TextColumn(pinned=True),
        **{COMPARISON_HEADERS[name]: percent for name in PERCENT_COLUMNS},
        "Complete": st.column_config.CheckboxColumn(width="small"),
    })


def render_examples_ui(report: CharacterizationReport, pair: ModelPair, data: ImageDataset) -> None:
    st.subheader("Corrupted inputs on which the models disagree")
    cells = sorted(report.cells, key=lambda c: -c.rate)
    if not cells:
        st.caption("No corruption was run.")
        return
    labels = [f"{c.corruption}, severity {c.severity}: {c.rate:.2%} disagree" for c in cells]
    chosen = st.selectbox("Corruption and severity", range(len(cells)),
                          format_func=labels.__getitem__)
    cell = cells[chosen or 0]
    examples = disagreeing_examples(pair, data, cell.corruption, cell.severity, report.seed,
                                    EXAMPLES)
    if not examples:
        st.caption("The models agree on every image under this corruption.")
        return
    render_examples(examples, pair.class_names)


def lowest_margin_seeds(pair: ModelPair, data: ImageDataset, evaluation: PairEvaluation,
                        count: int) -> list[int]:
    """The ``count`` searchable inputs with the smallest margin (the best predictor of a
    disagreement), as dataset positions for the Search page."""
    ordered = lowest_margin_indices(pair, data, len(data))
    ok = seeding.eligible(evaluation)
    return [int(p) for p in ordered if bool(ok[p])][:count]


def seeds_ui(choice: PairChoice, pair: ModelPair, data: ImageDataset) -> None:
    st.subheader("Search from the inputs closest to a disagreement")
    st.caption("Inputs on which the compressed model hesitates (small margin) disagree most "
               "often; start a search from them.")
    a, b = st.columns([1, 3], vertical_alignment="bottom")
    count = int(a.number_input("How many seeds", 1, 2000, 16))
    if b.button(f"Use the {count} lowest-margin inputs as seeds", icon=":material/arrow_forward:"):
        evaluation = resources.evaluation(choice, session.dataset_choice())
        picks = session.picked_positions()
        picks.clear()
        picks.update(lowest_margin_seeds(pair, data, evaluation, count))
        st.switch_page("views/search.py")


choice, data_choice = session.pair_choice(), session.dataset_choice()
st.caption(f"Pair **{choice.name}** · dataset **{data_choice.label}** (change them on the "
           "Models page)")
try:
    pair = resources.new_pair(choice)
    data = resources.dataset(data_choice, pair.input_shape, pair.class_names)
except CompdError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

job = characterize_jobs.get_job(st.session_state.get(JOB_KEY))
if job is not None and job.running:
    live_panel(job.id)
else:
    corruptions, severities, compare, seed, clicked = settings_ui(choice.name)
    if clicked:
        with user_errors():
            others = [PairChoice(zoo_id=i) for i in compare]
            job = characterize_jobs.start_characterize([choice, *others], data_choice.spec,
                                                       corruptions, severities, seed)
            st.session_state[JOB_KEY] = job.id
            st.rerun()

if job is not None and not job.running:
    st.divider()
    if job.status == "failed" or job.comparison is None:
        st.error(job.error or "the characterization failed", icon=":material/error:")
    else:
        comparison = job.comparison
        report = comparison.reports[0]
        if job.status == "stopped":
            st.warning("Stopped early: the numbers below cover the cells done before Stop.",
                       icon=":material/stop_circle:")
        st.caption(f"`{report.pair}` on {report.dataset} · {len(report.corruptions)} "
                   f"corruptions × {len(report.severities)} severities · seed {report.seed} · "
                   f"{job.seconds:.1f} s")
        render_summary(report)
        if report.cells:
            st.plotly_chart(disagreement_heatmap(report), key="characterize-heatmap",
                            config=PLOTLY_CONFIG)
        render_indicators(report)
        render_comparison(comparison)
        if report.pair == choice.name:
            with user_errors():
                render_examples_ui(report, pair, data)
        else:
            st.caption(f"Choose `{report.pair}` on the Models page again to see examples.")

st.divider()
with user_errors():
    seeds_ui(choice, pair, data)
