"""Rebasing a shared-file commit is not a violation (issue "Safe under real agents", item 9).

A stream changes a shared file under a lease, releases it, and main changes the same file: sync's
replay, and a human's resolution of the conflict, change the file again without a lease. That is
the stream's own change replayed, not a new one. A lease taken to resolve ends with the rebase,
and the advice for an out-of-scope path added while resolving works when it is not in the tip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import Repo, run_cli, run_streams

LINES = "".join(f"line {i}\n" for i in range(1, 21))


def git_run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)


def edit_line(path: Path, n: int, suffix: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[n - 1] = lines[n - 1].rstrip("\n") + f" {suffix}\n"
    path.write_text("".join(lines))


def setup(repo: Repo, stream_line: int, main_line: int) -> Path:
    """api changes pyproject.toml (shared) under a lock, unlocks; main changes it too."""
    repo.write("pyproject.toml", LINES)
    repo.commit_all("a longer pyproject")
    assert run_cli(["start", "api"], repo.root).code == 0
    api = repo.worktree("api")
    assert run_streams(["lock", "pyproject.toml"], api).code == 0
    edit_line(api / "pyproject.toml", stream_line, "api")
    assert git_run(api, "commit", "-q", "-am", "api: pyproject").returncode == 0
    assert run_streams(["unlock", "pyproject.toml"], api).code == 0
    edit_line(repo.root / "pyproject.toml", main_line, "main")
    repo.commit_all("main: pyproject")
    return api


def resolve(api: Path) -> None:
    path = api / "pyproject.toml"
    kept = [
        ln for ln in path.read_text().splitlines(keepends=True) if not ln.startswith(("<<<<<<<", "=======", ">>>>>>>"))
    ]
    path.write_text("".join(kept))


def test_sync_replays_a_shared_file_commit_without_a_lease(repo: Repo) -> None:
    api = setup(repo, stream_line=5, main_line=7)  # near, not conflicting
    res = run_cli(["sync"], repo.root)
    assert res.code == 0, res.err
    assert repo.git("merge-base", "main", "streams/api").strip() == repo.git("rev-parse", "main").strip()
    text = (api / "pyproject.toml").read_text()
    assert "line 5 api" in text and "line 7 main" in text


def test_a_human_resolves_a_shared_file_conflict_without_a_lease(repo: Repo) -> None:
    api = setup(repo, stream_line=5, main_line=5)
    assert run_cli(["sync"], repo.root).code == 4  # halted on pyproject.toml
    resolve(api)
    assert git_run(api, "add", "pyproject.toml").returncode == 0
    res = git_run(api, "rebase", "--continue", env={**os.environ, "GIT_EDITOR": "true"})
    assert res.returncode == 0, res.stderr
    assert "line 5 api" in git_run(api, "show", "streams/api:pyproject.toml").stdout


def test_sync_continue_finishes_a_shared_file_resolution(repo: Repo) -> None:
    api = setup(repo, stream_line=5, main_line=5)
    assert run_cli(["sync"], repo.root).code == 4
    resolve(api)
    git_run(api, "add", "pyproject.toml")
    res = run_cli(["sync", "--continue", "api"], repo.root)
    assert res.code == 0, res.err


def test_an_agent_amending_its_shared_file_commit_still_needs_the_lease(repo: Repo) -> None:
    api = setup(repo, stream_line=5, main_line=7)
    edit_line(api / "pyproject.toml", 9, "more")
    res = git_run(api, "commit", "-q", "-a", "--amend", "--no-edit")
    assert res.returncode == 1 and "streams lock pyproject.toml" in res.stderr


def test_a_lease_taken_to_resolve_is_released_when_the_rebase_finishes(repo: Repo) -> None:
    api = setup(repo, stream_line=5, main_line=5)
    assert run_cli(["sync"], repo.root).code == 4
    lock = run_streams(["lock", "pyproject.toml"], api)
    assert lock.code == 0 and "released when the rebase here finishes" in lock.out
    resolve(api)
    git_run(api, "add", "pyproject.toml")
    res = git_run(api, "rebase", "--continue", env={**os.environ, "GIT_EDITOR": "true"})
    assert res.returncode == 0, res.stderr
    assert "released the lock on pyproject.toml" in res.stderr
    listed = run_streams(["locks", "--json"], repo.root)
    assert '"pyproject.toml"' not in listed.out


def test_advice_for_an_out_of_scope_path_in_an_earlier_commit_works(repo: Repo) -> None:
    repo.write("pyproject.toml", LINES)
    repo.commit_all("a longer pyproject")
    assert run_cli(["start", "api"], repo.root).code == 0
    api = repo.worktree("api")
    repo.write("src/api/app.py", "api's version\n", cwd=api)
    assert git_run(api, "commit", "-q", "-am", "api: app").returncode == 0
    repo.write("src/api/more.py", "more\n", cwd=api)
    git_run(api, "add", "src/api/more.py")
    assert git_run(api, "commit", "-q", "-m", "api: more").returncode == 0
    repo.write("src/api/app.py", "main's version\n")
    repo.commit_all("main: app")
    assert run_cli(["sync"], repo.root).code == 4  # halted on the first of api's two commits
    # The human resolves, and (wrongly) adds an unowned file to the resolution: the rebase goes on
    # with the second commit, and its end is refused, naming the earlier commit.
    repo.write("src/api/app.py", "both\n", cwd=api)
    repo.write("README.md", "sneaked in\n", cwd=api)
    git_run(api, "add", "src/api/app.py", "README.md")
    res = git_run(api, "rebase", "--continue", env={**os.environ, "GIT_EDITOR": "true"})
    assert res.returncode != 0 and "README.md" in res.stderr
    assert "git commit --amend" not in res.stderr  # amending the tip would not fix an earlier commit
    assert "streams sync --abort api" in res.stderr
    # Following the advice works: abort, sync again, resolve without the path.
    assert run_cli(["sync", "--abort", "api"], repo.root).code == 0
    assert run_cli(["sync"], repo.root).code == 4
    repo.write("src/api/app.py", "both\n", cwd=api)
    git_run(api, "add", "src/api/app.py")
    assert run_cli(["sync", "--continue", "api"], repo.root).code == 0
    assert git_run(api, "show", "streams/api:src/api/more.py").returncode == 0
