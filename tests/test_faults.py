"""Fault injection: `kill -9` of `streams sync` and `streams progress` at random moments.

After each kill: `git fsck` is clean, every stream tip from before is reachable from its branch or
its reflog, no progress file is half written, and the next `streams sync` either finishes or
reports exactly what is half done (and `--abort` gets the stream back).

Most kills hit only the streams process (its git child finishes on its own, as after a real
`kill -9 PID`); every fourth kills the whole process group, git included, to leave a rebase
half done.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.git import fetch_lock_files as fetch_locks
from streams.git import stale_lock_files as stale_locks
from streams.kernel.procs import group_members
from streams.progress import read_progress
from streams.state import read_state
from streams.workspace import discover
from tests.conftest import Repo, git, run_cli

RUNS = 20  # kills that land while the command runs
MAX_ATTEMPTS = 60
SEED = int(os.environ.get("STREAMS_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)
STREAMS = ("api", "ui", "docs")
OWNED = {"api": "src/api", "ui": "src/ui", "docs": "docs"}


def kill_at_random(argv: list[str], cwd: Path, rng: random.Random, *, whole_group: bool, max_delay: float) -> bool:
    """Start ``argv``, SIGKILL it after a random delay, wait until its leftovers are gone.

    Returns True when the kill landed (the process was still running).
    """
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(rng.uniform(0, max_delay))
    landed = proc.poll() is None
    if landed:
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed check
    while group_members(proc.pid):  # orphaned git children finish their work
        assert time.monotonic() < deadline, "leftover processes never finished"
        time.sleep(0.01)
    return landed


def timed_run(argv: list[str], cwd: Path) -> float:
    """How long one uncut run takes here and now: kills are spread over that span."""
    t0 = time.monotonic()
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
    return time.monotonic() - t0


def fsck_clean(root: Path) -> None:
    res = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    bad = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert not bad, bad


def reachable(repo: Repo, oid: str, ref: str) -> bool:
    branch = subprocess.run(["git", "merge-base", "--is-ancestor", oid, ref], cwd=repo.root, check=False)
    return branch.returncode == 0 or oid in repo.git("log", "-g", "--format=%H", ref)


def tips(repo: Repo) -> dict[str, str]:
    return {n: repo.git("rev-parse", f"refs/heads/streams/{n}").strip() for n in STREAMS}


def rebasing(wt: Path) -> bool:
    git_dir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    return (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists()


def check_after_kill(repo: Repo, before: dict[str, str]) -> None:
    fsck_clean(repo.root)
    for name, oid in before.items():
        assert reachable(repo, oid, f"refs/heads/streams/{name}"), f"{name}: {oid} lost"
    for name in STREAMS:
        read_progress(repo.worktree(name), name)  # raises when half written
    read_state(discover(repo.root))  # state.json is never torn


def detached(wt: Path) -> bool:
    return subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=wt, capture_output=True).returncode != 0


def recover(repo: Repo, bare: Path, seed_note: str) -> int:
    """The next sync finishes, or says exactly what is half done; acting on what it says (as a human
    would: delete the stale lock files it names, `streams sync --abort` a half-done rebase) gets every
    stream synced. Returns how many rounds of human help it took."""
    for rounds in range(5):
        r = run_cli(["sync", "--json"], repo.root)
        envelope = json.loads(r.out)
        if envelope["data"] is None:  # the pass never began: only a fetch killed mid-update stops it so
            assert r.code == 1 and envelope["error"]["code"] == "fetch_failed", (seed_note, envelope)
            locks = fetch_locks(repo.root / ".git", "origin")
            assert locks, (seed_note, "a fetch failure nobody can act on", r.err)
            for lock in locks:
                assert str(lock) in r.err, (seed_note, lock, r.err)
                lock.unlink()
            continue
        streams = envelope["data"]["report"]["streams"]
        if r.code == 0:
            outcomes = {s["name"]: s["outcome"] for s in streams}
            assert set(outcomes.values()) <= {"up to date", "rebased"}, (seed_note, outcomes)
            return rounds
        assert r.code in (1, 4), (seed_note, r.code, r.err)
        helped = False
        for s in streams:
            name, wt = s["name"], repo.worktree(s["name"])
            ref = f"refs/heads/streams/{name}"
            if s["outcome"] in ("halted", "failed"):
                for lock in stale_locks(wt, ref):
                    assert str(lock) in r.err + r.out, (seed_note, lock, r.err)
                    lock.unlink()
                    helped = True
            if s["outcome"] == "failed" and "move them away" in s["detail"]:  # files a killed git half wrote
                listed = s["detail"].split("would be overwritten by", 1)[1].split(":", 1)[1].split(" (untracked")[0]
                for rel in listed.split(","):
                    (wt / rel.strip()).unlink()
                    helped = True
            if s["outcome"] == "halted":
                assert rebasing(wt) or detached(wt), (seed_note, name, r.err)  # reported exactly: half done
                assert str(wt) in r.err and f"streams sync --abort {name}" in r.err, (seed_note, r.err)
                a = run_cli(["sync", "--abort", name], repo.root)
                if a.code == 0:
                    assert not rebasing(wt) and not detached(wt)
                    helped = True
                else:  # the abort names what stands in its way: stale locks, or files a killed git half wrote
                    assert "lock" in a.err or "move them away" in a.err, (seed_note, a.err)
                    if "move them away" in a.err:
                        listed = a.err.split("would be overwritten by", 1)[1].split(":", 1)[1].split(" (untracked")[0]
                        for rel in listed.split(","):
                            (wt / rel.strip()).unlink()
                            helped = True
            if s["push"] in ("rejected", "failed"):
                # git killed inside the remote's receive-pack leaves a ref lock there; git's message says so.
                for lock in (bare / "refs/heads/streams").glob("*.lock"):
                    assert "lock" in s["push_detail"], (seed_note, s)
                    lock.unlink()
                    helped = True
        assert helped, (seed_note, "a failure nobody can act on", r.err)
    raise AssertionError((seed_note, "still not synced after 5 rounds"))


@pytest.fixture
def busy_repo(remote_repo: tuple[Repo, Path]) -> Repo:
    repo, _bare = remote_repo
    text = (repo.root / "streams.yaml").read_text().replace("base: main\n", "base: main\nremote: origin\n")
    repo.write("streams.yaml", text)
    repo.commit_all("use origin")
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start"], repo.root).code == 0
    for name in STREAMS:
        wt = repo.worktree(name)
        for i in range(3):
            repo.write(f"{OWNED[name]}/work{i}.txt", f"{name} {i}\n", cwd=wt)
            repo.commit_all(f"{name} work {i}", cwd=wt)
    return repo


def test_kill_9_sync_at_random_points(busy_repo: Repo) -> None:
    repo = busy_repo
    bare = repo.root.parent / "remote.git"
    rng = random.Random(SEED)
    argv = [sys.executable, "-m", "streams", "sync"]

    def advance(run: int) -> None:
        repo.write(f"notes/run{run}.md", f"run {run}\n")
        repo.commit_all(f"main run {run}")
        repo.git("push", "-q", "origin", "main")
        if run % 3 == 0:  # something to push even without a rebase
            wt = repo.worktree("docs")
            repo.write(f"docs/run{run}.md", "x\n", cwd=wt)
            repo.commit_all(f"docs run {run}", cwd=wt)

    advance(-1)
    span = timed_run(argv, repo.root)
    landed = attempts = helped = 0
    while landed < RUNS and attempts < MAX_ATTEMPTS:
        note = f"seed {SEED} attempt {attempts}"
        advance(attempts)
        before = tips(repo)
        landed += kill_at_random(argv, repo.root, rng, whole_group=attempts % 4 == 3, max_delay=span)
        attempts += 1
        check_after_kill(repo, before)
        helped += recover(repo, bare, note)
        check_after_kill(repo, before)
    assert landed >= RUNS, f"seed {SEED}: only {landed} of {attempts} kills landed while sync ran"
    print(f"seed {SEED}: {landed} kills landed in {attempts} runs; {helped} needed a human's help")


def test_kill_9_progress_at_random_points(busy_repo: Repo) -> None:
    repo = busy_repo
    rng = random.Random(SEED + 1)
    wt = repo.worktree("api")
    repo.write("src/api/staged.py", "agent's staged work\n", cwd=wt)
    git(wt, "add", "src/api/staged.py")
    span = timed_run([sys.executable, "-m", "streams", "progress", "--next", "calibrate"], wt)
    landed = attempts = 0
    while landed < RUNS and attempts < MAX_ATTEMPTS:
        run = attempts
        attempts += 1
        note = f"seed {SEED} attempt {run}"
        before = tips(repo)
        argv = [sys.executable, "-m", "streams", "progress", "--done", f"task {run}", "--completion", str(run % 101)]
        landed += kill_at_random(argv, wt, rng, whole_group=False, max_delay=span)
        check_after_kill(repo, before)
        # The agent's staged work is still staged; nothing else is left in the worktree.
        assert git(wt, "show", ":src/api/staged.py") == "agent's staged work\n", note
        status = sorted(git(wt, "status", "--porcelain", "--untracked-files=all").splitlines())
        assert status in (["A  src/api/staged.py"], [" M .streams/stream-api.md", "A  src/api/staged.py"]), (
            note,
            status,
        )
        # The next sync finishes, or reports the stream dirty (a progress file written, not yet committed).
        r = run_cli(["sync", "--json", "api"], repo.root)
        assert r.code == 0, (note, r)
        api = json.loads(r.out)["data"]["report"]["streams"][0]
        assert api["outcome"] in ("up to date", "dirty"), (note, api)
        if api["outcome"] == "dirty":
            assert ".streams/stream-api.md" in api["files"] and "src/api/staged.py" in api["files"]
        # And the next progress update goes through, committing only its file.
        r = run_cli(["progress", "--current", f"after run {run}"], wt)
        assert r.code == 0, (note, r)
        assert git(wt, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD").split() == [".streams/stream-api.md"]
        assert git(wt, "diff", "--cached", "--name-only").split() == ["src/api/staged.py"]
    assert landed >= RUNS, f"seed {SEED}: only {landed} of {attempts} kills landed while progress ran"
