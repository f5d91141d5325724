"""`streams merge`: the merge queue (issue "`streams merge`"), against real repositories."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Repo, disk_snapshot, make_repo, run_cli

CONFIG = """\
version: 1
base: main
streams:
  a:
    owns: [src/a/**]
  b:
    owns: [src/b/**]
    depends: [a]
  c:
    owns: [src/c/**]
  d:
    owns: [src/d/**]
    depends: [c]
"""

FILES = {
    "src/a/x.py": "a\n",
    "src/b/x.py": "b\n",
    "src/c/x.py": "c1\nc2\nc3\n",
    "src/d/x.py": "d\n",
    "README.md": "# demo\n",
}


@pytest.fixture
def repo4(tmp_path: Path) -> Repo:
    repo = make_repo(tmp_path, files=FILES, config=CONFIG)
    assert run_cli(["start"], repo.root).code == 0
    return repo


def work(repo: Repo, name: str, rel: str, text: str, *, date: str | None = None) -> str:
    wt = repo.worktree(name)
    repo.write(rel, text, cwd=wt)
    env = {**os.environ, **({"GIT_AUTHOR_DATE": date} if date else {})}
    subprocess.run(["git", "add", "-A"], cwd=wt, check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"{name}: {rel}"], cwd=wt, check=True, env=env)
    return repo.git("rev-parse", "HEAD", cwd=wt).strip()


def merge(repo: Repo, *args: str) -> tuple[int, Any, str]:
    res = run_cli(["merge", "--json", *args], repo.root)
    env = json.loads(res.out)
    return res.code, env["data"], res.err


def outcomes(data: Any) -> list[tuple[str, str]]:
    return [(r["stream"], r["outcome"]) for r in data["results"]]


def main_log(repo: Repo) -> list[str]:
    return repo.git("log", "--format=%s", "main").splitlines()


def no_bookkeeping_on(repo: Repo, rev: str = "main") -> None:
    assert ".streams" not in repo.git("ls-tree", "--name-only", rev).split()
    touched = repo.git("log", "--format=", "--name-only", rev).split()
    assert not [p for p in touched if p.startswith(".streams/")]


def test_streams_land_in_dependency_order_then_oldest_first(repo4: Repo) -> None:
    work(repo4, "b", "src/b/x.py", "b2\n", date="2026-01-01T10:00:00")  # the oldest work, but b needs a
    work(repo4, "a", "src/a/x.py", "a2\n", date="2026-01-02T10:00:00")
    work(repo4, "c", "src/c/x.py", "c1\nc2\nc3\nc4\n", date="2026-01-03T10:00:00")
    assert run_cli(["progress", "--status", "completed", "--completion", "100"], repo4.worktree("a")).code == 0
    code, data, err = merge(repo4)
    assert code == 0, err
    assert outcomes(data) == [("a", "landed"), ("b", "landed"), ("c", "landed"), ("d", "nothing to land")]
    assert main_log(repo4)[:3] == ["c: land stream c", "b: land stream b", "a: land stream a"]
    for rel, text in (("src/a/x.py", "a2\n"), ("src/b/x.py", "b2\n"), ("src/c/x.py", "c1\nc2\nc3\nc4\n")):
        assert repo4.git("show", f"main:{rel}") == text
    no_bookkeeping_on(repo4)
    # Landed: tip kept, worktree and branch gone, and start without names leaves it alone.
    landed = repo4.git("for-each-ref", "--format=%(refname)", "refs/streams/landed/").split()
    assert sorted(r.split("/")[3] for r in landed) == ["a", "b", "c"]
    assert not repo4.worktree("a").exists()
    assert repo4.git("rev-parse", "-q", "--verify", "refs/heads/streams/a", check=False) == ""
    body = repo4.git("log", "-1", "--format=%B", "main~2")
    assert "Stream: a (streams/a)" in body and "a: src/a/x.py" in body and "progress" not in body.lower()


def test_the_main_worktree_follows_and_keeps_an_unrelated_edit(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    (repo4.root / "README.md").write_text("my own edit\n")
    code, _, err = merge(repo4, "a")
    assert code == 0, err
    assert repo4.git("rev-parse", "HEAD") == repo4.git("rev-parse", "main")
    assert (repo4.root / "src" / "a" / "x.py").read_text() == "a2\n"
    assert (repo4.root / "README.md").read_text() == "my own edit\n"
    assert repo4.git("status", "--porcelain").strip() == "M README.md"


def test_an_overlapping_user_edit_rolls_the_landing_back_and_names_the_file(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    work(repo4, "c", "src/c/x.py", "c1\nc2\nc3\nc4\n")
    (repo4.root / "src" / "a" / "x.py").write_text("the user's edit\n")
    before = repo4.git("rev-parse", "main").strip()
    code, data, _ = merge(repo4)
    assert code == 4
    first = data["results"][0]
    assert (first["stream"], first["outcome"]) == ("a", "rolled back")
    assert first["files"] == ["src/a/x.py"]
    assert ("c", "skipped") in outcomes(data)  # the queue stops: the same edit would be in the way
    assert repo4.git("rev-parse", "main").strip() == before
    assert (repo4.root / "src" / "a" / "x.py").read_text() == "the user's edit\n"
    assert repo4.worktree("a").is_dir()


def test_a_conflicting_stream_is_ejected_its_dependent_skipped_the_others_land(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    work(repo4, "c", "src/c/x.py", "c1\nC2 from c\nc3\n")
    work(repo4, "d", "src/d/x.py", "d2\n")
    repo4.write("src/c/x.py", "c1\nC2 from main\nc3\n")
    repo4.commit_all("main: c's file")
    code, data, err = merge(repo4)
    assert code == 4 and "did not land" in err
    got = dict(outcomes(data))
    assert got["a"] == "landed" and got["c"] == "ejected" and got["d"] == "skipped"
    c = next(r for r in data["results"] if r["stream"] == "c")
    assert c["files"] == ["src/c/x.py"] and "conflicts with main" in c["reason"]
    assert repo4.worktree("c").is_dir() and repo4.worktree("d").is_dir()


def test_undo_restores_the_base_and_the_branch(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    before = repo4.git("rev-parse", "main").strip()
    assert merge(repo4, "a")[0] == 0
    res = run_cli(["merge", "--undo"], repo4.root)
    assert res.code == 0, res.err
    assert "undid the landing of a" in res.out
    assert repo4.git("rev-parse", "main").strip() == before
    assert repo4.git("show", "streams/a:src/a/x.py") == "a2\n"
    assert (repo4.root / "src" / "a" / "x.py").read_text() == "a\n"
    again = run_cli(["merge", "--undo"], repo4.root)
    assert again.code == 1 and "nothing to undo" in again.err


def test_undo_refuses_when_the_base_moved_since(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    assert merge(repo4, "a")[0] == 0
    repo4.write("README.md", "later\n")
    repo4.commit_all("main moves on")
    tip = repo4.git("rev-parse", "main").strip()
    res = run_cli(["merge", "--undo"], repo4.root)
    assert res.code == 1 and "git revert" in res.err
    assert repo4.git("rev-parse", "main").strip() == tip


def test_a_commit_to_the_base_during_a_merge_is_never_overwritten(repo4: Repo, tmp_path: Path) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    flag = tmp_path / "committed-once"
    sneak = (
        f"[ -e {flag} ] || {{ touch {flag}; cd {repo4.root} && echo concurrent > NEW.md && "
        "git add NEW.md && git commit -q -m concurrent; }"
    )
    code, _, err = merge(repo4, "a", "--check", sneak)
    assert code == 0, err
    assert main_log(repo4)[:2] == ["a: land stream a", "concurrent"]
    assert repo4.git("show", "main:NEW.md") == "concurrent\n"


def test_a_failing_check_ejects_with_the_log_tail(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    before = repo4.git("rev-parse", "main").strip()
    code, data, _ = merge(repo4, "a", "--check", "echo 3 failed, 9 passed; exit 1")
    assert code == 4
    a = data["results"][0]
    assert a["outcome"] == "ejected" and "3 failed, 9 passed" in a["reason"] and Path(a["check_log"]).is_file()
    assert repo4.git("rev-parse", "main").strip() == before


def test_dry_run_changes_nothing(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    # (the candidate's objects are written, unreachable; the queue's lock file stays, like sync's)
    ignore = ["repo/.git/objects", "repo/.git/streams/sync.flock"]
    before = disk_snapshot(repo4.root.parent, ignore=ignore)
    refs = repo4.git("for-each-ref")
    code, data, _ = merge(repo4, "--dry-run")
    assert code == 0 and ("a", "would land") in outcomes(data)
    assert repo4.git("for-each-ref") == refs
    assert disk_snapshot(repo4.root.parent, ignore=ignore) == before


def test_a_stream_past_the_hooks_is_ejected_by_verify(repo4: Repo) -> None:
    wt = repo4.worktree("a")
    repo4.write("src/b/x.py", "not a's\n", cwd=wt)
    repo4.git("add", "-A", cwd=wt)
    repo4.git("-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "sneak", cwd=wt)
    code, data, _ = merge(repo4, "a")
    assert code == 4
    a = data["results"][0]
    assert a["outcome"] == "ejected" and a["reason"].startswith("verify") and a["files"] == ["src/b/x.py"]


def test_a_dirty_stream_is_not_landed(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    (repo4.worktree("a") / "src" / "a" / "x.py").write_text("uncommitted\n")
    code, data, _ = merge(repo4, "a")
    assert code == 4 and "uncommitted" in data["results"][0]["reason"]


# --- with a remote ---------------------------------------------------------------------------------------


@pytest.fixture
def remote4(tmp_path: Path) -> tuple[Repo, Path]:
    repo = make_repo(tmp_path, files=FILES, config=CONFIG.replace("base: main\n", "base: main\nremote: origin\n"))
    bare = tmp_path / "remote.git"
    repo.git("init", "-q", "--bare", "-b", "main", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start"], repo.root).code == 0
    return repo, bare


def remote_main(bare: Path) -> str:
    return subprocess.run(["git", "rev-parse", "main"], cwd=bare, capture_output=True, text=True).stdout.strip()


def test_push_lands_on_the_remote_and_confirms_it(remote4: tuple[Repo, Path]) -> None:
    repo, bare = remote4
    work(repo, "a", "src/a/x.py", "a2\n")
    code, data, err = merge(repo, "a", "--push")
    assert code == 0, err
    assert remote_main(bare) == repo.git("rev-parse", "main").strip() == data["results"][0]["merged"]


def test_a_refused_push_leaves_local_and_remote_as_they_were(remote4: tuple[Repo, Path], tmp_path: Path) -> None:
    repo, bare = remote4
    work(repo, "a", "src/a/x.py", "a2\n")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(bare), str(other)], check=True)
    # While the candidate is checked, someone else pushes to the remote's main.
    sneak = f"cd {other} && echo theirs > THEIRS.md && git add THEIRS.md && git commit -q -m theirs && git push -q origin main"
    before = repo.git("rev-parse", "main").strip()
    code, data, _ = merge(repo, "a", "--push", "--check", sneak)
    assert code == 4
    a = data["results"][0]
    assert a["outcome"] == "rolled back" and "pushing main to origin failed" in a["reason"]
    assert repo.git("rev-parse", "main").strip() == before
    assert (
        remote_main(bare)
        == subprocess.run(["git", "rev-parse", "HEAD"], cwd=other, capture_output=True, text=True).stdout.strip()
    )
    assert (repo.root / "src" / "a" / "x.py").read_text() == "a\n"  # the main worktree moved back too
    assert repo.worktree("a").is_dir()


def test_push_refuses_when_the_local_base_and_the_remote_differ(remote4: tuple[Repo, Path]) -> None:
    repo, _ = remote4
    work(repo, "a", "src/a/x.py", "a2\n")
    repo.write("README.md", "unpushed\n")
    repo.commit_all("local only")
    res = run_cli(["merge", "a", "--push"], repo.root)
    assert res.code == 1 and "differ" in res.err


def test_status_shows_a_landed_stream_as_landed(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    _, data, _ = merge(repo4, "a")
    merged = data["results"][0]["merged"]
    snap = json.loads(run_cli(["status", "--json"], repo4.root).out)["data"]
    a = next(s for s in snap["streams"] if s["name"] == "a")
    assert (a["state"], a["landed"]) == ("landed", merged)
    row = next(ln for ln in run_cli(["status"], repo4.root).out.splitlines() if ln.startswith("a "))
    assert f"landed {merged[:8]}" in row


@pytest.mark.parametrize("strategy", ["squash", "rebase", "merge"])
def test_no_progress_file_or_progress_only_commit_reaches_the_base(repo4: Repo, strategy: str) -> None:
    wt = repo4.worktree("a")
    work(repo4, "a", "src/a/x.py", "a2\n")
    assert run_cli(["progress", "--completion", "50", "--current", "half"], wt).code == 0
    # A work commit that also changes the progress file (an agent's `git commit -a` after editing it).
    (wt / ".streams" / "stream-a.md").write_text((wt / ".streams" / "stream-a.md").read_text() + "\nnote\n")
    repo4.write("src/a/y.py", "y\n", cwd=wt)
    repo4.git("add", "-A", cwd=wt)
    repo4.git("commit", "-q", "-m", "a: y and a note", cwd=wt)
    before = repo4.git("rev-parse", "main").strip()
    code, data, err = merge(repo4, "a", "--strategy", strategy)
    assert code == 0, err
    no_bookkeeping_on(repo4)
    subjects = repo4.git("log", "--format=%s", f"{before}..main").splitlines()
    assert not [s for s in subjects if "progress" in s.lower()], subjects
    assert repo4.git("show", "main:src/a/y.py") == "y\n" and repo4.git("show", "main:src/a/x.py") == "a2\n"
    if strategy == "rebase":
        assert subjects == ["a: y and a note", "a: src/a/x.py"]
        assert repo4.git("log", "-1", "--format=%an", "main") == repo4.git(
            "log", "-1", "--format=%an", data["results"][0]["landed_ref"]
        )
    elif strategy == "merge":
        assert len(repo4.git("log", "-1", "--format=%P", "main").split()) == 2
        assert subjects[0] == "a: land stream a" and set(subjects[1:]) == {"a: y and a note", "a: src/a/x.py"}
    else:
        assert subjects == ["a: land stream a"]


# --- a conflict resolved by a human ----------------------------------------------------------------------


def conflicted(repo4: Repo) -> Path:
    work(repo4, "c", "src/c/x.py", "c1\nC2 from c\nc3\n")
    repo4.write("src/c/x.py", "c1\nC2 from main\nc3\n")
    repo4.commit_all("main: c's file")
    code, data, _ = merge(repo4, "c")
    c = data["results"][0]
    assert code == 4 and c["outcome"] == "ejected" and "streams merge --continue" in c["reason"]
    where = repo4.root / ".git" / "streams" / "integration"
    assert "<<<<<<<" in (where / "src" / "c" / "x.py").read_text()
    return where


def test_a_conflict_resolved_in_the_integration_worktree_lands_with_continue(repo4: Repo) -> None:
    where = conflicted(repo4)
    early = run_cli(["merge", "--continue"], repo4.root)
    assert early.code == 1 and "still unmerged" in early.err
    (where / "src" / "c" / "x.py").write_text("c1\nC2 from both\nc3\n")
    subprocess.run(["git", "add", "src/c/x.py"], cwd=where, check=True)
    code, data, err = merge(repo4, "--continue")
    assert code == 0, err
    assert data["results"][0]["outcome"] == "landed"
    assert repo4.git("show", "main:src/c/x.py") == "c1\nC2 from both\nc3\n"
    no_bookkeeping_on(repo4)
    again = run_cli(["merge", "--continue"], repo4.root)
    assert again.code == 1 and "no merge conflict is waiting" in again.err


def test_continue_refuses_markers_and_out_of_scope_edits(repo4: Repo) -> None:
    where = conflicted(repo4)
    subprocess.run(["git", "add", "src/c/x.py"], cwd=where, check=True)  # markers and all
    res = run_cli(["merge", "--continue"], repo4.root)
    assert res.code == 4 and "conflict markers" in res.err
    (where / "src" / "c" / "x.py").write_text("c1\nboth\nc3\n")
    (where / "README.md").write_text("sneaked in while resolving\n")
    subprocess.run(["git", "add", "src/c/x.py", "README.md"], cwd=where, check=True)
    res = run_cli(["merge", "--continue"], repo4.root)
    assert res.code == 5 and "README.md" in res.err


def test_abort_drops_the_resolution_and_leaves_the_stream_alone(repo4: Repo) -> None:
    where = conflicted(repo4)
    tip = repo4.git("rev-parse", "streams/c").strip()
    before = repo4.git("rev-parse", "main").strip()
    res = run_cli(["merge", "--abort"], repo4.root)
    assert res.code == 0 and "dropped the resolution of c's conflict" in res.out
    assert "<<<<<<<" not in (where / "src" / "c" / "x.py").read_text()
    assert repo4.git("rev-parse", "streams/c").strip() == tip and repo4.git("rev-parse", "main").strip() == before


def test_a_dependency_landed_with_keep_lets_its_dependent_land(repo4: Repo) -> None:
    work(repo4, "a", "src/a/x.py", "a2\n")
    work(repo4, "a", "src/a/y.py", "y\n")  # two commits: on main only as one squashed patch
    work(repo4, "b", "src/b/x.py", "b2\n")
    code, data, err = merge(repo4, "--keep")
    assert code == 0, err
    assert ("a", "landed") in outcomes(data) and ("b", "landed") in outcomes(data), outcomes(data)
    assert repo4.worktree("a").is_dir()  # kept, and its branch's commits are on main only squashed
