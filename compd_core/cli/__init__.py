"""The ``compd`` command line: one Typer app, one sub-module per command group.

Every error a user can cause (``CompdError``) ends as one line on stderr and exit code 2,
never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from compd_core.errors import CompdError

app = typer.Typer(
    name="compd",
    help="Find, explore and repair the deviations of compressed neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from compd_core.cli import characterize, dashboard, pair, profile, repair, runs, search, zoo

    app.add_typer(zoo.app, name="zoo")
    app.add_typer(pair.app, name="pair")
    app.add_typer(runs.app, name="runs")
    app.command("search")(search.search)
    app.command("characterize")(characterize.characterize)
    app.command("profile")(profile.profile)
    app.command("repair")(repair.repair)
    app.command("dashboard")(dashboard.dashboard)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``compd`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A changed model file is said in the command's own line (common.warn_changed_files); the
    # library's log record of the same sentence would print it a second time.
    logging.getLogger("compd_core.pair_spec").setLevel(logging.ERROR)
    _register()
    try:
        code = app(args=argv, standalone_mode=False)  # a command's typer.Exit(n) returns n here
    except CompdError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors (unknown command, bad option) arrive here in non-standalone mode;
        # Typer bundles its own click, so they are recognised by their interface.
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(2)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
