"""Load the default pair and the shipped digits in the background, once per process.

The Start page draws first and only then calls ``start``: the page is usable at once, and by
the time someone presses "Find a deviation now" the models are already in memory.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_started = False


def start() -> None:
    global _started
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_warm, name="compd-warmup", daemon=True).start()


def _warm() -> None:
    from compd_core.errors import CompdError

    try:
        from compd_core.data import load_mnist
        from compd_core.zoo import load_pair
        from dashboard.choices import DEFAULT_PAIR

        load_pair(DEFAULT_PAIR)  # the zoo caches its classifiers per process
        load_mnist("test")
    except CompdError as exc:  # the page that needs these will show the message
        logger.warning("warm-up skipped: %s", exc)
