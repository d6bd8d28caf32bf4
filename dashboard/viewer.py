"""Who is looking at a page: the identity that owns the jobs it starts.

A job may be watched by anyone with its ``?job=`` link, but only stopped by whoever started it.
The identity is the browser's XSRF token (kept in a cookie, so it survives a reload and differs
between browsers); where there is none (tests, XSRF protection off) it is the session's id.
"""

from __future__ import annotations

import binascii
import hashlib

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

XSRF_COOKIE = "_streamlit_xsrf"  # Streamlit's cookie: "2|mask|masked token|timestamp"


def _xsrf_token(cookie: str) -> bytes | None:
    """The token inside the cookie; its mask changes on every response, the token does not."""
    parts = cookie.split("|")
    if len(parts) != 4 or parts[0] != "2":
        return None
    try:
        mask, masked = binascii.a2b_hex(parts[1]), binascii.a2b_hex(parts[2])
    except binascii.Error:
        return None
    if not mask:
        return None
    return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))


def viewer_id() -> str | None:
    """This browser's identity, or None outside a Streamlit script run (then nobody owns)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return None
    token = _xsrf_token(st.context.cookies.get(XSRF_COOKIE) or "")
    if token:
        return "browser-" + hashlib.sha256(token).hexdigest()[:16]
    return "session-" + ctx.session_id
