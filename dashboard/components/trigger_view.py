"""The side-by-side view of one deviation: seed, trigger, what changed, and both models' answers."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from compd_core.search.results import SeedResult
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
    st.markdown(
        f"**The original model still reads {class_name(names, lo)}; the compressed model now "
        f"reads {class_name(names, lc)}.**"
    )
    seed_col, trigger_col, diff_col, facts_col = st.columns([1, 1, 1, 1.5], gap="medium")
    seed_col.image(picture(result.seed.image),
                   caption=f"Seed ({source_name(result.seed.index)}): both models say "
                           f"{class_name(names, result.seed.label)}")
    trigger_col.image(picture(trigger.image),
                      caption=f"Trigger: original {class_name(names, lo)}, "
                              f"compressed {class_name(names, lc)}")
    diff_col.image(difference_picture(result.seed.image, trigger.image),
                   caption="What changed, amplified: red brighter, blue darker")
    with facts_col:
        a, b = st.columns(2)
        a.metric("Original says", class_name(names, lo), f"{p_o:.0%} sure", delta_color="off",
                 delta_arrow="off")
        b.metric("Compressed says", class_name(names, lc), f"{p_c:.0%} sure", delta_color="off",
                 delta_arrow="off")
        a.metric("Max pixel change", f"{trigger.linf * 255:.0f}/255",
                 help="The largest change to any one pixel (L-inf distance), in grey levels")
        b.metric("L2 distance", f"{trigger.l2:.2f}",
                 help="Euclidean distance to the seed, pixel values in [0, 1]")
        st.caption(f"Found after {result.queries:,} queries and {len(result.chain)} accepted "
                   f"change{'s' if len(result.chain) != 1 else ''} in {result.seconds:.1f} s.")
    st.plotly_chart(probability_figure(trigger.probs_original, trigger.probs_compressed, names),
                    key=f"probs-{key}", config=PLOTLY_CONFIG)
