"""The root group imports command modules on demand; its map must name every command."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click

import streams.cli
from streams.cli.base import COMMAND_MODULES, cli


def test_every_registered_command_is_in_the_lazy_map() -> None:
    for info in pkgutil.iter_modules(streams.cli.__path__):
        importlib.import_module(f"streams.cli.{info.name}")
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, command in cli.commands.items():
        assert isinstance(command, click.Command)
        assert command.callback is not None or isinstance(command, click.Group)
        module = command.callback.__module__ if command.callback else ""
        if not isinstance(command, click.Group):
            assert module == f"streams.cli.{COMMAND_MODULES[name]}", name


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from streams.cli.base import run_main; run_main(['lock', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith(('streams.cli.', 'rich', 'watchdog', 'coordinator'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    assert "streams.cli.locks" in loaded
    for heavy in ("streams.cli.status", "streams.cli.sync", "rich", "watchdog", "coordinator"):
        assert f"'{heavy}" not in loaded, loaded
