"""The root group imports command modules on demand; its map must name every command."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys

import click
import pytest

import streams.cli
import streams.git
from streams.cli.base import COMMAND_MODULES, cli
from tests.conftest import Repo, run_cli, run_streams


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


# --- `streams progress` in a stream's own worktree: the quick path loads only what it needs ------------

# Every streams module the quick path may load; anything else (streams.git.refs, streams.git.replay,
# streams.config, ...) costs an agent's every progress update its import time (issue 10's goal:
# `streams progress` at most 3x raw git, measured by `scripts/bench progress`). A module the quick
# path really needs goes here, after measuring the bench with it.
QUICK_PATH_MODULES = {
    "streams",
    "streams.cli",
    "streams.cli.quick",
    "streams.cli.quickread",
    "streams.progress",
    "streams.git",
    "streams.git.door",
    "streams.git.worktree",
    "streams.kernel",
    "streams.kernel.atomic",
    "streams.kernel.durations",
    "streams.kernel.errors",
    "streams.kernel.gitparse",
    "streams.kernel.gitproc",
    "streams.kernel.hookcache",
    "streams.kernel.mutex",
    "streams.kernel.paths",
    "streams.kernel.patterns",
    "streams.kernel.procs",
    "streams.kernel.progressfile",
    "streams.kernel.reffiles",
    "streams.kernel.rules",
}
# Modules outside streams the quick path must not load: the full CLI's (click, PyYAML), and what
# only other commands use (tempfile, shutil: the temp files of a replay; subprocess: the commit is
# spawned with os.posix_spawn).
NOT_ON_THE_QUICK_PATH = ("click", "yaml", "rich", "watchdog", "coordinator", "tempfile", "shutil", "subprocess")

SHOW_MODULES = (
    "import sys, json; from streams.cli import main\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print('MODULES', json.dumps([code, sorted(sys.modules)]))\n"
)


def test_the_progress_quick_path_imports_only_what_it_needs(repo: Repo) -> None:
    assert run_cli(["start"], repo.root).code == 0
    wt = repo.worktree("api")
    assert run_cli(["progress", "--completion", "1"], wt).code == 0  # the hooks' cache is fresh
    before = repo.git("rev-parse", "HEAD", cwd=wt).strip()
    argv = [sys.executable, "-c", SHOW_MODULES, "progress", "--status", "in_progress", "--completion", "30"]
    proc = subprocess.run(argv, cwd=wt, capture_output=True, text=True, check=False, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    code, modules = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES"))[8:])
    assert code == 0 and repo.git("rev-parse", "HEAD~1", cwd=wt).strip() == before  # it did commit
    ours = {m for m in modules if m.split(".")[0] in ("streams", "coordinator")}
    assert ours - QUICK_PATH_MODULES == set(), "the quick path imported more of streams than it needs"
    assert {m.split(".")[0] for m in modules} & set(NOT_ON_THE_QUICK_PATH) == set()
    # inspect is imported (by dataclasses) but never loaded: its own imports are not there.
    assert {"ast", "dis", "tokenize"} & set(modules) == set(), "a dataclass on the quick path has no docstring?"


def test_a_module_loaded_on_first_use_works_as_the_module() -> None:
    code = (
        "import sys; from streams.cli import _load_on_first_use\n"
        "_load_on_first_use('inspect')\n"
        "import inspect, dataclasses\n"
        "before = 'ast' in sys.modules\n"
        "from inspect import signature\n"
        "@dataclasses.dataclass\n"
        "class Plain:\n    a: int\n"
        "print(before, 'ast' in sys.modules, str(signature(Plain)), Plain.__doc__, hasattr(inspect, 'nope'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False True (a: int) -> None Plain(a: int) False", out


def test_the_git_namespace_names_each_submodules_public_names() -> None:
    """``streams.git`` loads a submodule on first use of one of its names (in a fresh process): its
    map must list each submodule's ``__all__`` exactly, and every name resolve to that object."""
    code = (
        "import importlib, json, streams.git as g\n"
        "first = callable(g.replay)  # the function, not the submodule of that name\n"
        "mods = {m: importlib.import_module('streams.git.' + m) for m in ('attempt', 'door', 'refs', 'replay', 'worktree')}\n"
        "same = all(getattr(g, n) is getattr(mod, n) for mod in mods.values() for n in mod.__all__)\n"
        "print(json.dumps([first, same, {m: sorted(mod.__all__) for m, mod in mods.items()}]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, same, exported = json.loads(out)
    assert first and same
    listed = {module: sorted(names.split()) for module, names in streams.git._EXPORTS.items()}
    assert listed == exported
    with pytest.raises(AttributeError):
        _ = streams.git.no_such_function  # type: ignore[attr-defined]


# --- `streams --help` lists the commands without importing them -----------------------------------

HELP = "import sys\nfrom streams.cli.base import run_main\n{load}run_main(['--help'])\n"
LOAD_ALL = (
    "import importlib\nfrom streams.cli.base import COMMAND_MODULES\n"
    "for m in set(COMMAND_MODULES.values()):\n    importlib.import_module('streams.cli.' + m)\n"
)


def test_each_command_summary_is_the_first_paragraph_of_its_help() -> None:
    from streams.cli.base import COMMAND_SUMMARIES

    for info in pkgutil.iter_modules(streams.cli.__path__):
        importlib.import_module(f"streams.cli.{info.name}")
    assert set(COMMAND_SUMMARIES) == set(cli.commands)
    for name, command in cli.commands.items():
        stand_in = click.Command(name, help=COMMAND_SUMMARIES[name])
        for limit in (20, 45, 80, 300):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


@pytest.mark.parametrize("columns", ["50", "80", "200"])
def test_help_imports_no_command_module_and_says_the_same(columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}
    code = (
        HELP.format(load="")
        + "print(sorted(m for m in sys.modules if m.startswith('streams.cli.')), file=sys.stderr)\n"
    )
    lazy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    loaded = subprocess.run(
        [sys.executable, "-c", HELP.format(load=LOAD_ALL)], capture_output=True, text=True, check=True, env=env
    )
    assert lazy.stdout == loaded.stdout and "Commands:" in lazy.stdout
    assert lazy.stderr.strip() == "['streams.cli.base', 'streams.cli.output']"


# What the read-only quick paths (list, locks, status --json) answer without: each is 5-20 ms of
# imports on the reference machine, as much as the interpreter's own start.
NOT_ON_THE_READ_PATHS = (*NOT_ON_THE_QUICK_PATH, "dataclasses", "enum", "pathlib", "typing", "json", "re", "inspect")

SHOW_MODULES_BARE = (  # as SHOW_MODULES, without importing json itself first
    "import sys\nfrom streams.cli import main\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print('MODULES', repr([code, sorted(sys.modules)]))\n"
)


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["locks"], ["locks", "--json"], ["status", "--json"]])
def test_the_read_only_quick_paths_import_no_heavy_module(repo: Repo, args: list[str]) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    assert run_cli(["lock", "pyproject.toml"], repo.worktree("api")).code == 0
    assert run_streams(["status", "--json"], repo.root, env={"STREAMS_FULL_PATH": "1"}).code == 0  # the caches
    proc = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES_BARE, *args], cwd=repo.root, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    code, modules = ast.literal_eval(next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES"))[8:])
    assert code == 0
    assert "streams.cli.quickread" in modules  # the quick path answered
    assert {m.split(".")[0] for m in modules} & set(NOT_ON_THE_READ_PATHS) == set()
