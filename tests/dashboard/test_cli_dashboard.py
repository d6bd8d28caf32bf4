"""`compd dashboard`: the Streamlit command line it serves with, and a busy port refused."""

from __future__ import annotations

import socket

import typer
from typer.testing import CliRunner

from compd_core.cli.dashboard import APP, dashboard, streamlit_command
from compd_core.errors import ConfigError


def _flags(command: list[str]) -> dict[str, str]:
    options = command[command.index(str(APP)) + 1:]
    return dict(zip(options[::2], options[1::2]))


def test_streamlit_is_configured_for_a_local_headless_server() -> None:
    command = streamlit_command("127.0.0.1", 8765)
    assert command[1:4] == ["-m", "streamlit", "run"] and APP.is_file()
    flags = _flags(command)
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.fileWatcherType"] == "none"
    assert flags["--client.showErrorDetails"] == "none"  # no traceback with server paths
    assert flags["--server.maxUploadSize"] == "200"  # the limit the Models page names


def test_a_busy_port_is_refused_with_the_fix() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        app = typer.Typer()
        app.command()(dashboard)
        result = CliRunner().invoke(app, ["--port", str(port)])
    assert isinstance(result.exception, ConfigError)
    assert f"cannot serve on 127.0.0.1:{port}" in str(result.exception)
    assert f"--port {port + 1}" in str(result.exception)


def test_an_impossible_port_is_refused() -> None:
    app = typer.Typer()
    app.command()(dashboard)
    result = CliRunner().invoke(app, ["--port", "70000"])
    assert isinstance(result.exception, ConfigError)
    assert "--port must lie in 1..65535" in str(result.exception)
