"""The `streams` command line. ``main`` is the console script's entry point.

Command modules register their commands on the root group when imported; the group imports them
on demand (``streams.cli.base.COMMAND_MODULES``). ``cli`` and ``run_main`` are loaded on first use,
so that ``main`` can hand `streams progress` to ``streams.cli.quick`` before click is imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.cli.base import cli, run_main

__all__ = ["cli", "main", "run_main"]


def __getattr__(name: str) -> Any:
    if name in ("cli", "run_main"):
        from streams.cli import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:2] == ["progress"]:
        from streams.cli.quick import progress

        code = progress(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from streams.cli.base import run_main

    sys.exit(run_main())
