"""Shared files stop causing rebase storms (issue "`streams merge`", item 6): a shared file may name
git's `union` merge driver, installed as an attribute every worktree reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Repo, make_repo, run_cli, run_streams

N = 20


def config(union: bool) -> str:
    shared = "  - {path: CHANGELOG.md, merge: union}\n" if union else "  - CHANGELOG.md\n"
    streams = "".join(f"  s{i:02}:\n    owns: [src/s{i:02}/**]\n" for i in range(N))
    return f"version: 1\nbase: main\nshared:\n{shared}streams:\n{streams}"


def files() -> dict[str, str]:
    return {"CHANGELOG.md": "# Changelog\n", **{f"src/s{i:02}/x.py": "x\n" for i in range(N)}}


def add_line(repo: Repo, name: str) -> None:
    wt = repo.worktree(name)
    assert run_streams(["lock", "CHANGELOG.md", "--until-commit"], wt).code == 0
    with (wt / "CHANGELOG.md").open("a") as fh:
        fh.write(f"- {name}: a change\n")
    repo.write(f"src/{name}/x.py", f"{name}\n", cwd=wt)
    subprocess.run(["git", "commit", "-q", "-am", f"{name}: work"], cwd=wt, check=True)


def test_the_union_driver_is_an_attribute_every_worktree_reads(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=files(), config=config(union=True))
    assert run_cli(["start", "s00"], repo.root).code == 0
    attrs = (repo.root / ".git" / "info" / "attributes").read_text()
    assert "CHANGELOG.md merge=union" in attrs
    out = subprocess.run(
        ["git", "check-attr", "merge", "CHANGELOG.md"], cwd=repo.worktree("s00"), capture_output=True, text=True
    )
    assert out.stdout.strip() == "CHANGELOG.md: merge: union"


def test_with_union_twenty_streams_each_adding_a_line_all_land_and_sync_never_halts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=files(), config=config(union=True))
    assert run_cli(["start"], repo.root).code == 0
    for i in range(N):
        add_line(repo, f"s{i:02}")
    halts = 0
    for i in range(0, N, 5):  # land five, then sync the others onto them
        res = run_cli(["merge", *(f"s{j:02}" for j in range(i, i + 5))], repo.root)
        assert res.code == 0, res.out + res.err
        synced = run_cli(["sync"], repo.root)
        halts += synced.code == 4
    assert halts == 0
    log = repo.git("show", "main:CHANGELOG.md")
    assert sorted(ln for ln in log.splitlines() if ln.startswith("- ")) == [f"- s{i:02}: a change" for i in range(N)]


def test_without_union_each_lease_is_held_until_its_line_lands_and_sync_never_halts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=files(), config=config(union=False))
    assert run_cli(["start"], repo.root).code == 0
    halts = 0
    for i in range(N):
        name = f"s{i:02}"
        add_line(repo, name)
        # The commit did not release the lease: another stream cannot take it until the line lands.
        other = f"s{(i + 1) % N:02}"
        taken = run_streams(["lock", "CHANGELOG.md"], repo.worktree(other)) if i + 1 < N else None
        if taken is not None:
            assert taken.code == 3 and "lands on the base" in taken.err, taken.err
        listed = run_streams(["locks"], repo.root)
        assert "held until landed" in listed.out
        res = run_cli(["merge", name], repo.root)
        assert res.code == 0, res.out + res.err
        synced = run_cli(["sync"], repo.root)
        halts += synced.code == 4
    assert halts == 0
    log = repo.git("show", "main:CHANGELOG.md")
    assert [ln for ln in log.splitlines() if ln.startswith("- ")] == [f"- s{i:02}: a change" for i in range(N)]


def test_with_union_the_lease_goes_at_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=files(), config=config(union=True))
    assert run_cli(["start", "s00", "s01"], repo.root).code == 0
    add_line(repo, "s00")
    assert run_streams(["lock", "CHANGELOG.md"], repo.worktree("s01")).code == 0


def test_shared_only_lands_just_the_shared_file_commits_and_frees_the_lease(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=files(), config=config(union=False))
    assert run_cli(["start", "s00", "s01"], repo.root).code == 0
    wt = repo.worktree("s00")
    repo.write("src/s00/x.py", "unfinished work\n", cwd=wt)
    subprocess.run(["git", "commit", "-q", "-am", "s00: work in progress"], cwd=wt, check=True)
    assert run_streams(["lock", "CHANGELOG.md", "--until-commit"], wt).code == 0
    with (wt / "CHANGELOG.md").open("a") as fh:
        fh.write("- s00: a change\n")
    subprocess.run(["git", "commit", "-q", "-am", "s00: changelog"], cwd=wt, check=True)
    assert run_streams(["lock", "CHANGELOG.md"], repo.worktree("s01")).code == 3  # held until landed
    res = run_cli(["merge", "--shared-only", "s00"], repo.root)
    assert res.code == 0, res.out + res.err
    assert repo.git("log", "-1", "--format=%s", "main").strip() == "s00: changelog"
    assert repo.git("show", "main:src/s00/x.py") == "x\n"  # the unfinished work stays on the stream
    assert wt.is_dir() and repo.git("rev-parse", "-q", "--verify", "streams/s00", check=False)
    assert run_streams(["lock", "CHANGELOG.md"], repo.worktree("s01")).code == 0  # free for the next
    assert run_cli(["sync"], repo.root).code == 0  # s00's changelog commit is on main: dropped by the rebase
    own = repo.git("log", "--format=%s", "main..streams/s00").splitlines()
    assert "s00: work in progress" in own and "s00: changelog" not in own
