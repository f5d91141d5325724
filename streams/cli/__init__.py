"""The `streams` command line. ``main`` is the console script's entry point."""

from __future__ import annotations

import sys

# Command modules register their commands on the root group when imported; the group imports
# them on demand (streams.cli.base.COMMAND_MODULES).
from streams.cli.base import cli, run_main

__all__ = ["cli", "main"]


def main() -> None:
    sys.exit(run_main())
