"""The dashboard's entry point: the page registry and nothing else.

Adding a page is one line in ``PAGES``; each page is a script in ``views/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ itself on sys.path, not the folder holding the
# `dashboard` package; add that folder so `import dashboard…` works in a checkout too.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import uploads  # noqa: E402

PAGES = [
    st.Page("views/start.py", title="Start", icon=":material/rocket_launch:", default=True),
    st.Page("views/models.py", title="Models", icon=":material/memory:"),
    st.Page("views/seeds.py", title="Seeds", icon=":material/grid_view:"),
    st.Page("views/characterize.py", title="Characterize", icon=":material/insights:"),
    st.Page("views/search.py", title="Search", icon=":material/travel_explore:"),
    st.Page("views/triggers.py", title="Triggers", icon=":material/compare:"),
    st.Page("views/repair.py", title="Repair", icon=":material/healing:"),
    st.Page("views/runs.py", title="Runs", icon=":material/history:"),
    st.Page("views/report.py", title="Report", icon=":material/description:"),
]

st.set_page_config(page_title="compd: compression deviations", page_icon=":material/compare:",
                   layout="wide")
# Images are small (28x28 digits): when the browser resizes one, keep its pixels sharp.
st.html("<style>[data-testid='stImage'] img {image-rendering: pixelated;}</style>")
uploads.clean_once()  # once per server process: old and surplus uploads go
st.navigation(PAGES).run()
