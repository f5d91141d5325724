"""The `streams` command line. ``main`` is the console script's entry point."""

from __future__ import annotations

import sys

# Importing a command module registers its commands on the root group.
from streams.cli import locks, scope, status, sync, workspace  # noqa: F401
from streams.cli.base import cli, run_main

__all__ = ["cli", "main"]


def main() -> None:
    sys.exit(run_main())
