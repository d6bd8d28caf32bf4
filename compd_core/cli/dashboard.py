"""``compd dashboard``: serve the browser dashboard (a Streamlit app) and print its address.

The command replaces itself with Streamlit, configured on the command line because
Streamlit reads ``.streamlit/config.toml`` from the working directory, which is the user's, not
ours. The settings: no usage statistics (they call out to a metrics host), no file watcher (it
trips over ``torch.classes`` and reloads nothing a user needs), headless (no browser opened on a
server), no error details in the browser (a traceback would show server paths; the server's log
keeps it), and an upload limit that the pages name when they refuse a file.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import typer

from compd_core.cli.common import console
from compd_core.errors import ConfigError
from compd_core.paths import default_db_path

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
DB_ENV = "COMPD_DB"
MAX_UPLOAD_MB = 200  # per uploaded file; the dashboard names this limit when it refuses one


def streamlit_command(host: str, port: int, app: Path = APP) -> list[str]:
    """The command line that serves ``app`` with this project's Streamlit settings."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--client.showErrorDetails", "none",  # an unexpected error shows no server paths
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
        "--theme.primaryColor", "#1f5fa8",
    ]


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program holds, with the fix, before Streamlit fails obscurely."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must lie in 1..65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve on {host}:{port} ({exc.strerror}); pass a free port, "
                f"e.g. --port {port + 1}, or another --host"
            ) from exc


def dashboard(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (0.0.0.0: every "
                             "interface, reachable from other machines)."),
    port: int = typer.Option(8501, "--port", help="Port to serve on."),
    db: Path = typer.Option(None, "--db", help="Results database (default: ./compd.sqlite, "
                            "or $COMPD_DB)."),
) -> None:
    """Serve the dashboard in the browser: find, inspect and export deviations."""
    if not APP.is_file():
        raise ConfigError(f"the dashboard is not installed next to compd_core (no {APP}); "
                          "reinstall compd with `pip install -e .` from its checkout")
    _check_port(host, port)
    from compd_core.store import Store

    Store(db or default_db_path()).close()  # a bad --db is one line here, not a broken page
    env = dict(os.environ)  # carries OMP_WAIT_POLICY=PASSIVE, set when compd_core was imported
    if db is not None:
        env[DB_ENV] = str(db.expanduser().resolve())
    # The dashboard package sits beside compd_core; make it importable from any directory.
    root = str(APP.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    console.print(f"compd dashboard: [bold]http://{host}:{port}[/bold]  "
                  f"(results in {env.get(DB_ENV, 'compd.sqlite')}; Ctrl-C stops it)")
    sys.stderr.flush()
    sys.stdout.flush()
    command = streamlit_command(host, port)
    # Become the server (no wrapper process left behind): Ctrl-C and SIGTERM reach Streamlit.
    os.execve(command[0], command, env)

