"""After `streams merge` lands a stream: its worktree goes without `stop`'s re-checks (one status),
its ignored files are kept, and a worktree written to since the queue's check goes the careful way
(`stop --force` saves the work first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.landing import after_landing
from streams import worktrees
from streams.config import load
from streams.workspace import discover
from tests.conftest import Repo, make_repo, run_cli

CONFIG = "version: 1\nbase: main\nstreams:\n  a:\n    owns: [src/a/**]\n"
FILES = {"src/a/x.py": "a\n", ".gitignore": ".env\nbuild/\n", "README.md": "# r\n"}


@pytest.fixture
def landed_work(tmp_path: Path) -> Repo:
    """Stream ``a`` started, one work commit in its worktree, an ignored ``.env`` and ``build/``."""
    repo = make_repo(tmp_path, files=FILES, config=CONFIG)
    assert run_cli(["start", "a"], repo.root).code == 0
    wt = repo.worktree("a")
    repo.write("src/a/x.py", "a2\n", cwd=wt)
    repo.commit_all("a: work", cwd=wt)
    repo.write(".env", "SECRET=1\n", cwd=wt)
    repo.write("build/out.o", "binary\n", cwd=wt)
    return repo


def test_a_landed_streams_ignored_files_are_kept_and_its_worktree_and_branch_removed(landed_work: Repo) -> None:
    repo = landed_work
    res = run_cli(["merge", "--json"], repo.root)
    assert res.code == 0, res.err
    [landing] = json.loads(res.out)["data"]["results"]
    assert (landing["outcome"], landing["removed"]) == ("landed", True)
    assert not repo.worktree("a").exists()
    assert repo.git("branch", "--list", "streams/a").strip() == ""
    kept = list((repo.root / ".git").rglob("kept/a/*/.env"))
    assert [p.read_text() for p in kept] == ["SECRET=1\n"]
    assert not list((repo.root / ".git").rglob("kept/a/*/build"))  # a wholly ignored directory: not copied


def test_a_worktree_written_to_after_the_check_is_stopped_the_careful_way(landed_work: Repo) -> None:
    repo = landed_work
    wt = repo.worktree("a")
    ws, config = discover(repo.root), load(repo.root / "streams.yaml")
    tip = repo.git("rev-parse", "HEAD", cwd=wt).strip()
    repo.write("src/a/late.py", "written after the queue found it clean\n", cwd=wt)
    assert worktrees.remove_landed(ws, config, "a", wt, tip, landed="refs/streams/landed/a/x", message="m") is None
    assert repo.git("for-each-ref", "refs/streams/landed/").strip() == ""
    assert (wt / "src/a/late.py").is_file() and repo.git("branch", "--list", "streams/a").strip()
    assert not list((repo.root / ".git").rglob("kept/a/*/.env"))  # nothing half done
    # The landing's bookkeeping then stops it the careful way: the late file is saved to a ref.
    landed, removed = after_landing(ws, config, "a", tip, keep=False, worktree=wt)
    assert removed and not wt.exists()
    saved = repo.git("for-each-ref", "--format=%(refname)", "refs/streams/saved/a/").split()
    assert len(saved) == 1
    assert repo.git("show", f"{saved[0]}:src/a/late.py") == "written after the queue found it clean\n"
    assert repo.git("rev-parse", landed).strip() == tip


def test_a_branch_that_moved_before_the_removal_keeps_worktree_and_branch(landed_work: Repo) -> None:
    repo = landed_work
    wt = repo.worktree("a")
    ws, config = discover(repo.root), load(repo.root / "streams.yaml")
    tip = repo.git("rev-parse", "HEAD", cwd=wt).strip()
    repo.git("commit", "-q", "--allow-empty", "-m", "a: later, clean", cwd=wt)
    assert worktrees.remove_landed(ws, config, "a", wt, tip, landed="refs/streams/landed/a/x", message="m") is None
    assert wt.is_dir() and repo.git("for-each-ref", "refs/streams/landed/").strip() == ""
    landed, removed = after_landing(ws, config, "a", tip, keep=False, worktree=wt)
    assert not removed and wt.is_dir()  # its new commit is not landed: it stays, worktree and all
    assert repo.git("rev-parse", landed).strip() == tip
    assert repo.git("rev-parse", "streams/a").strip() != tip


def test_the_landed_ref_and_the_branch_deletion_are_one_transaction(
    landed_work: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = landed_work
    wt = repo.worktree("a")
    ws, config = discover(repo.root), load(repo.root / "streams.yaml")
    tip = repo.git("rev-parse", "HEAD", cwd=wt).strip()
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    landed, removed = after_landing(ws, config, "a", tip, keep=False, worktree=wt)
    monkeypatch.delenv("GIT_TRACE")
    assert removed and not wt.exists()
    assert repo.git("rev-parse", landed).strip() == tip
    updates = [line for line in trace.read_text().splitlines() if "built-in: git update-ref" in line]
    assert len(updates) == 1, updates  # create the landed ref + delete the branch: one transaction
    assert repo.git("branch", "--list", "streams/a").strip() == ""


def test_a_landing_killed_before_it_was_recorded_done_is_finished_with_one_landed_ref(landed_work: Repo) -> None:
    """The state a kill leaves between the transaction that keeps the tip and deletes the branch and
    the record saying "done": the next merge finishes it and keeps no second ref of that tip."""
    repo = landed_work
    tip = repo.git("rev-parse", "streams/a").strip()
    res = run_cli(["merge", "--json"], repo.root)
    assert res.code == 0, res.err
    record = repo.root / ".git" / "streams" / "merge.json"
    data = json.loads(record.read_text())
    assert [e["state"] for e in data["landings"]] == ["done"]
    data["landings"][0]["state"] = "landed"
    record.write_text(json.dumps(data))
    res = run_cli(["merge", "--json"], repo.root)
    assert res.code == 0, res.err
    assert json.loads(res.out)["data"]["finished"] == ["a"]
    landed = repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/streams/landed/a/").splitlines()
    assert len(landed) == 1 and landed[0].endswith(tip), landed
    entries = json.loads(record.read_text())["landings"]
    assert [(e["state"], e["landed_ref"]) for e in entries] == [("done", landed[0].split()[0])]


def test_a_worktree_a_killed_removal_left_half_gone_is_kept_whole_and_the_landing_finished(landed_work: Repo) -> None:
    """`git worktree remove` deletes the files, `.git` among them, then its record: killed in
    between, it leaves a directory git can neither read nor remove. Finishing the landing moves what
    is left aside (no git can say what was committed there), forgets the worktree, and lands."""
    repo = landed_work
    wt = repo.worktree("a")
    tip = repo.git("rev-parse", "streams/a").strip()
    (wt / ".git").unlink()  # as the killed removal left it: .git gone, src/a/x.py and .env still there
    (wt / "README.md").unlink()
    ws = discover(repo.root)
    landed, at_tip = after_landing(ws, load(ws.config_path), "a", tip, keep=False, worktree=wt)
    assert at_tip and repo.git("rev-parse", landed).strip() == tip
    assert not wt.exists() and "prunable" not in repo.git("worktree", "list", "--porcelain")
    [left] = (repo.root / ".git" / "streams" / "kept" / "a").glob("*-leftovers")
    assert (left / "src" / "a" / "x.py").read_text() == "a2\n" and (left / ".env").read_text() == "SECRET=1\n"
    assert repo.git("branch", "--list", "streams/a").strip() == ""


def test_stop_names_where_a_half_removed_worktree_went(landed_work: Repo) -> None:
    repo = landed_work
    (repo.worktree("a") / ".git").unlink()
    res = run_cli(["stop", "--force", "a"], repo.root)
    assert res.code == 0, res.err
    assert "was half removed" in res.out and "kept in" in res.out
    data = json.loads(run_cli(["status", "--json"], repo.root).out)["data"]
    assert data["streams"][0]["state"] == "branch only"
