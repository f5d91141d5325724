"""`kill -9` of `streams sync` at random points while an agent commits in its stream worktree.

The agent is a real process: it appends a numbered line to a file it owns, commits, and retries a
commit the fence refuses, every ~50 ms, for the whole test. Meanwhile main moves and `streams sync`
starts again and again and is killed: half the time after a random delay, half the time a random
moment after its fence went up in the agent's worktree (so the kill lands while sync works there);
every third kill takes the whole process group, git children included. After each kill:

- nothing lost: every line the agent committed is on its branch, or in a ``refs/streams/saved/*``
  ref that a sync named;
- ``git fsck`` is clean (run after that next sync, the agent paused between two commits);
- the fence lasts at most until the next sync: after one complete ``streams sync`` no fence file
  is left in any stream worktree, nothing is mid-rebase, and the agent commits again.

``STREAMS_SYNC_KILLS=N`` asks for N landed kills (default 20; a soak: 200), ``STREAMS_FAULT_SEED``
replays a seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.git import replay, stale_lock_files
from streams.kernel import fence as kfence
from streams.kernel.paths import MOVE_LOCK_TAG
from streams.kernel.procs import group_members
from streams.state import begin_rebase
from streams.workspace import discover
from tests.conftest import Repo, git, run_cli
from tests.test_sync import advance_main

KILLS = int(os.environ.get("STREAMS_SYNC_KILLS", "20"))  # kills that land while sync still runs
SEED = int(os.environ.get("STREAMS_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)
STREAMS = ("api", "docs")

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

AGENT = """\
import os, subprocess, sys, time
wt, log, stop, pause = sys.argv[1:5]
path = os.path.join(wt, "src/api/agent.txt")
i = 0
deadline = time.monotonic() + 60
while not os.path.exists(stop):
    while os.path.exists(pause):  # the test runs git fsck: no commit meanwhile
        open(pause + ".ack", "w").close()
        time.sleep(0.005)
    with open(path, "a") as fh:
        fh.write(f"line {i}\\n")
    while True:
        subprocess.run(["git", "add", "src/api/agent.txt"], cwd=wt, capture_output=True)
        c = subprocess.run(["git", "commit", "-q", "-m", f"agent {i}"], cwd=wt, capture_output=True, text=True)
        if c.returncode == 0:
            deadline = time.monotonic() + 60
            break
        if "nothing to commit" in c.stdout + c.stderr or "nothing added" in c.stdout + c.stderr:
            sys.exit(f"line {i} vanished from the worktree: {c.stdout} {c.stderr}")
        with open(log + ".refused", "w") as fh:
            fh.write(c.stdout + c.stderr)
        if time.monotonic() > deadline:
            sys.exit(f"commit {i} refused for 60 s: {c.stderr}")
        time.sleep(0.02)
    with open(log, "a") as fh:
        fh.write(f"{i}\\n")
    i += 1
    time.sleep(0.05)
"""


def git_dir_of(wt: Path) -> Path:
    return Path(git(wt, "rev-parse", "--absolute-git-dir").strip())


def fsck_clean(root: Path, note: str) -> None:
    """``git fsck`` finds nothing (run while the agent is paused: fsck lists the objects first and
    reads the reflogs after, so a commit made in between looks missing; and once no ``git gc
    --auto`` runs: every replay writes a pack, and the gc a later commit starts in the background
    when they pile up moves loose objects into a pack under fsck's feet)."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed check
    while (root / ".git/gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    res = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), (note, res.stdout + res.stderr)


class Agent:
    """The agent process and what it says it committed."""

    def __init__(self, repo: Repo, tmp: Path) -> None:
        self.log, self.stop, self.pause = tmp / "committed.log", tmp / "stop", tmp / "pause"
        script = tmp / "agent.py"
        script.write_text(AGENT)
        argv = [sys.executable, str(script), str(repo.worktree("api")), str(self.log), str(self.stop), str(self.pause)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def committed(self) -> int:
        """How many lines the agent has committed (lines 0 … n-1)."""
        try:
            return len(self.log.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def commits_again(self, note: str, timeout: float = 30) -> None:
        before = self.committed()
        deadline = time.monotonic() + timeout  # a guard against a hang, not a speed check
        while self.committed() == before:
            assert self.proc.poll() is None, (note, self.proc.communicate())
            if time.monotonic() > deadline:
                refused = self.log.with_name("committed.log.refused")
                said = refused.read_text() if refused.exists() else ""
                raise AssertionError(f"{note}: the agent has not committed for {timeout:.0f} s; git said: {said}")
            time.sleep(0.01)

    @contextlib.contextmanager
    def paused(self, note: str) -> Iterator[None]:
        """The agent waits between two commits meanwhile."""
        ack = self.pause.with_name("pause.ack")
        self.pause.write_text("")
        try:
            deadline = time.monotonic() + 30  # a guard against a hang, not a speed check
            while not ack.exists():
                assert self.proc.poll() is None, (note, self.proc.communicate())
                assert time.monotonic() < deadline, (note, "the agent never paused")
                time.sleep(0.005)
            yield
        finally:
            self.pause.unlink()
            ack.unlink(missing_ok=True)

    def finish(self) -> None:
        self.stop.write_text("")
        _out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err


def lines_kept(repo: Repo, count: int, named: set[str], note: str) -> None:
    """Lines 0 … count-1 are on the agent's branch, or in a saved ref a sync named."""
    want = [f"line {i}" for i in range(count)]
    on_branch = git(repo.root, "show", "streams/api:src/api/agent.txt").splitlines()
    assert on_branch == [f"line {i}" for i in range(len(on_branch))], (note, "the branch's file is not in order")
    missing = set(want) - set(on_branch)
    for ref in sorted(named):
        missing -= set(git(repo.root, "show", f"{ref}:src/api/agent.txt", check=False).splitlines())
    assert not missing, (note, f"lost: {sorted(missing, key=lambda s: int(s.split()[1]))}")


def help_with_stale_locks(repo: Repo, report: dict[str, Any], text: str, note: str) -> int:
    """Only a whole-group kill, of git in the middle of a ref update, fails the next sync: it names
    the lock files git left, as test_faults' human expects; deleting them, the sync after succeeds."""
    for s in report["streams"]:
        if s["outcome"] == "failed":
            locks = stale_lock_files(repo.worktree(s["name"]), f"refs/heads/streams/{s['name']}")
            assert locks and all(str(lock) in text for lock in locks), note
            for lock in locks:
                lock.unlink()
    r = run_cli(["sync"], repo.root)
    assert r.code == 0, (note, r.err)
    return 1


def kill_one(repo: Repo, rng: random.Random, span: float, *, at_fence: bool, whole_group: bool) -> tuple[bool, bool]:
    """Start `streams sync`, SIGKILL it (after a random delay, or a random moment after its fence
    went up in the agent's worktree), and wait until its orphaned git children are done. Returns
    whether the kill landed (sync still running) and whether it landed behind the fence."""
    fence = git_dir_of(repo.worktree("api")) / "streams-fence"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "sync"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if at_fence:
        deadline = time.monotonic() + 4 * span
        while not fence.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.04))  # a replay behind the fence takes ~0.05-0.2 s here
    else:
        time.sleep(rng.uniform(0, span))
    landed = proc.poll() is None
    fenced = landed and at_fence and fence.exists()
    if landed:
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    while group_members(proc.pid):
        assert time.monotonic() < deadline, "leftover processes never finished"
        time.sleep(0.005)
    return landed, fenced


@pytest.mark.parametrize("how", ["replay", "rebase"])
def test_kill_9_sync_while_an_agent_commits(repo: Repo, tmp_path: Path, how: str) -> None:
    """``replay``: sync replays the stream's commits and moves the branch (the usual case);
    ``rebase``: a commit replay leaves to git (an ``encoding`` header) makes every sync run
    ``git rebase`` in the agent's worktree."""
    assert run_cli(["start", *STREAMS], repo.root).code == 0
    if how == "rebase":
        wt = repo.worktree("api")
        repo.write("src/api/latin1.txt", "caf\xe9\n", cwd=wt)
        git(wt, "add", "src/api/latin1.txt")
        git(wt, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-m", "api: latin-1")
    rng = random.Random(SEED)
    agent = Agent(repo, tmp_path)
    named: set[str] = set()  # saved refs the syncs named
    landed = attempts = at_fence = cleaned = helped = 0
    try:
        agent.commits_again("the agent starts")
        t0 = time.monotonic()
        first = run_cli(["sync"], repo.root)
        assert first.code == 0, first.err
        span = time.monotonic() - t0 + 0.3  # a python start-up: run_cli skips it
        while (landed < KILLS or at_fence < KILLS // 5) and attempts < 8 * KILLS:  # a loaded machine lands fewer
            note = f"seed {SEED} attempt {attempts}"
            repo.write(f"notes/run{attempts}.md", f"run {attempts}\n")
            repo.commit_all(f"main: run {attempts}")
            fenced = attempts % 2 == 1
            hit, behind = kill_one(repo, rng, span, at_fence=fenced, whole_group=attempts % 3 == 2)
            landed += hit
            at_fence += behind
            attempts += 1
            lines_kept(repo, agent.committed(), named, note)
            # The next complete sync leaves no fence behind, nothing mid-rebase; the agent commits.
            r = run_cli(["sync", "--json"], repo.root)
            named |= {w.strip(".,;:()'\"`") for w in (r.out + r.err).split() if "refs/streams/saved/" in w}
            report = json.loads(r.out)["data"]["report"]
            said = [(x["name"], x["outcome"], x["detail"]) for x in report["streams"]]
            assert r.code in (0, 1), f"{note}: {said} {report['reconciled']}"
            cleaned += bool(report["reconciled"])
            for name in STREAMS:
                wt = repo.worktree(name)
                gd = git_dir_of(wt)
                left = (gd / "streams-fence").read_text() if (gd / "streams-fence").exists() else ""
                assert not left, f"{note}: {name} {left!r} {said} {report['reconciled']}"
                assert not (gd / "rebase-merge").exists() and not (gd / "rebase-apply").exists(), (note, name)
                assert git(wt, "symbolic-ref", "HEAD").strip() == f"refs/heads/streams/{name}", (note, name)
            if r.code != 0:  # a git killed mid-update left its lock files: sync names them, a human deletes them
                helped += help_with_stale_locks(repo, report, r.err, f"{note}: {said}")
            agent.commits_again(note)
            with agent.paused(note):
                fsck_clean(repo.root, note)
                lines_kept(repo, agent.committed(), named, note)
        agent.finish()
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
    assert landed >= KILLS, f"seed {SEED}: only {landed} of {attempts} kills landed while sync ran"
    assert at_fence >= KILLS // 5, f"seed {SEED}: only {at_fence} kills landed behind the fence"
    fsck_clean(repo.root, "at the end")
    lines_kept(repo, agent.committed(), named, "at the end")
    wt = repo.worktree("api")
    assert (wt / "src/api/agent.txt").read_text().splitlines() == [f"line {i}" for i in range(agent.committed())]
    assert git(wt, "status", "--porcelain") == ""
    print(
        f"seed {SEED}: {landed} kills landed in {attempts} runs ({at_fence} behind the fence); the next sync "
        f"cleaned up after {cleaned}, a human deleted stale locks {helped} times; the agent committed {agent.committed()} lines; saved refs named: {len(named)}"
    )


def test_a_stale_packed_refs_lock_is_named_not_waited_on_at_every_commit(repo: Repo) -> None:
    """A git killed while deleting a ref (a whole-group kill of sync) leaves ``packed-refs.lock``:
    every later ref deletion waits a second for it and gives up, so a `git rebase` takes a second
    per commit (seen: minutes, with the agent locked out meanwhile). Sync replays without deleting a
    ref, and names the lock instead of starting a `git rebase` behind it."""
    assert run_cli(["start", *STREAMS], repo.root).code == 0
    wt = repo.worktree("api")
    for i in range(3):  # commits replay leaves to git (an encoding header): `git rebase` makes them
        repo.write(f"src/api/latin{i}.txt", "caf\xe9\n", cwd=wt)
        git(wt, "add", "-A")
        git(wt, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-m", f"api: latin-1 {i}")
    api_tip = git(repo.root, "rev-parse", "streams/api").strip()
    repo.write("notes/one.md", "one\n")
    repo.commit_all("main: one")
    lock = repo.root / ".git/packed-refs.lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 3600, time.time() - 3600))

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 1, r
    streams = {s["name"]: s for s in json.loads(r.out)["data"]["report"]["streams"]}
    assert streams["docs"]["outcome"] == "rebased", streams["docs"]  # replayed: no ref deleted
    assert streams["api"]["outcome"] == "failed" and str(lock) in streams["api"]["detail"], streams["api"]
    assert git(repo.root, "rev-parse", "streams/api").strip() == api_tip
    assert git(repo.root, "for-each-ref", "refs/streams") == ""  # no scratch ref left behind
    assert not (git_dir_of(wt) / "streams-fence").exists()
    lock.unlink()  # the human, as the text says
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    assert git(repo.root, "merge-base", "--is-ancestor", "main", "streams/api") == ""


def test_the_ref_locks_a_sync_killed_while_moving_the_branch_left_are_removed(repo: Repo) -> None:
    """A whole-group kill while sync's `git update-ref` moves the branch leaves ``HEAD.lock`` (in the
    worktree's git dir: the update logs HEAD too) and ``<branch>.lock``; git never removes them, so
    every later commit of the agent failed. The next sync finds the dead sync's fence there and
    removes them: no git process running in that worktree can hold them."""
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tip = git(repo.root, "rev-parse", "streams/api").strip()
    kfence.write(gd, kfence.Fence("deadbeef", gone.pid, "", kfence.SYNC, "api", "2026-01-01T00:00:00Z"))
    locks = [gd / "HEAD.lock", repo.root / ".git/refs/heads/streams/api.lock"]
    for lock in locks:
        lock.write_text(f"{tip}\n")
    repo.write("src/api/one.py", "1\n", cwd=wt)
    git(wt, "add", "src/api/one.py")
    refused = subprocess.run(["git", "commit", "-q", "-m", "agent"], cwd=wt, capture_output=True, text=True)
    assert refused.returncode != 0 and "HEAD.lock" in refused.stderr, refused

    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 0, r.err
    [note] = json.loads(r.out)["data"]["report"]["reconciled"]
    assert note["what"] == "fence lifted" and all(str(lock) in note["detail"] for lock in locks), note
    assert not any(lock.exists() for lock in locks) and not (gd / "streams-fence").exists()
    git(wt, "commit", "-q", "-m", "agent")  # the agent commits again
    fsck_clean(repo.root, "after")


def test_a_lock_a_running_git_may_hold_is_left_alone(repo: Repo) -> None:
    """The same leftovers, but a git process that started before the lock was made runs in the
    worktree (it may be the lock's holder): nothing is removed."""
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    running = subprocess.Popen(["git", "cat-file", "--batch"], cwd=wt, stdin=subprocess.PIPE)
    try:
        time.sleep(0.2)
        kfence.write(gd, kfence.Fence("deadbeef", 2**22 + 7, "", kfence.SYNC, "api", "2026-01-01T00:00:00Z"))
        lock = gd / "HEAD.lock"
        lock.write_text("")
        r = run_cli(["sync", "--json", "api"], repo.root)
        assert r.code == 0, r.err
        assert lock.exists()
        lock.unlink()
    finally:
        running.kill()
        running.wait()


def test_a_rebase_a_killed_sync_left_before_any_conflict_is_rolled_back_by_the_next(repo: Repo) -> None:
    """Killed while `git rebase` ran in the worktree (only a conflict-bound rebase runs there) and
    before it reached the conflict: the next sync rolls it back and rebases afresh, rather than
    leaving the stream halted (and its fence up) for a human with nothing to resolve."""
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    for i in range(2):
        repo.write(f"src/api/m{i}.py", f"{i}\n", cwd=wt)
        repo.commit_all(f"api {i}", cwd=wt)
    api_tip = git(repo.root, "rev-parse", "streams/api").strip()
    repo.write("README.md", "# demo, moved on\n")
    main_tip = repo.commit_all("main: readme")
    # What the kill left: the in-flight record, the dead sync's fence, a rebase stopped between picks.
    ws = discover(repo.root)
    begin_rebase(ws, "api", api_tip, main_tip, wt)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    kfence.write(gd, kfence.Fence("deadbeef", gone.pid, "", kfence.SYNC, "api", "2026-01-01T00:00:00Z"))
    env = {**os.environ, "STREAMS_FENCE": "deadbeef", "GIT_SEQUENCE_EDITOR": "sed -i '2i break'"}
    subprocess.run(["git", "rebase", "-i", main_tip], cwd=wt, env=env, capture_output=True, check=True)
    assert (gd / "rebase-merge").is_dir() and git(wt, "ls-files", "-u") == ""
    repo.write("src/api/m0.py", "the agent's edit meanwhile\n", cwd=wt)

    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 0, r.err
    report = json.loads(r.out)["data"]["report"]
    notes = {n["what"]: n["detail"] for n in report["reconciled"]}
    assert "rolled back" in notes and "refs/streams/saved/api/" in notes["rolled back"], notes
    assert f"is at {api_tip[:12]}" in notes["rolled back"]
    # Then rebased afresh in the same pass: no halt, no fence, nothing mid-rebase.
    assert report["halts"] == [] and report["streams"][0]["outcome"] == "rebased", report["streams"]
    assert not (gd / "rebase-merge").exists() and not (gd / "streams-fence").exists()
    assert git(wt, "symbolic-ref", "HEAD").strip() == "refs/heads/streams/api"
    assert git(repo.root, "merge-base", "--is-ancestor", main_tip, "streams/api") == ""
    assert git(repo.root, "log", "--format=%s", "-2", "streams/api") == "api 1\napi 0\n"
    saved = notes["rolled back"].split("saved first as ")[1].split()[0]
    assert git(repo.root, "show", f"{saved}:src/api/m0.py") == "the agent's edit meanwhile\n"


def test_a_private_rebase_worktree_a_killed_sync_left_is_removed_by_the_next(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    aside = repo.root / f".git/streams/aside/streams-rebase-{gone.pid}"
    git(repo.root, "worktree", "add", "-q", "--detach", str(aside), "main")
    assert str(aside) in git(repo.root, "worktree", "list")
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 0, r.err
    assert not aside.exists() and str(aside) not in git(repo.root, "worktree", "list")
    assert not list((repo.root / ".git/worktrees").glob("streams-rebase-*"))


def _left_behind_by_a_kill(repo: Repo, rel: str) -> tuple[Path, Path]:
    """What a sync killed between moving api's branch (main changed ``rel``) and bringing its
    worktree along leaves: the branch moved, the worktree not; its fence, its index lock, its record."""
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    old = git(repo.root, "rev-parse", "streams/api").strip()
    main_tip = advance_main(repo, rel, "# as main has it now\n")
    new = str(replay(repo.root, old, main_tip))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    kfence.write(gd, kfence.Fence("deadbeef", gone.pid, "", kfence.SYNC, "api", "2026-01-01T00:00:00Z", f"{old} {new}"))
    env = {**os.environ, "STREAMS_FENCE": "deadbeef"}
    subprocess.run(["git", "update-ref", "refs/heads/streams/api", new, old], cwd=wt, env=env, check=True)
    (gd / "index.lock").write_text(f"{MOVE_LOCK_TAG}{gone.pid}\n")
    begin_rebase(discover(repo.root), "api", old, main_tip, wt)
    return wt, gd


def test_a_file_the_killed_read_tree_wrote_does_not_keep_the_worktree_behind(repo: Repo) -> None:
    """Killed inside `git read-tree -m -u`: a file new upstream is already written, untracked. It is
    an exact copy of the committed file: removed, and the worktree brought along."""
    wt, gd = _left_behind_by_a_kill(repo, "notes/new.md")
    repo.write("notes/new.md", "# as main has it now\n", cwd=wt)
    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 0, r.err
    assert "was brought along" in json.loads(r.out)["data"]["report"]["reconciled"][0]["detail"]
    assert not (gd / "streams-fence").exists() and git(wt, "status", "--porcelain") == ""


def test_a_worktree_a_killed_sync_left_behind_its_branch_stays_fenced_until_brought_along(repo: Repo) -> None:
    """Killed after moving the branch and before bringing the worktree along: the next sync brings
    it along under the index lock the dead sync left. When it cannot (here the agent edited a file
    the upstream changed), the fence stays and the stream is reported, rather than lifting the fence
    over an index that still holds the old tree: the agent's next commit would have undone the
    upstream's changes."""
    wt, gd = _left_behind_by_a_kill(repo, "README.md")
    repo.write("README.md", "# the agent's edit\n", cwd=wt)  # a file the upstream changed too

    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 1, r
    report = json.loads(r.out)["data"]["report"]
    assert [n["what"] for n in report["reconciled"]] == ["left behind"], report["reconciled"]
    assert report["streams"][0]["outcome"] == "failed" and "still at the old tip" in report["streams"][0]["detail"]
    assert (gd / "streams-fence").exists() and not (gd / "index.lock").exists()
    repo.write("src/api/one.py", "1\n", cwd=wt)
    git(wt, "add", "src/api/one.py")
    refused = subprocess.run(["git", "commit", "-q", "-m", "agent"], cwd=wt, capture_output=True, text=True)
    assert refused.returncode != 0 and "sync in progress here" in refused.stderr, refused
    git(wt, "reset", "-q", "src/api/one.py")

    repo.write("README.md", "# demo\n", cwd=wt)  # the agent puts the file back
    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 0, r.err
    assert "was brought along" in json.loads(r.out)["data"]["report"]["reconciled"][0]["detail"]
    assert not (gd / "streams-fence").exists()
    assert (wt / "README.md").read_text() == "# as main has it now\n"
    git(wt, "add", "src/api/one.py")
    git(wt, "commit", "-q", "-m", "agent")
    assert git(wt, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == "src/api/one.py\n"
