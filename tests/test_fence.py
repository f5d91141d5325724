"""The fence: sync never rebases under a working agent, and a halt refuses the agent's commits.

Real git, real hooks, real processes: an agent is a small script committing in its worktree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from streams import fence as fencing
from streams.kernel import fence as kfence
from streams.kernel.paths import FENCE_ENV
from tests.conftest import Repo, git, run_cli
from tests.test_sync import advance_main, events, make_conflict, rebasing, start, tip

SYNC_LINE = "streams: sync in progress here; commit again in a moment"


def git_dir_of(wt: Path) -> Path:
    return Path(git(wt, "rev-parse", "--absolute-git-dir").strip())


def commit(wt: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-q", "-m", "agent work", *extra],
        cwd=wt,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def streams_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("streams:")]


def fsck_clean(root: Path) -> None:
    res = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


# --- the hooks and the fence -------------------------------------------------------------------------


def test_the_hooks_refuse_an_agent_commit_in_a_fenced_worktree(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    head = tip(repo, "api")
    repo.write("src/api/one.py", "1\n", cwd=wt)
    git(wt, "add", "src/api/one.py")
    raised = fencing.raise_fence(gd, "api")  # held by this (live) process, as a sync holds it
    for extra in ((), ("--no-verify",)):
        r = commit(wt, *extra)
        assert r.returncode != 0, r  # 1 from pre-commit; 128 when git reports the refused ref update
        assert streams_lines(r.stderr) == [SYNC_LINE], r.stderr
        assert tip(repo, "api") == head
    # The fence holder's own git passes: its environment carries the token.
    r = commit(wt, env={FENCE_ENV: raised.token})
    assert r.returncode == 0, r.stderr
    assert tip(repo, "api") != head
    # Lowered: the agent commits again.
    fencing.lower(gd)
    repo.write("src/api/two.py", "2\n", cwd=wt)
    git(wt, "add", "src/api/two.py")
    r = commit(wt)
    assert r.returncode == 0, r.stderr


def test_a_dead_syncs_fence_is_lifted_by_the_next_sync(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    gd = git_dir_of(wt)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    kfence.write(gd, kfence.Fence("deadbeef", gone.pid, "", kfence.SYNC, "api", "2026-01-01T00:00:00Z"))
    # Its sync is gone and left nothing half done: the agent need not wait for the next sync.
    repo.write("src/api/one.py", "1\n", cwd=wt)
    git(wt, "add", "src/api/one.py")
    assert commit(wt).returncode == 0
    # Over a detached HEAD (a sync killed mid-rebase) it still refuses.
    git(wt, "checkout", "-q", "--detach")
    repo.write("src/api/two.py", "2\n", cwd=wt)
    git(wt, "add", "src/api/two.py")
    r = commit(wt)
    assert r.returncode == 1 and streams_lines(r.stderr) == [SYNC_LINE], r.stderr
    # (`git switch` moves HEAD too: the fence's token lets this test put things back.)
    subprocess.run(["git", "reset", "-q"], cwd=wt, env={**os.environ, FENCE_ENV: "deadbeef"}, check=True)
    subprocess.run(
        ["git", "switch", "-q", "streams/api"], cwd=wt, env={**os.environ, FENCE_ENV: "deadbeef"}, check=True
    )
    (wt / "src/api/two.py").unlink()

    advance_main(repo)
    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    report = json.loads(s.out)["data"]["report"]
    assert [n["what"] for n in report["reconciled"]] == ["fence lifted"]
    assert f"pid {gone.pid}" in report["reconciled"][0]["detail"]
    assert not (gd / "streams-fence").exists()
    assert any(e["event"] == "fence.lift" and e["stream"] == "api" for e in events(repo))


def _stop_once_hook(repo: Repo, allowed: list[str]) -> Path:
    """A foreign reference-transaction hook (kept as .legacy) that refuses any HEAD move to a commit
    not in ``allowed``, once: the rebase stops without a conflict."""
    flag = repo.root.parent / "stop-once"
    flag.write_text("")
    hook = repo.root / ".git/hooks/reference-transaction.legacy"
    cases = " | ".join(allowed)
    hook.write_text(
        "#!/bin/sh\n"
        '[ "$1" = prepared ] || exit 0\n'
        f"[ -e '{flag}' ] || exit 0\n"
        "while read -r old new ref; do\n"
        '    [ "$ref" = HEAD ] || continue\n'
        f"    case $new in {cases}) ;; *) rm -f '{flag}'; echo \"legacy hook: not now\" >&2; exit 1 ;; esac\n"
        "done\n"
    )
    hook.chmod(0o755)
    return flag


def test_a_rebase_that_stops_without_a_conflict_is_rolled_back_at_once(repo: Repo) -> None:
    repo.write("src/api/app.py", "".join(f"line {i}\n" for i in range(10)))
    repo.commit_all("ten lines")
    start(repo, "api")
    wt = repo.worktree("api")
    git(wt, "mv", "src/api/app.py", "src/api/main.py")
    stream_tip = repo.commit_all("api: app.py is main.py", cwd=wt)
    repo.write("src/api/app.py", "".join(f"line {i}\n" for i in range(9)) + "last\n")
    main_tip = repo.commit_all("main: last line")  # a rename against an edit: git rebase, in the worktree
    _stop_once_hook(repo, [main_tip, stream_tip])

    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 1, r
    api = json.loads(r.out)["data"]["report"]["streams"][0]
    assert api["outcome"] == "failed" and "rolled back at once" in api["detail"], api
    assert not rebasing(wt)
    assert git(wt, "symbolic-ref", "HEAD").strip() == "refs/heads/streams/api"
    assert tip(repo, "api") == stream_tip
    assert git(wt, "status", "--porcelain") == ""
    assert not (git_dir_of(wt) / "streams-fence").exists()
    assert any(e["event"] == "sync.rollback" for e in events(repo))
    # Nothing stands in the way of the next sync.
    r = run_cli(["sync", "--json", "api"], repo.root)
    assert r.code == 0, r.err
    assert git(wt, "show", "HEAD:src/api/main.py").splitlines()[-1] == "last"


def test_a_rebase_replay_leaves_to_git_runs_aside_and_keeps_the_agents_edit(repo: Repo) -> None:
    """A stream commit replay leaves to git (an ``encoding`` header): ``git rebase`` runs in a private
    worktree, not the agent's, so a line the agent writes meanwhile stays in its worktree."""
    start(repo, "api")
    wt = repo.worktree("api")
    repo.write("src/api/agent.txt", "line 0\n", cwd=wt)
    git(wt, "add", "src/api/agent.txt")
    git(wt, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-m", "agent 0")
    stream_tip = tip(repo, "api")
    main_tip = advance_main(repo)
    # The agent, played by a foreign hook: the first time a ref moves after this, it writes a line.
    flag = repo.root.parent / "write-once"
    flag.write_text("")
    hook = repo.root / ".git/hooks/reference-transaction.legacy"
    hook.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        f"[ \"$1\" = committed ] && [ -e '{flag}' ] && rm -f '{flag}' && echo 'line 1' >> '{wt}/src/api/agent.txt'\n"
        "exit 0\n"
    )
    hook.chmod(0o755)

    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    assert not flag.exists()  # the agent did write, while sync worked
    api = json.loads(s.out)["data"]["report"]["streams"][0]
    assert api["outcome"] == "rebased", api
    assert (wt / "src/api/agent.txt").read_text() == "line 0\nline 1\n"
    assert git(wt, "status", "--porcelain") == " M src/api/agent.txt\n"
    assert git(repo.root, "merge-base", "--is-ancestor", main_tip, "streams/api") == ""
    assert git(repo.root, "log", "-1", "--format=%s", "streams/api") == "agent 0\n" and tip(repo, "api") != stream_tip
    assert not rebasing(wt) and not (git_dir_of(wt) / "streams-fence").exists()
    assert git(repo.root, "worktree", "list").count("\n") == 2  # the private worktree is gone
    assert not git(repo.root, "for-each-ref", "refs/streams/saved")


# --- halts ----------------------------------------------------------------------------------------------


def _halt(repo: Repo) -> tuple[Path, str, str]:
    start(repo, "api")
    stream_tip, main_tip = make_conflict(repo)
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 4, r
    wt = repo.worktree("api")
    assert rebasing(wt)
    fence = kfence.read(git_dir_of(wt))
    assert fence is not None and fence.purpose == kfence.HALTED
    return wt, stream_tip, main_tip


def test_a_halt_refuses_the_agent_and_lets_the_humans_rebase_continue_through(repo: Repo) -> None:
    wt, _stream_tip, main_tip = _halt(repo)
    head = git(wt, "rev-parse", "HEAD").strip()
    # The agent commits what it has (conflict markers and all): refused, with or without hooks' pre-commit.
    for extra in ((), ("--no-verify",)):
        git(wt, "add", "-A")
        r = commit(wt, *extra)
        assert r.returncode != 0, r  # 1 from pre-commit; 128 when git reports the refused ref update
        [line] = streams_lines(r.stderr)
        assert "halted for a human" in line and "git rebase --continue" in line, line
        assert git(wt, "rev-parse", "HEAD").strip() == head
    # The human resolves and continues: passes.
    repo.write("src/api/app.py", "resolved\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    res = subprocess.run(
        ["git", "rebase", "--continue"],
        cwd=wt,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_EDITOR": "true"},
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert not rebasing(wt)
    assert git(wt, "show", "streams/api:src/api/app.py") == "resolved\n"
    assert git(repo.root, "merge-base", "--is-ancestor", main_tip, "streams/api") == ""
    # The rebase is over: the agent commits again, and the next sync lifts the fence.
    repo.write("src/api/after.py", "x\n", cwd=wt)
    git(wt, "add", "src/api/after.py")
    assert commit(wt).returncode == 0
    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    assert not (git_dir_of(wt) / "streams-fence").exists()


def test_continue_refuses_files_that_still_hold_conflict_markers(repo: Repo) -> None:
    wt, _stream_tip, _main_tip = _halt(repo)
    assert "<<<<<<< " in (wt / "src/api/app.py").read_text()
    git(wt, "add", "src/api/app.py")  # the markers staged as if resolved
    r = run_cli(["sync", "--json", "--continue", "api"], repo.root)
    assert r.code == 4, r
    error = json.loads(r.out)["error"]
    assert error["code"] == "conflict_markers" and "src/api/app.py" in error["message"]
    assert r.err.count("\n") == 1
    assert rebasing(wt)
    repo.write("src/api/app.py", "resolved\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 0, r.err
    assert not rebasing(wt) and not (git_dir_of(wt) / "streams-fence").exists()


def test_abort_saves_commits_made_after_the_halt_began(repo: Repo) -> None:
    wt, stream_tip, _main_tip = _halt(repo)
    # Work committed in the halted worktree with the hooks out of the way (an older streams, or
    # hooks switched off): the abort must not drop it.
    repo.write("src/api/app.py", "resolved\n", cwd=wt)
    repo.write("src/api/later.py", "made after the halt\n", cwd=wt)
    git(wt, "add", "-A")
    git(wt, "-c", "core.hooksPath=/nonexistent", "commit", "-q", "-m", "agent: after the halt")
    later = git(wt, "rev-parse", "HEAD").strip()

    r = run_cli(["sync", "--json", "--abort", "api"], repo.root)
    assert r.code == 0, r.err
    aborted = json.loads(r.out)["data"]["aborted"]
    [saved] = aborted["saved"]
    assert saved.startswith("refs/streams/saved/api/")
    assert repo.git("rev-parse", saved).strip() == later
    assert tip(repo, "api") == stream_tip and not rebasing(wt)
    assert not (git_dir_of(wt) / "streams-fence").exists()
    r = run_cli(["sync", "--abort", "api"], repo.root)  # nothing left to abort
    assert r.code == 1
    # The text names the ref too.
    wt2, _, _ = _halt_again(repo)
    git(wt2, "-c", "core.hooksPath=/nonexistent", "commit", "-q", "-a", "-m", "markers and all")
    r = run_cli(["sync", "--abort", "api"], repo.root)
    assert r.code == 0 and "refs/streams/saved/api/" in r.out, r


def _halt_again(repo: Repo) -> tuple[Path, str, str]:
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "api side again\n", cwd=wt)
    stream_tip = repo.commit_all("api: again", cwd=wt)
    main_tip = advance_main(repo, "src/api/app.py", "main side again\n")
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 4, r
    return wt, stream_tip, main_tip


# --- the acceptance scenario: an agent committing while syncs run ----------------------------------------

AGENT = """\
import os, subprocess, sys, time
wt, count = sys.argv[1], int(sys.argv[2])
path = os.path.join(wt, "src/api/agent.txt")
refused = 0
deadline = time.monotonic() + 120
if sys.argv[3:] == ["lock"]:  # first a shared file, under its lease: lock, edit, commit, unlock
    def step(*argv):
        done = subprocess.run(argv, cwd=wt, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{argv}: {done.returncode} {done.stdout} {done.stderr}")
    step(sys.executable, "-m", "streams", "lock", "pyproject.toml")
    with open(os.path.join(wt, "pyproject.toml"), "a") as fh:
        fh.write("version = '1'\\n")
    step("git", "commit", "-q", "-m", "agent: version", "pyproject.toml")
    step(sys.executable, "-m", "streams", "unlock", "pyproject.toml")
    print("unlocked", flush=True)
for i in range(count):
    with open(path, "a") as fh:
        fh.write(f"line {i}\\n")
    while True:
        subprocess.run(["git", "add", "src/api/agent.txt"], cwd=wt, capture_output=True)
        c = subprocess.run(["git", "commit", "-q", "-m", f"agent {i}"], cwd=wt, capture_output=True, text=True)
        if c.returncode == 0:
            break
        if "nothing to commit" in c.stdout + c.stderr or "nothing added" in c.stdout + c.stderr:
            sys.exit(f"line {i} vanished from the worktree: {c.stdout} {c.stderr}")
        if time.monotonic() > deadline:
            sys.exit(f"commit {i} refused for 120 s: {c.stderr}")
        refused += 1
        time.sleep(0.02)
    time.sleep(0.05)
print(refused)
"""

COMMITS = int(os.environ.get("STREAMS_AGENT_COMMITS", "150"))


def test_an_agent_committing_while_syncs_run_loses_nothing(repo: Repo, tmp_path: Path) -> None:
    """The agent appends a line to its file and commits, every ~50 ms, retrying a refused commit;
    meanwhile `streams sync` runs again and again in another process while main moves on."""
    start(repo)
    wt = repo.worktree("api")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    agent = subprocess.Popen(
        [sys.executable, str(script), str(wt), str(COMMITS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    syncs = outcomes = 0
    seen: dict[str, int] = {}
    try:
        while agent.poll() is None:
            syncs += 1
            advance_main(repo, f"notes/run{syncs}.md", f"run {syncs}\n")
            r = subprocess.run(
                [sys.executable, "-m", "streams", "sync", "--json", "api"],
                cwd=repo.root,
                capture_output=True,
                text=True,
                check=False,
            )
            assert r.returncode in (0, 1), r.stderr
            for s in json.loads(r.stdout)["data"]["report"]["streams"]:
                seen[s["outcome"]] = seen.get(s["outcome"], 0) + 1
                outcomes += 1
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, err
    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    want = "".join(f"line {i}\n" for i in range(COMMITS))
    assert git(repo.root, "show", "streams/api:src/api/agent.txt") == want
    assert (wt / "src/api/agent.txt").read_text() == want
    assert not rebasing(wt) and git(wt, "status", "--porcelain") == ""
    assert git(repo.root, "merge-base", "--is-ancestor", "main", "streams/api") == ""
    assert not (git_dir_of(wt) / "streams-fence").exists()
    fsck_clean(repo.root)
    assert syncs >= 3 and seen.get("rebased", 0) >= 1, (syncs, seen)
    print(f"{syncs} syncs while the agent made {COMMITS} commits ({out.strip()} refused); outcomes {seen}")


SYNCS = 10


def test_an_agent_that_leased_a_shared_file_commits_through_ten_syncs(repo: Repo, tmp_path: Path) -> None:
    """Issue 10's acceptance scenario: the agent takes the lease of a shared file, commits it and
    releases it; then it appends a line to its file and commits, every ~50 ms, 150 times, retrying a
    refused commit, while ten `streams sync` runs happen in another process, main moving between
    them. Every line ends on its branch; nothing is left mid-rebase or fenced; `git fsck` is clean."""
    start(repo)
    wt = repo.worktree("api")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    agent = subprocess.Popen(
        [sys.executable, str(script), str(wt), str(COMMITS), "lock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, int] = {}
    try:
        assert agent.stdout is not None and agent.stderr is not None
        assert agent.stdout.readline() == "unlocked\n", agent.stderr.read()
        n = 0
        # Ten syncs; more only while none has rebased api yet (its worktree is dirty most of the time:
        # the agent has written its next line and not committed it yet, and sync skips it then).
        while n < SYNCS or (not seen.get("rebased") and agent.poll() is None):
            n += 1
            assert n > SYNCS or agent.poll() is None, f"the agent finished before sync {n}: make it commit more"
            advance_main(repo, f"notes/run{n}.md", f"run {n}\n")
            r = subprocess.run(
                [sys.executable, "-m", "streams", "sync", "--json"],
                cwd=repo.root,
                capture_output=True,
                text=True,
                check=False,
            )
            assert r.returncode == 0, r.stdout + r.stderr
            api = next(s for s in json.loads(r.stdout)["data"]["report"]["streams"] if s["name"] == "api")
            seen[api["outcome"]] = seen.get(api["outcome"], 0) + 1
            time.sleep(0.2)
        out, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, err
    want = "".join(f"line {i}\n" for i in range(COMMITS))
    assert git(repo.root, "show", "streams/api:src/api/agent.txt") == want
    assert (wt / "src/api/agent.txt").read_text() == want
    shared = git(repo.root, "show", "streams/api:pyproject.toml")
    assert "version = '1'\n" in shared, shared
    for name in ("api", "ui", "docs"):
        stream_wt = repo.worktree(name)
        assert not rebasing(stream_wt) and git(stream_wt, "symbolic-ref", "HEAD") == f"refs/heads/streams/{name}\n"
        assert git(stream_wt, "status", "--porcelain") == "", name
        assert not (git_dir_of(stream_wt) / "streams-fence").exists(), name
    leases = run_cli(["locks", "--json"], repo.root)
    assert leases.code == 0 and "pyproject.toml" not in leases.out, leases
    fsck_clean(repo.root)
    assert seen.get("rebased", 0) >= 1, seen  # the syncs did rebase under the working agent
    s = run_cli(["sync", "--json"], repo.root)  # and the stream ends on top of main
    assert s.code == 0, s.err
    assert git(repo.root, "merge-base", "--is-ancestor", "main", "streams/api") == ""
    print(f"{n} syncs while the agent made {COMMITS} commits ({out.strip()} refused); api: {seen}")


def test_a_clean_merge_is_replayed_without_a_rebase_in_the_worktree(repo: Repo) -> None:
    """The stream and main edit the same file, apart: replayed with a file merge (no `git rebase`
    in the worktree), committed as git rebase would (author and message kept, merged content)."""
    repo.write("pyproject.toml", "".join(f"line {i}\n" for i in range(10)))
    repo.commit_all("ten lines")
    start(repo, "api")
    wt = repo.worktree("api")
    assert run_cli(["lock", "pyproject.toml"], wt).code == 0
    repo.write("pyproject.toml", "first\n" + "".join(f"line {i}\n" for i in range(1, 10)), cwd=wt)
    repo.commit_all("api: first line", cwd=wt)
    assert run_cli(["unlock", "pyproject.toml"], wt).code == 0
    repo.write("pyproject.toml", "".join(f"line {i}\n" for i in range(9)) + "last\n")
    main_tip = repo.commit_all("main: last line")

    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    assert json.loads(s.out)["data"]["report"]["streams"][0]["outcome"] == "rebased"
    merged = "first\n" + "".join(f"line {i}\n" for i in range(1, 9)) + "last\n"
    assert git(repo.root, "show", "streams/api:pyproject.toml") == merged
    assert (wt / "pyproject.toml").read_text() == merged and git(wt, "status", "--porcelain") == ""
    assert git(wt, "log", "-1", "--format=%s|%an", "streams/api") == "api: first line|Test Author\n"
    assert git(repo.root, "merge-base", "--is-ancestor", main_tip, "streams/api") == ""
    assert "streams sync: rebase streams/api onto main" in git(repo.root, "reflog", "-1", "streams/api")


def test_sync_waits_for_a_running_git_and_reports_a_stale_lock(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    lock = git_dir_of(wt) / "index.lock"
    advance_main(repo)
    lock.write_text("")  # a git command at work in the worktree: it finishes half a second later
    threading.Timer(0.5, lock.unlink).start()
    t0 = time.monotonic()
    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 0, s.err
    assert json.loads(s.out)["data"]["report"]["streams"][0]["outcome"] == "rebased"
    assert time.monotonic() - t0 >= 0.4
    # A lock older than the wait (a killed git left it): reported at once, named, nothing changed.
    advance_main(repo, "README.md", "# again\n")
    lock.write_text("")
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    before = tip(repo, "api")
    s = run_cli(["sync", "--json", "api"], repo.root)
    assert s.code == 1, s
    api = json.loads(s.out)["data"]["report"]["streams"][0]
    assert api["outcome"] == "failed" and str(lock) in api["detail"], api
    assert tip(repo, "api") == before and not (git_dir_of(wt) / "streams-fence").exists()
