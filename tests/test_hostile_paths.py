"""Hostile paths through every scope check: spaces, newlines, quotes, non-ASCII, a leading dash, deep
nesting, symbolic links and case-only renames, all parsed from `-z` output."""

from __future__ import annotations

import json
import os
import queue
import subprocess
from pathlib import Path

import pytest

from coordinator.watcher import ScopeEvent, Watcher
from streams.kernel.rules import show
from streams.workspace import discover, load_config
from tests.conftest import Repo, run_cli

NAMES = [
    "with space.py",
    "new\nline.py",
    "tab\there.py",
    "quote\"s and 'apostrophes'.py",
    "back\\slash.py",
    "ünïcødé-名前.py",
    "-leading-dash.py",
    "--double-dash.py",
    "star*and?mark[1].py",
    " leading and trailing space ",
    "/".join(["deep"] * 40) + "/file.py",
]


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start", "api", "ui"], repo.root).code == 0
    return repo


def commit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "commit", "-q", "-m", "hostile", *args], cwd=cwd, capture_output=True, text=True)


def add_all(repo: Repo, wt: Path) -> None:
    repo.git("add", "-A", cwd=wt)


def test_hostile_names_in_scope_commit_with_and_without_verify(started: Repo) -> None:
    api = started.worktree("api")
    for name in NAMES:
        started.write(f"src/api/{name}", "ok\n", cwd=api)
    add_all(started, api)
    res = commit(api)
    assert res.returncode == 0, res.stderr
    for name in NAMES:
        started.write(f"src/api/{name}", "again\n", cwd=api)
    add_all(started, api)
    res = commit(api, "--no-verify")  # the reference-transaction hook parses the same names from git log -z
    assert res.returncode == 0, res.stderr
    assert run_cli(["verify", "--stream", "api"], started.root).code == 0


def test_hostile_names_out_of_scope_are_each_named(started: Repo) -> None:
    api = started.worktree("api")
    for name in NAMES:
        started.write(f"src/ui/{name}", "not api's\n", cwd=api)
    add_all(started, api)
    for args in ((), ("--no-verify",)):
        res = commit(api, *args)
        assert res.returncode != 0
        for name in NAMES:
            assert show(f"src/ui/{name}") in res.stderr, name
        assert f"{len(NAMES)} paths" in res.stderr
    assert show("src/ui/new\nline.py") == '"src/ui/new\\nline.py"'  # C-quoted like git, on one line
    assert show("src/ui/ünïcødé-名前.py") == "src/ui/ünïcødé-名前.py"  # readable, not octal


def test_verify_and_owner_return_the_exact_names(started: Repo) -> None:
    api = started.worktree("api")
    for name in NAMES:
        started.write(f"src/ui/{name}", "x\n", cwd=api)
    add_all(started, api)
    empty = api.parent / ".no-hooks"
    empty.mkdir()
    started.git("-c", f"core.hooksPath={empty}", "commit", "-q", "-m", "sneak", cwd=api)
    res = run_cli(["verify", "--stream", "api", "--json"], started.root)
    assert res.code == 5
    [result] = json.loads(res.out)["data"]["results"]
    assert sorted(v["path"] for v in result["violations"]) == sorted(f"src/ui/{n}" for n in NAMES)
    res = run_cli(["owner", "--json", "--", *(f"src/ui/{n}" for n in NAMES)], started.root)
    assert res.code == 0, res.err
    owners = json.loads(res.out)["data"]["paths"]
    assert [o["path"] for o in owners] == [f"src/ui/{n}" for n in NAMES]
    assert {o["stream"] for o in owners} == {"ui"}


def test_symlinks_are_judged_by_their_own_path(started: Repo) -> None:
    api = started.worktree("api")
    # A link inside api's scope pointing at ui's file is api's to commit (the link, not the target).
    os.symlink("../ui/main.ts", api / "src/api/ui-main.ts")
    add_all(started, api)
    assert commit(api).returncode == 0
    # Writing THROUGH a link into ui's file changes ui's file: that is refused.
    os.symlink("../ui", api / "src/api/ui-dir")
    (api / "src/api/ui-dir/main.ts").write_text("written through a link\n")
    add_all(started, api)
    res = commit(api)
    assert res.returncode == 1 and "M src/ui/main.ts" in res.stderr and "owned by ui" in res.stderr
    assert "src/api/ui-dir" not in res.stderr


def test_case_only_renames_check_both_sides(started: Repo) -> None:
    api = started.worktree("api")
    started.git("mv", "src/api/app.py", "src/api/App.py", cwd=api)
    assert commit(api).returncode == 0
    started.git("mv", "src/ui/main.ts", "src/ui/Main.ts", cwd=api)
    res = commit(api)
    assert res.returncode == 1
    assert "D src/ui/main.ts" in res.stderr and "A src/ui/Main.ts" in res.stderr


def test_watch_reports_a_hostile_name_exactly(started: Repo) -> None:
    ws = discover(started.root)
    events: queue.Queue[object] = queue.Queue()
    watcher = Watcher(ws, load_config(ws, check_tracked=False), events.put)
    watcher.start()
    name = "src/ui/ünï cødé\n-x.ts"
    try:
        started.write(name, "x\n", cwd=started.worktree("api"))
        found = None
        try:
            while found is None:
                ev = events.get(timeout=1.0)
                if isinstance(ev, ScopeEvent):
                    found = ev
        except queue.Empty:
            pass
        assert found is not None and found.path == name and found.reason == "owned by ui"
    finally:
        watcher.stop()
