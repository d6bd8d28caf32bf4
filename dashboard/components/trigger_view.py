"""The side-by-side view of one deviation: seed, trigger, what changed, and both models' answers."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from compd_core.search.results import SeedResult
from compd_core.strength import STRONG_MARGIN, TIE_TEXT, change_size
from dashboard.components.charts import probability_figure
from dashboard.components.images import difference_picture, picture

PLOTLY_CONFIG = {"displayModeBar": False}


def class_name(names: Sequence[str], label: int) -> str:
    return names[label] if 0 <= label < len(names) else str(label)


def source_name(index: int) -> str:
    """How a seed's origin reads: a dataset image, or the n-th upload (negative indices)."""
    return f"upload {-index}" if index < 0 else f"image #{index}"


def render_trigger(result: SeedResult, names: Sequence[str], key: str) -> None:
    """Draw a found deviation; ``key`` keeps its chart distinct from others on the page."""
    trigger = result.trigger
    if trigger is None:
        st.info("This seed's search ended without a deviation "
                f"({result.exit_reason.value}, {result.queries} queries).")
        return
    lo, lc = trigger.label_original, trigger.label_compressed
    p_o, p_c = float(trigger.probs_original[lo]), float(trigger.probs_compressed[lc])
    m_o, m_c = trigger.margins
    size = change_size(result.seed.image, trigger.image)
    if trigger.is_strict:
        st.markdown(
            f"**The original model still reads {class_name(names, lo)}; the compressed model now "
            f"reads {class_name(names, lc)}.**"
        )
    else:
        st.warning(f"**{TIE_TEXT.capitalize()}.** A tie between two classes decides a label here "
                   f"(original margin {m_o:.2f}, compressed margin {m_c:.2f}): argmax picks the "
                   "lower class index, the model itself does not answer. An older search stored it.",
                   icon=":material/balance:")
    seed_col, trigger_col, diff_col, facts_col = st.columns([1, 1, 1, 1.5], gap="medium")
    seed_col.image(picture(result.seed.image),
                   caption=f"Seed ({source_name(result.seed.index)}): both models say "
                           f"{class_name(names, result.seed.label)}")
    trigger_col.image(picture(trigger.image),
                      caption=f"Trigger: original {class_name(names, lo)}, "
                              f"compressed {class_name(names, lc)}")
    diff_col.image(difference_picture(result.seed.image, trigger.image),
                   caption=f"What changed, amplified (red brighter, blue darker): {size.describe()}")
    with facts_col:
        a, b = st.columns(2)
        a.metric("Original says", class_name(names, lo), f"{p_o:.0%} sure", delta_color="off",
                 delta_arrow="off")
        b.metric("Compressed says", class_name(names, lc), f"{p_c:.0%} sure", delta_color="off",
                 delta_arrow="off")
        a.metric("Max change", f"{size.max_levels}/255",
                 help="The largest change to any one pixel (L-inf distance), in grey levels of 255")
        b.metric("Pixels changed", f"{size.pixels_changed}", f"of {size.pixels}", delta_color="off",
                 delta_arrow="off", help="Pixels that differ from the seed by at least one grey level")
        st.caption(f"L2 distance {size.l2:.2f} (pixel values in [0, 1]). Found after "
                   f"{result.queries:,} queries and {len(result.chain)} accepted "
                   f"change{'s' if len(result.chain) != 1 else ''} in {result.seconds:.1f} s.")
    chart_col, margin_col = st.columns([3, 1], gap="medium")
    chart_col.plotly_chart(probability_figure(trigger.probs_original, trigger.probs_compressed, names),
                           key=f"probs-{key}", config=PLOTLY_CONFIG)
    with margin_col:
        st.metric("Original's margin", f"{m_o:.2f}",
                  help=f"p({class_name(names, lo)}) minus the next most likely class, original model")
        st.metric("Compressed model's margin", f"{m_c:.2f}",
                  help=f"p({class_name(names, lc)}) minus p({class_name(names, lo)}), compressed model")
        st.caption(strength_words(m_o, m_c))


def strength_words(m_o: float, m_c: float) -> str:
    """How a sceptic reads the two margins."""
    if m_o <= 0 or m_c <= 0:
        return TIE_TEXT
    if m_o >= STRONG_MARGIN and m_c >= STRONG_MARGIN:
        return f"Strong: both margins are at least {STRONG_MARGIN}."
    return f"Weak: a margin below {STRONG_MARGIN} means that model is close to undecided."
