"""The `streams` command line. ``main`` is the console script's entry point."""

from __future__ import annotations

import sys

from streams.cli import workspace  # noqa: F401 - registers init, start, stop, list
from streams.cli.base import cli, run_main

__all__ = ["cli", "main"]


def main() -> None:
    sys.exit(run_main())
