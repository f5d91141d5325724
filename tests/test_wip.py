"""WIP snapshots (streams.wip): an attempt's uncommitted work saved as a commit under its own ref
through a temporary index, in a real started stream with its hooks installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streams import wip
from streams.kernel.paths import wip_ref
from tests.conftest import Repo, disk_snapshot, run_cli

ODD = "src/api/odd name é ü.py"


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start"], repo.root).code == 0
    return repo


def index_file(repo: Repo, wt: Path) -> Path:
    return Path(repo.git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=wt).strip())


def make_mess(repo: Repo, wt: Path) -> None:
    """Modified, staged, deleted, untracked, a name with spaces and accents, and an ignored file."""
    repo.write("src/api/.gitignore", "*.log\n", cwd=wt)
    repo.commit_all("ignore logs", cwd=wt)
    repo.write("src/api/app.py", "print('modified, unstaged')\n", cwd=wt)
    repo.write("src/api/staged.py", "staged = 1\n", cwd=wt)
    repo.git("add", "src/api/staged.py", cwd=wt)
    repo.git("rm", "-q", "tests/api/test_app.py", cwd=wt)
    repo.write("src/api/new/untracked.py", "untracked = 1\n", cwd=wt)
    repo.write(ODD, "odd = 1\n", cwd=wt)
    repo.write("src/api/debug.log", "ignored\n", cwd=wt)


def tree_files(repo: Repo, commit: str, into: Path) -> dict[str, bytes]:
    """Check out ``commit``'s tree into the directory ``into`` (a private index) and read it back."""
    into.mkdir()
    env_index = into.parent / f"{into.name}.index"
    subprocess.run(
        ["git", f"--work-tree={into}", "read-tree", commit],
        cwd=repo.root, env={**os.environ, "GIT_INDEX_FILE": str(env_index)}, check=True,
    )  # fmt: skip
    subprocess.run(
        ["git", f"--work-tree={into}", "checkout-index", "-a", "-f"],
        cwd=repo.root, env={**os.environ, "GIT_INDEX_FILE": str(env_index)}, check=True,
    )  # fmt: skip
    return {p.relative_to(into).as_posix(): p.read_bytes() for p in into.rglob("*") if p.is_file()}


def worktree_files(wt: Path) -> dict[str, bytes]:
    return {
        p.relative_to(wt).as_posix(): p.read_bytes()
        for p in wt.rglob("*")
        if p.is_file() and p.name != ".git" and not p.name.endswith(".log")
    }


def test_snapshot_saves_everything_and_changes_nothing(started: Repo, tmp_path: Path) -> None:
    wt = started.worktree("api")
    make_mess(started, wt)
    head = started.git("rev-parse", "HEAD", cwd=wt).strip()
    index_before = index_file(started, wt).read_bytes()
    status_before = started.git("status", "--porcelain", "-z", cwd=wt)
    disk_before = disk_snapshot(wt)
    refs_before = started.git("for-each-ref", "--format=%(refname) %(objectname)")

    snap = wip.snapshot(wt, wip_ref("api", "r1", 1), "wip: api attempt 1")

    assert snap is not None
    assert index_file(started, wt).read_bytes() == index_before  # the real index, byte for byte
    assert disk_snapshot(wt) == disk_before  # every file, byte for byte
    assert started.git("status", "--porcelain", "-z", cwd=wt) == status_before
    assert started.git("rev-parse", "HEAD", cwd=wt).strip() == head
    assert started.git("rev-parse", "refs/stash", check=False).strip() in ("", "refs/stash")  # no stash
    refs_after = started.git("for-each-ref", "--format=%(refname) %(objectname)")
    assert set(refs_after.splitlines()) - set(refs_before.splitlines()) == {f"{snap.ref} {snap.commit}"}
    assert snap.ref == "refs/streams/wip/api/r1/1"
    assert started.git("rev-parse", f"{snap.commit}^", cwd=wt).strip() == head
    assert set(snap.files) == {"src/api/app.py", "src/api/staged.py", "tests/api/test_app.py",
                               "src/api/new/untracked.py", ODD}  # fmt: skip
    saved = tree_files(started, snap.commit, tmp_path / "saved")
    assert saved == worktree_files(wt)  # the ignored debug.log stays out, everything else is in
    assert "tests/api/test_app.py" not in saved and saved[ODD] == b"odd = 1\n"


def test_nothing_to_save_is_none_and_no_ref(started: Repo) -> None:
    wt = started.worktree("api")
    refs_before = started.git("for-each-ref")
    assert wip.snapshot(wt, wip_ref("api", "r1", 1), "wip") is None  # clean
    started.write("src/api/.gitignore", "*.log\n", cwd=wt)
    started.commit_all("ignore logs", cwd=wt)
    refs_before = started.git("for-each-ref")
    started.write("src/api/debug.log", "ignored only\n", cwd=wt)
    assert wip.snapshot(wt, wip_ref("api", "r1", 1), "wip") is None  # an ignored file is not work
    assert started.git("for-each-ref") == refs_before


def test_the_ref_is_create_only(started: Repo) -> None:
    wt = started.worktree("api")
    started.write("src/api/app.py", "v2\n", cwd=wt)
    first = wip.snapshot(wt, wip_ref("api", "r1", 1), "wip")
    assert first is not None
    started.write("src/api/app.py", "v3\n", cwd=wt)
    with pytest.raises(wip.WipError) as err:
        wip.snapshot(wt, wip_ref("api", "r1", 1), "wip")
    assert err.value.code == "wip_exists"
    assert started.git("rev-parse", first.ref).strip() == first.commit


def test_snapshot_from_the_main_worktree_with_hooks_installed(started: Repo) -> None:
    started.write("README.md", "# changed on main\n")
    snap = wip.snapshot(started.root, "refs/streams/wip/main-check/r1/1", "wip")
    assert snap is not None and snap.files == ("README.md",)
    assert started.git("status", "--porcelain").strip() == "M README.md"


def test_discard_restores_head_after_the_snapshot_holds_everything(started: Repo, tmp_path: Path) -> None:
    wt = started.worktree("api")
    make_mess(started, wt)
    before = worktree_files(wt)
    snap = wip.snapshot(wt, wip_ref("api", "r1", 2), "wip")
    assert snap is not None
    wip.discard(wt, snap)
    assert started.git("status", "--porcelain", "-z", cwd=wt) == ""
    head_files = tree_files(started, started.git("rev-parse", "HEAD", cwd=wt).strip(), tmp_path / "head")
    assert worktree_files(wt) == head_files
    assert (wt / "src/api/debug.log").read_text() == "ignored\n"  # ignored files stay
    assert tree_files(started, snap.ref, tmp_path / "saved") == before  # nothing lost


def test_discard_refuses_when_a_file_changed_after_the_snapshot(started: Repo) -> None:
    wt = started.worktree("api")
    make_mess(started, wt)
    snap = wip.snapshot(wt, wip_ref("api", "r1", 3), "wip")
    assert snap is not None
    started.write("src/api/late.py", "written after the snapshot\n", cwd=wt)
    disk_before = disk_snapshot(wt)
    index_before = index_file(started, wt).read_bytes()
    with pytest.raises(wip.WipError) as err:
        wip.discard(wt, snap)
    assert "src/api/late.py" in err.value.message and err.value.code == "wip_changed"
    assert disk_snapshot(wt) == disk_before and index_file(started, wt).read_bytes() == index_before


def test_discard_refuses_when_head_moved(started: Repo) -> None:
    wt = started.worktree("api")
    started.write("src/api/app.py", "v2\n", cwd=wt)
    snap = wip.snapshot(wt, wip_ref("api", "r1", 4), "wip")
    assert snap is not None
    started.commit_all("committed after the snapshot", cwd=wt)
    with pytest.raises(wip.WipError, match="HEAD moved"):
        wip.discard(wt, snap)


AGENT = textwrap.dedent(
    """
    import subprocess, sys
    wt, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        with open(f"{wt}/src/api/loop.py", "w") as fh:
            fh.write(f"i = {i}\\n")
        adds = [["add", "src/api/loop.py"]] * 6  # many short index writes: each would hit a held index.lock
        for args in [*adds, ["commit", "-q", "-m", f"loop {i}"]]:
            p = subprocess.run(["git", *args], cwd=wt, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"FAIL {args[0]} {i}: {p.stderr.strip()}")
                sys.exit(1)
    print("OK")
    """
)


def test_an_agent_committing_meanwhile_never_sees_index_lock(started: Repo) -> None:
    wt = started.worktree("api")
    started.write("src/api/scratch.py", "uncommitted\n", cwd=wt)  # work the snapshots keep saving
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(wt), "25"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    taken = 0
    while agent.poll() is None:
        taken += 1
        wip.snapshot(wt, wip_ref("api", "loop", taken), f"wip {taken}")
    out = agent.communicate()[0]
    assert agent.returncode == 0 and "OK" in out and "index.lock" not in out, out
    assert taken >= 3  # the snapshots really overlapped the commits
    assert started.git("rev-list", "--count", "HEAD~25..HEAD", cwd=wt).strip() == "25"


def test_a_snapshot_needs_no_git_identity(started: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NAME", "EMAIL", "DATE"):
        monkeypatch.delenv(f"GIT_AUTHOR_{var}")
        monkeypatch.delenv(f"GIT_COMMITTER_{var}")
    started.git("config", "user.useConfigOnly", "true")  # no guessing from the host: git knows nobody
    wt = started.worktree("api")
    started.write("src/api/app.py", "v2\n", cwd=wt)
    assert started.git("commit", "-qam", "x", cwd=wt, check=False) == ""  # a plain commit fails
    assert started.git("rev-list", "--count", "HEAD", cwd=wt).strip() == "2"
    snap = wip.snapshot(wt, wip_ref("api", "r1", 1), "wip")
    assert snap is not None
    assert started.git("log", "-1", "--format=%an <%ae>", snap.commit).strip() == "streams <streams@localhost>"
