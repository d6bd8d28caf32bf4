"""The ``compd`` command run in this test process, through the script's own entry point.

A new interpreter spends seconds importing torch before a command starts; only the tests that
need a process of their own (a kill, a signal, the ``python -m compd_core`` start itself) pay
for one.
"""

from __future__ import annotations

import contextlib
import io
import subprocess

from compd_core.cli import main


def compd(*args: str) -> subprocess.CompletedProcess:
    """``compd ARGS`` as a finished process would report it: exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            if isinstance(exc.code, str):  # what the interpreter prints and ends with 1
                err.write(exc.code + "\n")
            code = 1 if isinstance(exc.code, str) else int(exc.code or 0)
    return subprocess.CompletedProcess(["compd", *args], code, out.getvalue(), err.getvalue())
