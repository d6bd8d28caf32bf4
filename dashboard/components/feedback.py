"""How user errors reach the screen: as a message that says what to fix, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from compd_core.errors import CompdError


@contextmanager
def user_errors(prefix: str = "") -> Iterator[None]:
    """Show any ``CompdError`` raised inside as an error box, and carry on with the page.

    Streamlit's own control flow (rerun, page switch) is not a ``CompdError`` and passes through.
    """
    try:
        yield
    except CompdError as exc:
        st.error(f"{prefix}{exc}", icon=":material/error:")


_PENDING = "pending_errors"


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """Wrap a widget callback: a ``CompdError`` it raises is kept and shown by ``show_pending``
    on the page's next draw (callbacks run before the page, where an error box would vanish)."""

    @functools.wraps(callback)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            callback(*args, **kwargs)
        except CompdError as exc:
            st.session_state.setdefault(_PENDING, []).append(str(exc))

    return wrapper


def show_pending() -> None:
    for message in st.session_state.pop(_PENDING, []):
        st.error(message, icon=":material/error:")
