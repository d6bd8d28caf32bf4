"""``python -m compd_core`` runs the command line."""

from compd_core.cli import main

main()
