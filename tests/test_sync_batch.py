"""A sync pass that rebases many streams does the shared work once: every stream's replay made in
one go before the fences (``git.replay_many``), the upstream's added paths asked once, git's list
of ignored files asked only when an added path is occupied; and it still never rebases over a
commit that was landing as its fence went up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from streams import git as g
from streams.state import read_inflight
from streams.workspace import discover
from tests.conftest import Repo, git, make_repo, run_cli, run_streams
from tests.test_sync import advance_main, contains, outcomes, start, tip


def stream_commit(repo: Repo, name: str, rel: str, text: str) -> str:
    wt = repo.worktree(name)
    repo.write(rel, text, cwd=wt)
    return repo.commit_all(f"{name}: {rel}", cwd=wt)


# --- replay_many is replay, for many tips at once ------------------------------------------------------


def test_replay_many_makes_what_replay_makes_for_each_tip(repo: Repo) -> None:
    start(repo)
    base = git(repo.root, "rev-parse", "main").strip()
    stream_commit(repo, "api", "src/api/app.py", "print('api v2')\n")
    api = stream_commit(repo, "api", "src/api/more.py", "more\n")
    # docs edits its file's last line, main its first: a clean file merge.
    repo.write("docs/index.md", "# docs\n\nlast line\n")
    repo.commit_all("main: docs grow")
    assert run_cli(["sync", "docs"], repo.root).code == 0
    docs = stream_commit(repo, "docs", "docs/index.md", "# docs\n\nlast line, docs\n")
    # ui: a commit with an encoding header, which replay leaves to git rebase.
    stream_commit(repo, "ui", "src/ui/main.ts", "ui\n")
    repo.write("src/ui/enc.ts", "e\n", cwd=repo.worktree("ui"))
    git(repo.worktree("ui"), "add", "-A")
    git(repo.worktree("ui"), "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-m", "ui: latin-1")
    ui = git(repo.worktree("ui"), "rev-parse", "HEAD").strip()
    # a merge commit on a branch of its own
    git(repo.root, "branch", "-q", "side", base)
    git(repo.root, "branch", "-q", "merged", base)
    side_wt = repo.root.parent / "side"
    git(repo.root, "worktree", "add", "-q", str(side_wt), "side")
    repo.write("src/api/side.py", "side\n", cwd=side_wt)
    repo.commit_all("side", cwd=side_wt)
    git(side_wt, "switch", "-q", "merged")
    repo.write("src/api/merged.py", "m\n", cwd=side_wt)
    repo.commit_all("merged", cwd=side_wt)
    git(side_wt, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = git(side_wt, "rev-parse", "HEAD").strip()
    onto = advance_main(repo, "docs/index.md", "# docs, updated\n\nlast line\n")

    tips = [api, docs, ui, merge, base, api]
    many = g.replay_many(repo.root, tips, onto)
    assert set(many) == set(tips)
    for t in dict.fromkeys(tips):
        assert many[t].new == g.replay(repo.root, t, onto), t
    api_new = many[api].new
    assert api_new is not None and contains(repo, onto, api_new)
    assert many[docs].new is not None  # merged with main's edit of the file
    assert git(repo.root, "show", f"{many[docs].new}:docs/index.md") == "# docs, updated\n\nlast line, docs\n"
    assert many[ui].new is None and many[ui].fork is not None  # a plain line, but a header git must keep
    assert many[merge].new is None and many[merge].fork is None  # not a plain line of commits
    assert many[base].new == onto  # nothing of its own: the branch catches up
    for t in (api, docs, ui, base):
        assert many[t].fork == git(repo.root, "merge-base", t, onto).strip(), t


# --- the fence waits for a commit that was landing ---------------------------------------------------


def test_a_commit_landing_as_the_fence_goes_up_is_waited_for_and_rebased(repo: Repo) -> None:
    """An agent's commit whose hooks passed just before sync's fence went up still holds the
    branch's ref lock: sync waits for it to land, reads the branch behind it and rebases that,
    rather than reading the old tip and failing its compare-and-swap."""
    start(repo, "api")
    wt = repo.worktree("api")
    old = tip(repo, "api")
    repo.write("src/api/landing.py", "landing\n", cwd=wt)  # the commit's file, on disk already
    index = {**os.environ, "GIT_INDEX_FILE": str(repo.root.parent / "landing.index")}
    subprocess.run(["git", "read-tree", old], cwd=wt, env=index, check=True)
    subprocess.run(["git", "add", "src/api/landing.py"], cwd=wt, env=index, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=wt, env=index, check=True, capture_output=True, text=True)
    landing = git(wt, "commit-tree", tree.stdout.strip(), "-p", old, "-m", "api: landing").strip()
    onto = advance_main(repo)
    ref_file = repo.root / ".git/refs/heads/streams/api"
    lock = ref_file.with_name("api.lock")
    lock.write_text(f"{landing}\n")  # the commit's ref transaction, its hooks passed
    fence = Path(git(wt, "rev-parse", "--absolute-git-dir").strip()) / "streams-fence"
    sync = subprocess.Popen(
        [sys.executable, "-m", "streams", "sync", "--json", "api"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    while not fence.exists():
        assert sync.poll() is None and time.monotonic() < deadline, sync.communicate()
        time.sleep(0.005)
    time.sleep(0.2)  # sync is behind its fence now, waiting
    git(wt, "read-tree", landing)  # the commit lands: its index, then its branch
    os.replace(lock, ref_file)
    out, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, err
    assert outcomes(out) == {"api": "rebased"}, out
    new = tip(repo, "api")
    assert contains(repo, onto, new) and git(repo.root, "show", f"{new}:src/api/landing.py") == "landing\n"
    assert git(wt, "status", "--porcelain") == ""


# --- ignored files in the way ----------------------------------------------------------------------------


IGNORING = {
    "src/api/app.py": "print('api')\n",
    "docs/index.md": "# docs\n",
    ".gitignore": "build/\n",
}
TWO = """\
version: 1
base: main
streams:
  api:
    owns: [src/api/**]
  docs:
    owns: [docs/**]
"""


def test_an_ignored_directory_is_in_the_way_only_of_a_file_it_holds(tmp_path: Path) -> None:
    """The upstream starts tracking build/out/x.o and build/ is ignored: a worktree whose build/
    holds no x.o loses nothing and is rebased (its ignored files kept); one that holds its own x.o is
    left alone and told why."""
    repo = make_repo(tmp_path, files=IGNORING, config=TWO)
    assert run_cli(["start"], repo.root).code == 0
    api, docs = repo.worktree("api"), repo.worktree("docs")
    repo.write("build/keep.o", "api's own build\n", cwd=api)
    repo.write("build/out/x.o", "docs' own x.o\n", cwd=docs)
    repo.write("build/out/x.o", "tracked now\n")
    git(repo.root, "add", "-f", "build/out/x.o")
    onto = repo.commit_all("main tracks build/out/x.o")

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    report = json.loads(r.out)["data"]["report"]
    by_name = {s["name"]: s for s in report["streams"]}
    assert by_name["api"]["outcome"] == "rebased" and contains(repo, onto, tip(repo, "api"))
    assert (api / "build/keep.o").read_text() == "api's own build\n"
    assert (api / "build/out/x.o").read_text() == "tracked now\n"
    assert by_name["docs"]["outcome"] == "dirty" and by_name["docs"]["files"] == ["build/out/x.o"]
    assert "ignored file" in by_name["docs"]["detail"]
    assert (docs / "build/out/x.o").read_text() == "docs' own x.o\n"


# --- how many git processes a stream costs ----------------------------------------------------------------


def many_streams(tmp_path: Path, n: int) -> Repo:
    """``n`` started streams with a commit each, synced once; then main moves."""
    config = "version: 1\nbase: main\nstreams:\n" + "".join(f"  s{i}:\n    owns: [d{i}/**]\n" for i in range(n))
    repo = make_repo(tmp_path, files={f"d{i}/f.txt": f"{i}\n" for i in range(n)}, config=config)
    assert run_cli(["start"], repo.root).code == 0
    for i in range(n):
        stream_commit(repo, f"s{i}", f"d{i}/work.txt", "work\n")
    advance_main(repo)
    assert run_cli(["sync"], repo.root).code == 0
    advance_main(repo, "README.md", "# again\n")
    return repo


def git_processes_of_sync(repo: Repo, trace: Path, *names: str) -> int:
    """Git processes ``streams sync`` itself starts (not the ones git or the hooks start)."""
    r = run_streams(["sync", *names], repo.root, env={"GIT_TRACE2_EVENT": str(trace)})
    assert r.code == 0, r.err
    started = [json.loads(line) for line in trace.read_text().splitlines()]
    trace.unlink()
    return sum(1 for e in started if e["event"] == "start" and "/" not in e["sid"])


def test_each_stream_rebased_costs_a_handful_of_git_processes(tmp_path: Path) -> None:
    """Behind its fence a stream costs three: its uncommitted changes (`git status`), the branch
    moved (`update-ref`), the worktree brought along (`read-tree`); HEAD and tip are read from
    git's files. The rest is shared by the pass. (Before, ~21 per stream: two `git status`, a
    re-read and a replay of its own each.)"""
    counts = []
    for n in (2, 6):
        (tmp_path / str(n)).mkdir()
        repo = many_streams(tmp_path / str(n), n)
        counts.append(git_processes_of_sync(repo, tmp_path / f"{n}.json"))
        main = git(repo.root, "rev-parse", "main").strip()
        assert all(contains(repo, main, tip(repo, f"s{i}")) for i in range(n))
    per_stream = (counts[1] - counts[0]) / 4
    assert per_stream <= 3, counts


def test_a_dirty_worktree_is_found_behind_the_fence_and_left_as_it_was(repo: Repo) -> None:
    """Uncommitted changes are asked once, behind the fence: the stream is skipped, its fence
    lowered, its in-flight record gone, its files and branch as they were."""
    start(repo)
    wt = repo.worktree("docs")
    docs_tip = tip(repo, "docs")
    repo.write("docs/index.md", "# docs, being edited\n", cwd=wt)
    advance_main(repo)
    before = repo.snapshot()["files"]
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    assert outcomes(r.out) == {"api": "rebased", "ui": "rebased", "docs": "dirty"}
    assert tip(repo, "docs") == docs_tip and (wt / "docs/index.md").read_text() == "# docs, being edited\n"
    assert not (Path(git(wt, "rev-parse", "--absolute-git-dir").strip()) / "streams-fence").exists()
    assert read_inflight(discover(repo.root)) == {}
    after = repo.snapshot()["files"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert {k: v for k, v in after.items() if "repo.streams/docs/" in k} == {
        k: v for k, v in before.items() if "repo.streams/docs/" in k
    }


def test_head_and_tip_says_what_symbolic_head_and_resolve_commit_say(repo: Repo) -> None:
    """Read from git's files (a loose ref, a packed one) or asked of git (detached, another
    branch, no such ref): the same answers either way."""
    start(repo, "api")
    wt = repo.worktree("api")
    gd = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    common = repo.root / ".git"

    def both(ref: str) -> None:
        expected = (g.symbolic_head(wt), g.resolve_commit(wt, ref))
        assert g.head_and_tip(wt, ref) == expected, ref
        assert g.head_and_tip(wt, ref, git_dir=gd, common_dir=common) == expected, ref

    both("refs/heads/streams/api")  # loose
    git(repo.root, "pack-refs", "--all")
    assert not (common / "refs/heads/streams/api").exists()
    both("refs/heads/streams/api")  # packed
    both("refs/heads/main")  # HEAD is on another branch
    both("refs/heads/streams/nope")
    git(wt, "switch", "-q", "--detach")
    both("refs/heads/streams/api")
