"""Fault injection: `kill -9` of `streams merge` at random moments while it lands several streams.

A real repository whose main worktree has the base checked out (with an unrelated uncommitted edit
of the user's); each round every stream gets new work (started, committed, with a progress
update), then `streams merge` is started as a real process and SIGKILLed after a random delay
within one uncut run's span. After each kill:

- the base is before or after a complete landing: its first-parent history since the round began
  is a chain of landing commits, each changing exactly one stream's files to that stream's tip (no
  half landing, no stream twice, no bookkeeping: no ``.streams/`` path on the base);
- ``git fsck`` is clean; the user's edit is intact;
- the main worktree's HEAD is the base and its index holds the base's tree, or (killed between
  moving the base and bringing the worktree along) the user can see why: the index lock the
  killed merge left names it (``streams-sync <pid>``) and a landing is recorded as open in
  merge.json;

then the next `streams merge` finishes: every stream of the round has landed exactly once, merge.json
has no open landing, the landed streams' worktrees and branches are gone, no lock file is left, and
the main worktree is clean but for the user's edit.

Most kills hit only the streams process (a git child finishes on its own, as after a real
`kill -9 PID`); every fourth kills the whole process group, git included.

STREAMS_MERGE_KILLS=N sets how many landed kills to reach (default 20: the suite's share);
STREAMS_FAULT_SEED fixes the random seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Repo, make_repo, run_cli
from tests.test_faults import fsck_clean, kill_at_random, timed_run

KILLS = int(os.environ.get("STREAMS_MERGE_KILLS", "20"))  # kills that land while the merge runs
SEED = int(os.environ.get("STREAMS_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)
STREAMS = ("s0", "s1", "s2", "s3", "s4")
USER_EDIT = "the user's own uncommitted edit\n"

CONFIG = """\
version: 1
base: main
streams:
  s0:
    owns: [src/s0/**]
  s1:
    owns: [src/s1/**]
    depends: [s0]
  s2:
    owns: [src/s2/**]
  s3:
    owns: [src/s3/**]
  s4:
    owns: [src/s4/**]
    depends: [s2]
"""


def rev(repo: Repo, spec: str) -> str:
    return repo.git("rev-parse", "-q", "--verify", spec, check=False).strip()


def give_work(repo: Repo, rnd: int) -> dict[str, str]:
    """Start every stream that is not running, commit new work in each (and a progress update):
    their tips."""
    idle = [n for n in STREAMS if not repo.worktree(n).is_dir()]
    if idle:
        res = run_cli(["start", *idle], repo.root)
        assert res.code == 0, res.err
    tips = {}
    for name in STREAMS:
        wt = repo.worktree(name)
        repo.write(f"src/{name}/round{rnd}.txt", f"{name} round {rnd}\n", cwd=wt)
        repo.write(f"src/{name}/x.txt", f"{name} at round {rnd}\n", cwd=wt)
        repo.commit_all(f"{name}: round {rnd}", cwd=wt)
        assert run_cli(["progress", "--done", f"round {rnd}", "--completion", "100"], wt).code == 0
        tips[name] = rev(repo, f"refs/heads/streams/{name}")
    return tips


def landings_since(repo: Repo, start: str, tips: dict[str, str], note: str) -> list[str]:
    """The streams landed on the base since ``start``, oldest first; asserts that each commit is
    one whole landing: exactly one stream's files, as at its tip, nothing else."""
    chain = repo.git("rev-list", "--first-parent", "--parents", f"{start}..main").splitlines()
    landed: list[str] = []
    for line in reversed(chain):
        commit, *parents = line.split()
        assert len(parents) == 1, (note, "a merge commit on the base", line)
        changed = repo.git("diff-tree", "-r", "--name-only", "--no-commit-id", parents[0], commit).split()
        owners = {p.split("/")[1] for p in changed if p.startswith("src/")}
        assert changed and len(owners) == 1 and all(p.startswith("src/") for p in changed), (note, commit, changed)
        name = owners.pop()
        assert rev(repo, f"{commit}:src/{name}") == rev(repo, f"{tips[name]}:src/{name}"), (note, name, "half landed")
        assert name not in landed, (note, name, "landed twice")
        landed.append(name)
    assert ".streams" not in repo.git("ls-tree", "--name-only", "main").split(), note
    return landed


def open_landings(repo: Repo) -> list[dict[str, object]]:
    path = repo.root / ".git" / "streams" / "merge.json"
    if not path.exists():
        return []
    entries = json.loads(path.read_text())["landings"]
    return [e for e in entries if e.get("state") in ("landing", "landed")]


def index_lock(repo: Repo) -> Path:
    return repo.root / ".git" / "index.lock"


def main_worktree_ok(repo: Repo, note: str, *, after_kill: bool) -> str:
    """HEAD is the base, the index holds its tree, the user's edit is intact. Right after a kill the
    index may still hold the tree before the landing: then the lock the killed merge left says so,
    and merge.json has the landing open. Returns "consistent" or "left behind"."""
    assert repo.git("symbolic-ref", "HEAD").strip() == "refs/heads/main", note
    assert (repo.root / "README.md").read_text() == USER_EDIT, note
    if index_lock(repo).exists():
        assert after_kill, (note, "a lock file left after the next merge")
        assert index_lock(repo).read_text().startswith("streams-sync "), (note, "a lock nobody can read")
        assert open_landings(repo), (note, "the index is locked but no landing is open")
        return "left behind"
    fresh = subprocess.run(["git", "diff-index", "--cached", "--quiet", "main", "--"], cwd=repo.root)
    assert fresh.returncode == 0, (note, "the index does not hold the base, and no lock says why")
    return "consistent"


def clean_after(repo: Repo, tips: dict[str, str], start: str, note: str) -> int:
    """What the next merge leaves: every stream landed once, nothing open, nothing left over but the
    lock file of a ref that does not exist, which a killed `git update-ref` was creating (a landed
    ref: a name never used again) or deleting (a landed stream's branch: the next `streams start`
    of it names the lock); how many of those there were (deleted here)."""
    landed = landings_since(repo, start, tips, note)
    assert sorted(landed) == sorted(STREAMS), (note, landed)
    assert not open_landings(repo), note
    for name in STREAMS:
        assert not repo.worktree(name).exists(), (note, name, "worktree left")
        assert rev(repo, f"refs/heads/streams/{name}") == "", (note, name, "branch left")
    status = repo.git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert status == [" M README.md"], (note, status)
    main_worktree_ok(repo, note, after_kill=False)
    git_dir = repo.root / ".git"  # git's lock files (streams' own flock files stay, by design)
    leftovers = [p for p in git_dir.rglob("*.lock") if not p.is_relative_to(git_dir / "streams")]
    litter = [p for p in leftovers if p.is_relative_to(git_dir / "refs") and not p.with_suffix("").exists()]
    assert leftovers == litter, (note, leftovers)
    for lock in litter:  # as a human would when `streams start` names it (git's "File exists")
        lock.unlink()
    fsck_clean(repo.root)
    return len(litter)


def next_merge(repo: Repo, note: str, tally: dict[str, int]) -> int:
    """Run `streams merge` until it finishes; each time it does not, it must name lock files that
    exist (a killed git's), which are deleted. Returns how many half-done landings it finished."""
    finished = 0
    for _ in range(4):
        res = run_cli(["merge", "--json"], repo.root)
        data = json.loads(res.out)["data"]
        finished += len(data["finished"]) if data else 0
        if res.code == 0:
            return finished
        said = res.err + res.out
        named = {Path(p) for p in re.findall(r"(/[^\s',;()]+\.lock)\b", said)}
        named = {p for p in named if p.exists() and p.is_relative_to(repo.root / ".git")}
        if not named:
            pytest.fail(f"{note}: the next merge did not finish ({res.code}): {said}", pytrace=False)
        for lock in named:
            lock.unlink()
        tally["a human deleted named locks"] += 1
    pytest.fail(f"{note}: still not finished after 4 merges", pytrace=False)


@pytest.fixture
def queue_repo(tmp_path: Path) -> Repo:
    files = {f"src/{n}/x.txt": f"{n}\n" for n in STREAMS} | {"README.md": "# demo\n"}
    repo = make_repo(tmp_path, files=files, config=CONFIG)
    (repo.root / "README.md").write_text(USER_EDIT)
    return repo


def test_kill_9_merge_at_random_points(queue_repo: Repo) -> None:
    repo = queue_repo
    rng = random.Random(SEED)
    argv = [sys.executable, "-m", "streams", "merge"]
    give_work(repo, -1)
    span = timed_run(argv, repo.root)  # one uncut run: the kills are spread over its span
    landed = attempts = 0
    tally = dict.fromkeys(("kills", "missed", "consistent", "left behind", "whole landings", "finished"), 0)
    tally |= {"a human deleted named locks": 0, "ref lock litter": 0}
    t0 = time.monotonic()
    while landed < KILLS and attempts < KILLS * 3:
        note = f"seed {SEED} attempt {attempts}"
        tips = give_work(repo, attempts)
        start = rev(repo, "main")
        hit = kill_at_random(argv, repo.root, rng, whole_group=attempts % 4 == 3, max_delay=span)
        attempts += 1
        landed += hit
        tally["kills" if hit else "missed"] += 1
        # Right after the kill: whole landings only, fsck clean, the main worktree as described.
        tally["whole landings"] += len(landings_since(repo, start, tips, note))
        fsck_clean(repo.root)
        tally[main_worktree_ok(repo, note, after_kill=True)] += 1
        # The next merge finishes the round, or names the lock files a killed git left (deleted, as
        # a human would, then merge again).
        tally["finished"] += next_merge(repo, note, tally)
        tally["ref lock litter"] += clean_after(repo, tips, start, note)
    assert landed >= KILLS, f"seed {SEED}: only {landed} of {attempts} kills landed while merge ran"
    print(f"seed {SEED}: {tally} in {attempts} runs, {time.monotonic() - t0:.1f} s")


def kill_inside(repo: Repo, tmp_path: Path, state: str, target: str) -> subprocess.CompletedProcess[bytes]:
    """Run `streams merge`, SIGKILLed by a reference-transaction hook (kept as the streams hook's
    ``.legacy``) the first time the base's transaction reaches ``state``; ``target`` is ``$pid``
    (the merge alone) or ``-$pid`` (its whole process group, git included)."""
    pidfile, fired = tmp_path / "merge.pid", tmp_path / "fired"
    hook = repo.root / ".git" / "hooks" / "reference-transaction.legacy"
    hook.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = {state} ] || exit 0\n'
        'grep -q " refs/heads/main$" || exit 0\n'
        f"[ -e {fired} ] && exit 0\n"
        f"touch {fired}; pid=$(cat {pidfile}); kill -9 {target}\n"
    )
    hook.chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "merge"], cwd=repo.root, start_new_session=True, stderr=subprocess.PIPE
    )
    pidfile.write_text(str(proc.pid))
    _, err = proc.communicate(timeout=120)
    hook.unlink()
    assert proc.returncode == -9, err
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", err)


def test_a_merge_killed_after_moving_the_base_leaves_it_landed_and_the_next_brings_the_checkout_along(
    queue_repo: Repo, tmp_path: Path
) -> None:
    repo = queue_repo
    tips = give_work(repo, 0)
    start = rev(repo, "main")
    kill_inside(repo, tmp_path, "committed", "$pid")  # the base moved; its worktree not brought along
    pid = (tmp_path / "merge.pid").read_text()
    (repo.root / ".git" / f"streams-move-{pid}.index.lock").write_text("")  # as a read-tree killed with it leaves
    first = landings_since(repo, start, tips, "after the kill")
    assert len(first) == 1
    assert main_worktree_ok(repo, "after the kill", after_kill=True) == "left behind"
    res = run_cli(["merge", "--json"], repo.root)
    assert res.code == 0, res.err + res.out
    assert json.loads(res.out)["data"]["finished"] == first
    clean_after(repo, tips, start, "after the next merge")


def test_a_lock_a_killed_git_left_on_the_base_is_named_and_nothing_moves(queue_repo: Repo, tmp_path: Path) -> None:
    repo = queue_repo
    tips = give_work(repo, 0)
    start = rev(repo, "main")
    kill_inside(repo, tmp_path, "prepared", "-$pid")  # git update-ref killed holding main.lock
    stale = repo.root / ".git" / "refs" / "heads" / "main.lock"
    assert stale.exists() and rev(repo, "main") == start
    res = run_cli(["merge", "--json"], repo.root)
    assert res.code == 4
    first = json.loads(res.out)["data"]["results"][0]
    assert first["outcome"] == "rolled back" and "uncommitted" not in first["reason"], first
    named = first["reason"].split("stale lock files: ", 1)[-1].split("; a killed git", 1)[0].split(", ")
    assert str(stale) in named and first["reason"].endswith("delete them)"), first["reason"]
    assert rev(repo, "main") == start and open_landings(repo) == []
    for lock in named:  # as the report says
        Path(lock).unlink()
    assert run_cli(["merge"], repo.root).code == 0
    clean_after(repo, tips, start, "after the lock was deleted")
