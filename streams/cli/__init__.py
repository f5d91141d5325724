"""The `streams` command line. ``main`` is the console script's entry point.

Command modules register their commands on the root group when imported; the group imports them
on demand (``streams.cli.base.COMMAND_MODULES``). ``cli`` and ``run_main`` are loaded on first use,
so that ``main`` can hand `streams progress` to ``streams.cli.quick`` before click is imported.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `typing`: 11 ms of imports the quick paths below do without
if TYPE_CHECKING:
    from typing import Any

    from streams.cli.base import cli, run_main

__all__ = ["cli", "main", "run_main"]


def __getattr__(name: str) -> Any:
    if name in ("cli", "run_main"):
        from streams.cli import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_on_first_use(name: str) -> None:
    """Put the standard module ``name`` in ``sys.modules`` unloaded: its code runs when one of its
    names is first looked up (``import name`` alone does not: unlike ``importlib.util.LazyLoader``,
    whose module loads as soon as the import system asks for its ``__spec__``)."""
    import importlib.util
    import types

    spec = importlib.util.find_spec(name)
    if name in sys.modules or spec is None or spec.loader is None:
        return
    loader = spec.loader
    loaded = False

    class OnFirstUse(types.ModuleType):
        def __getattr__(self, attr: str) -> object:  # only for a name the module does not have (yet)
            nonlocal loaded
            if loaded:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            loaded = True
            loader.exec_module(self)
            return getattr(self, attr)

    module = OnFirstUse(name)
    module.__spec__, module.__file__, module.__loader__ = spec, spec.origin, loader
    sys.modules[name] = module


def main() -> None:
    if sys.argv[1:2] == ["progress"]:
        # dataclasses imports inspect (with ast, dis, tokenize: 6 ms, a tenth of a `streams progress`)
        # for one use: the signature of a dataclass without a docstring, and the quick path defines
        # none (tests/test_cli_lazy.py checks that inspect's imports stay unloaded).
        _load_on_first_use("inspect")
        from streams.cli.quick import progress

        code = progress(sys.argv[2:])
        if code is not None:
            import gc

            # Done: what is left lives until the process ends, and the collector need not walk it
            # on the way out (Python's teardown of it costs 3-4 ms, as much as the work above).
            gc.freeze()
            sys.exit(code)
    if sys.argv[1:2] in (["list"], ["locks"]):
        from streams.cli.quickread import serve  # no dataclass, enum, pathlib, typing or json on its way

        code = serve(sys.argv[1:])
        if code is not None:
            import gc

            gc.freeze()  # as above
            sys.exit(code)
    if sys.argv[1:] == ["status", "--json"]:
        from streams.cli.quickstatus import serve as serve_status

        code = serve_status(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from streams.cli.base import run_main

    sys.exit(run_main())
