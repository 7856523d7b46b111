"""``python -m flinkops`` runs the CLI (the controller daemon starts itself this way)."""

from flinkops.cli.entry import run

run()
