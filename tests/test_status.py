"""`streams status`: every column against real worktrees in the states that produce it."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams import dashboard
from streams import status as status_mod
from streams.kernel import paths
from streams.progress import Progress, render
from streams.runclass import StreamStatus
from tests.conftest import DEFAULT_FILES, Repo, git, make_repo, run_cli, wait_for, watch_status

# --- helpers ---------------------------------------------------------------------------------------------


def start(repo: Repo, *names: str) -> None:
    r = run_cli(["start", *names], repo.root)
    assert r.code == 0, r.err


def snapshot(repo: Repo, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    r = run_cli(["status", "--json", *args], cwd or repo.root)
    assert r.code == 0, r.err
    env = json.loads(r.out)
    assert env["ok"] is True and env["command"] == "status"
    data: dict[str, Any] = env["data"]
    return data


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in data["streams"] if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in data["streams"]]
    return found[0]


def text(repo: Repo, *args: str) -> str:
    r = run_cli(["status", *args], repo.root)
    assert r.code == 0, r.err
    return r.out


def line_of(out: str, name: str) -> str:
    """The table row of stream ``name`` in the plain output."""
    return next(ln for ln in out.splitlines() if ln.split(" ", 1)[0] == name)


def commit(repo: Repo, wt: Path, rel: str, content: str, message: str = "change", **env: str) -> str:
    repo.write(rel, content, cwd=wt)
    repo.git("add", "--", rel, cwd=wt)
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", message],
        cwd=wt,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return repo.git("rev-parse", "HEAD", cwd=wt).strip()


def write_progress(repo: Repo, name: str, **changes: Any) -> None:
    wt = repo.worktree(name)
    p = Progress.new(name, when="2026-01-01T00:00:00Z").with_changes(**changes)
    commit(repo, wt, f".streams/stream-{name}.md", render(p), f"progress {name}")


# --- columns ------------------------------------------------------------------------------------------------


def test_started_and_not_started_streams(repo: Repo) -> None:
    start(repo, "api", "ui")
    data = snapshot(repo)
    assert [s["name"] for s in data["streams"]] == ["api", "ui", "docs"]
    api, docs = row(data, "api"), row(data, "docs")
    assert api["state"] == "started" and api["status"] == "pending" and api["completion"] == 0
    assert api["worktree"] == str(repo.worktree("api"))
    assert (api["ahead"], api["behind"], api["dirty"], api["errors"]) == (
        0,
        0,
        [],
        [],
    )  # start's progress commit: bookkeeping
    assert docs["state"] == "not started" and docs["head"] is None and docs["ahead"] is None
    assert docs["worktree"] == str(repo.worktree("docs"))
    s = data["summary"]
    assert (s["total"], s["started"], s["not_started"], s["halted"], s["errors"]) == (3, 2, 1, 0, 0)
    out = text(repo)
    assert out.splitlines()[0].startswith("3 streams · 0 active")
    assert "not started" in line_of(out, "docs")
    assert "pending" in line_of(out, "api") and "+0 -0" in line_of(out, "api")


def test_stop_counts_the_commits_the_dashboard_counts(repo: Repo) -> None:
    """Progress commits (start's and the agent's), two commits of work, one of them also landed on
    main by cherry-pick: the dashboard's AHEAD and `stop`'s refusal both say 1."""
    start(repo, "api")
    wt = repo.worktree("api")
    assert run_cli(["progress", "--completion", "10"], wt).code == 0
    landed = commit(repo, wt, "src/api/app.py", "v2\n", "landed")
    tip = commit(repo, wt, "src/api/new.py", "new\n", "not landed")
    repo.git("cherry-pick", landed)
    ahead = row(snapshot(repo), "api")["ahead"]
    assert "+1 -1" in line_of(text(repo), "api")
    r = run_cli(["stop", "api"], repo.root)
    assert r.code == 1
    assert f"branch streams/api has {ahead} commit not on main (tip {tip[:12]})" in r.err
    assert ahead == 1


def test_with_a_remote_stop_and_the_dashboard_count_against_what_was_fetched(repo: Repo, tmp_path: Path) -> None:
    """The stream's work landed on origin/main (fetched), not on the local main: nothing is lost."""
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    config = (repo.root / "streams.yaml").read_text().replace("base: main\n", "base: main\nremote: origin\n")
    repo.write("streams.yaml", config)
    repo.commit_all("streams: use origin")
    repo.git("push", "-q", "origin", "main")
    repo.git("fetch", "-q", "origin")
    start(repo, "api")
    wt = repo.worktree("api")
    work = commit(repo, wt, "src/api/app.py", "v2\n", "work")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "other")
    git(other, "fetch", "-q", str(repo.root), work)
    git(other, "cherry-pick", "FETCH_HEAD")
    git(other, "push", "-q", "origin", "main")
    repo.git("fetch", "-q", "origin")
    assert row(snapshot(repo), "api")["ahead"] == 0
    r = run_cli(["stop", "api"], repo.root)
    assert r.code == 0, r.err
    assert "not on" not in r.out


def test_progress_update_shows_status_completion_and_task(repo: Repo) -> None:
    start(repo, "api")
    write_progress(repo, "api", status="in_progress", completion=40, current="endpoints", blocked=("db schema",))
    api = row(snapshot(repo), "api")
    assert (api["status"], api["completion"], api["current_task"]) == ("in_progress", 40, "endpoints")
    assert api["blocked_items"] == ["db schema"]
    out = text(repo)
    assert "[####......]  40%" in line_of(out, "api") and "endpoints" in line_of(out, "api")
    assert out.startswith("3 streams · 1 active")
    write_progress(repo, "api", status="completed", completion=100)
    data = snapshot(repo)
    assert row(data, "api")["completion"] == 100
    assert (data["summary"]["completed"], data["summary"]["active"]) == (1, 0)


def test_blocked_counts_in_summary(repo: Repo) -> None:
    start(repo, "api", "ui")
    write_progress(repo, "ui", status="blocked", blocked=("waiting for api",))
    data = snapshot(repo)
    assert data["summary"]["blocked"] == 1 and row(data, "ui")["status"] == "blocked"


def test_commits_ahead_behind_and_last_commit(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    tip = commit(repo, wt, "src/api/app.py", "v2\n", GIT_AUTHOR_DATE="2026-01-02T03:04:05Z")
    api = row(snapshot(repo), "api")
    assert (api["ahead"], api["behind"], api["head"]) == (1, 0, tip)  # not the progress commit of `start`
    assert api["last_commit"] == "2026-01-02T03:04:05Z"  # the author date: a rebase keeps it
    assert api["last_commit_age"] > 0
    assert api["changed"] == ["src/api/app.py"]  # the progress file is bookkeeping, not a change

    repo.write("README.md", "moved\n")
    repo.commit_all("base moves")
    repo.write("README.md", "moved again\n")
    repo.commit_all("base moves again")
    data = snapshot(repo)
    api = row(data, "api")
    assert (api["ahead"], api["behind"]) == (1, 2)
    assert data["base_tip"] == repo.git("rev-parse", "main").strip()
    assert "+1 -2" in line_of(text(repo), "api")

    # sync rebases (new committer dates): LAST COMMIT still says when the agent last committed
    assert run_cli(["sync", "api"], repo.root).code == 0
    api = row(snapshot(repo), "api")
    assert (api["ahead"], api["behind"]) == (1, 0)
    assert api["last_commit"] == "2026-01-02T03:04:05Z"


def test_dirty_files_staged_unstaged_untracked_and_renamed(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "edited\n", cwd=wt)  # unstaged
    repo.write("src/api/new.py", "new\n", cwd=wt)  # untracked
    repo.write("tests/api/more/deep.py", "x\n", cwd=wt)  # untracked in a new directory: listed one by one
    repo.git("mv", "tests/api/test_app.py", "tests/api/test_renamed.py", cwd=wt)  # staged rename: both sides
    api = row(snapshot(repo), "api")
    assert sorted(api["dirty"]) == sorted(
        [
            "src/api/app.py",
            "src/api/new.py",
            "tests/api/more/deep.py",
            "tests/api/test_app.py",
            "tests/api/test_renamed.py",
        ]
    )
    assert api["out_of_scope"] == []
    cells = line_of(text(repo), "api").split()
    assert "5" in cells


def test_out_of_scope_uncommitted_edits_are_named(repo: Repo) -> None:
    start(repo, "api", "ui")
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "mine\n", cwd=wt)
    repo.write("src/ui/main.ts", "not mine\n", cwd=wt)
    repo.write("pyproject.toml", "[project]\nname = 'x'\n", cwd=wt)
    repo.write("README.md", "nobody's\n", cwd=wt)
    data = snapshot(repo)
    issues = {v["path"]: v["reason"] for v in row(data, "api")["out_of_scope"]}
    assert sorted(issues) == ["README.md", "pyproject.toml", "src/ui/main.ts"]
    assert "ui" in issues["src/ui/main.ts"]
    assert "lock" in issues["pyproject.toml"]
    assert "unowned" in issues["README.md"]
    assert data["summary"]["out_of_scope"] == 3
    out = text(repo)
    assert "out of scope (uncommitted): src/ui/main.ts" in out
    assert "README.md, pyproject.toml +1" in line_of(out, "api")


def test_held_lease_shows_time_left_and_brings_the_edit_in_scope(repo: Repo) -> None:
    start(repo, "api", "ui")
    wt = repo.worktree("api")
    repo.write("pyproject.toml", "[project]\nname = 'x'\n", cwd=wt)
    r = run_cli(["lock", "pyproject.toml", "--ttl", "30m", "--reason", "deps"], wt)
    assert r.code == 0, r.err
    data = snapshot(repo)
    api = row(data, "api")
    assert api["out_of_scope"] == []
    (lock,) = api["locks"]
    assert lock["path"] == "pyproject.toml" and lock["reason"] == "deps" and lock["until_commit"] is False
    assert 0 < lock["seconds_left"] <= 1800
    assert row(data, "ui")["locks"] == []
    assert data["summary"]["locks_held"] == 1
    out = text(repo)
    assert "1 lock held" in out.splitlines()[0]
    assert "pyproject.toml 29m" in line_of(out, "api") or "pyproject.toml 30m" in line_of(out, "api")


def test_halted_sync_shows_halt_and_conflict_state(repo: Repo) -> None:
    start(repo, "api", "ui")
    wt = repo.worktree("api")
    commit(repo, wt, "src/api/app.py", "stream side\n")
    repo.write("src/api/app.py", "base side\n")
    repo.commit_all("base changes the same line")
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 4, (r.out, r.err)
    data = snapshot(repo)
    api = row(data, "api")
    assert api["state"] == "started"  # mid-rebase the branch is not checked out; the marker still says whose
    assert api["halted"] is True and api["halt"]["files"] == ["src/api/app.py"]
    assert api["operation"] == "rebase" and api["conflicted"] == ["src/api/app.py"]
    assert data["summary"]["halted"] == 1
    out = text(repo)
    assert "HALTED: src/api/app.py" in line_of(out, "api")
    assert "api: halted by sync on src/api/app.py" in out


def test_halt_notes_come_before_overlap_and_scope_lines_also_when_watching(repo: Repo) -> None:
    """docs is halted; api (listed first) edits a docs file: the halt line leads, in the plain
    snapshot and in every `--watch` snapshot (a live view cut to the terminal keeps it)."""
    start(repo, "api", "docs")
    commit(repo, repo.worktree("docs"), "docs/index.md", "stream side\n")
    repo.write("docs/index.md", "base side\n")
    repo.commit_all("base changes the same line")
    assert run_cli(["sync", "docs"], repo.root).code == 4
    repo.write("docs/index.md", "api wrote this\n", cwd=repo.worktree("api"))

    def check(out: list[str]) -> None:
        notes = out[out.index(next(ln for ln in out if ln.startswith("docs "))) + 1 :]
        assert notes[0].startswith("docs: halted by sync on docs/index.md"), notes
        assert any(ln.startswith("api and docs both changed docs/index.md") for ln in notes), notes
        assert any(ln.startswith("api: out of scope (uncommitted): docs/index.md") for ln in notes), notes

    check(text(repo).splitlines())
    proc, lines = watch_status(repo, "0.2")
    try:
        wait_for(lambda: sum(ln.startswith("3 streams") for ln in lines) >= 1, "the first snapshot")
        repo.write("src/api/more.py", "more\n", cwd=repo.worktree("api"))  # a change: a second snapshot
        wait_for(lambda: sum(ln.startswith("3 streams") for ln in lines) >= 2, "two snapshots")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    starts = [i for i, ln in enumerate(lines) if ln.startswith("3 streams")]
    check([ln.rstrip("\n") for ln in lines[starts[0] : starts[1]]])


def test_a_git_lock_is_called_stale_only_when_no_git_process_holds_it(repo: Repo) -> None:
    """A halted worktree; a real `git commit -a` there waits for its editor, holding index.lock:
    status and sync say a git holds it (its pid), not "stale"; once that git is killed, "stale"."""
    start(repo, "api")
    wt = repo.worktree("api")
    commit(repo, wt, "src/api/app.py", "stream side\n")
    repo.write("src/api/app.py", "base side\n")
    repo.commit_all("base changes the same line")
    assert run_cli(["sync", "api"], repo.root).code == 4
    repo.write("src/api/app.py", "resolved\n", cwd=wt)
    lock = Path(repo.git("rev-parse", "--absolute-git-dir", cwd=wt).strip()) / "index.lock"
    env = {**os.environ, "GIT_EDITOR": "f() { sleep 60; }; f"}
    agent = subprocess.Popen(["git", "commit", "-a", "--no-verify"], cwd=wt, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lock.exists, "git to take index.lock")
        held = f"{lock} are held by a running git (pid {agent.pid})"
        out = text(repo)
        assert held in out and "stale" not in out, out
        again = run_cli(["sync", "api"], repo.root)
        assert held in again.err + again.out and "stale" not in again.err + again.out, again
    finally:
        agent.kill()
        agent.wait(timeout=30)
    assert lock.exists()  # a killed git leaves its lock behind
    out = text(repo)
    assert f"stale lock files: {lock}; a killed git process may have left them" in out, out
    lock.unlink()
    assert "lock files" not in text(repo)


def test_during_a_halt_progress_comes_from_the_streams_own_tip(repo: Repo) -> None:
    """The half-rebased worktree holds the progress file as replayed so far (here: the one start
    committed); status shows what the stream's branch says."""
    start(repo, "api")
    wt = repo.worktree("api")
    commit(repo, wt, "src/api/app.py", "stream side\n")
    r = run_cli(["progress", "--status", "completed", "--completion", "100", "--current", "done"], wt)
    assert r.code == 0, r.err
    repo.write("src/api/app.py", "base side\n")
    repo.commit_all("base changes the same line")
    assert run_cli(["sync", "api"], repo.root).code == 4
    assert "status: pending" in (wt / ".streams/stream-api.md").read_text()  # the replayed file
    api = row(snapshot(repo), "api")
    assert api["halted"] is True and api["operation"] == "rebase"
    assert (api["status"], api["completion"], api["current_task"]) == ("completed", 100, "done")


def test_a_conflicted_shared_file_is_not_out_of_scope(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    assert run_cli(["lock", "pyproject.toml"], wt).code == 0
    commit(repo, wt, "pyproject.toml", "[project]\nname = 'api side'\n")
    assert run_cli(["unlock", "pyproject.toml"], wt).code == 0
    repo.write("pyproject.toml", "[project]\nname = 'base side'\n")
    repo.commit_all("base changes the shared file")
    assert run_cli(["sync", "api"], repo.root).code == 4
    api = row(snapshot(repo), "api")
    assert api["conflicted"] == ["pyproject.toml"] and "pyproject.toml" in api["dirty"]
    assert api["out_of_scope"] == []  # the rebase's conflict, not an edit that needs a lease


def test_committed_out_of_scope_changes_are_shown(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    repo.write("src/ui/main.ts", "api wrote this\n", cwd=wt)
    repo.git("add", "src/ui/main.ts", cwd=wt)
    repo.git("-c", "core.hooksPath=/nonexistent", "commit", "-q", "-m", "past the hooks", cwd=wt)
    api = row(snapshot(repo), "api")
    assert api["out_of_scope"] == []
    assert api["committed_out_of_scope"] == [{"path": "src/ui/main.ts", "reason": "owned by ui"}]
    assert "api: out of scope (committed): src/ui/main.ts: owned by ui" in text(repo)


def test_a_blocked_stream_shows_why_in_the_table(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    r = run_cli(["progress", "--status", "blocked", "--blocked", "which database?"], wt)
    assert r.code == 0, r.err
    assert "BLOCKED: which database?" in line_of(text(repo), "api")


def test_predicted_conflict_with_the_base(repo: Repo) -> None:
    start(repo, "api", "ui")
    commit(repo, repo.worktree("api"), "src/api/app.py", "stream side\n")
    commit(repo, repo.worktree("ui"), "src/ui/main.ts", "no conflict\n")
    repo.write("src/api/app.py", "base side\n")
    repo.commit_all("base changes the same line")
    data = snapshot(repo)
    assert row(data, "api")["predicted_conflicts"] == ["src/api/app.py"]
    assert row(data, "ui")["predicted_conflicts"] == []
    assert data["summary"]["predicted_conflicts"] == 1
    out = text(repo)
    assert "api: a rebase onto main would conflict on src/api/app.py" in out
    assert "src/api/app.py" in line_of(out, "api")


def test_two_streams_touching_the_same_file(repo: Repo) -> None:
    start(repo, "api", "ui", "docs")
    api_wt, ui_wt = repo.worktree("api"), repo.worktree("ui")
    r = run_cli(["lock", "pyproject.toml", "--until-commit"], api_wt)
    assert r.code == 0, r.err
    commit(repo, api_wt, "pyproject.toml", "[project]\nname = 'api'\n")  # committed on api
    repo.write("pyproject.toml", "[project]\nname = 'ui'\n", cwd=ui_wt)  # uncommitted on ui
    data = snapshot(repo)
    assert row(data, "api")["overlaps"] == {"ui": ["pyproject.toml"]}
    assert row(data, "ui")["overlaps"] == {"api": ["pyproject.toml"]}
    assert row(data, "docs")["overlaps"] == {}
    out = text(repo)
    assert "ui: pyproject.toml" in line_of(out, "api")
    assert "api and ui both changed pyproject.toml" in out


def test_unreadable_worktrees_show_an_error_row_and_the_rest_renders(repo: Repo) -> None:
    start(repo, "api", "ui", "docs")
    shutil.rmtree(repo.worktree("ui"))
    (repo.worktree("docs") / ".git").write_text("gitdir: /nonexistent/place\n")
    r = run_cli(["status", "--json"], repo.root)
    assert r.code == 0, r.err
    data = json.loads(r.out)["data"]
    ui, docs, api = row(data, "ui"), row(data, "docs"), row(data, "api")
    assert ui["state"] == "missing" and "git worktree prune" in ui["errors"][0]
    assert docs["errors"] and "cannot read worktree" in docs["errors"][0]
    assert api["errors"] == [] and api["status"] == "pending" and api["ahead"] == 0
    assert data["summary"]["errors"] == 2
    out = text(repo)
    assert "ERROR: worktree" in line_of(out, "ui")
    assert "pending" in line_of(out, "api")


def test_branch_only_and_unconfigured_streams(repo: Repo) -> None:
    start(repo, "api", "docs")
    r = run_cli(["stop", "api"], repo.root)
    assert r.code == 0, r.err
    repo.write("streams.yaml", (repo.root / "streams.yaml").read_text().replace("  docs:\n", "  manual:\n"))
    repo.commit_all("streams: docs is now manual")
    data = snapshot(repo)
    api = row(data, "api")
    assert api["state"] == "branch only" and api["ahead"] == 0 and api["dirty"] == []
    docs = row(data, "docs")
    assert docs["state"] == "unconfigured" and docs["branch"] == "streams/docs" and docs["status"] == "pending"
    assert row(data, "manual")["state"] == "not started"
    out = text(repo)
    assert "branch only" in line_of(out, "api") and "unconfigured" in line_of(out, "docs")


def test_agent_running_from_the_runners_records(repo: Repo) -> None:
    """The AGENT cell comes from the latest run's state.json: the pid and its start time."""
    from streams.kernel.procs import start_time
    from streams.runstate import Attempt, RunDir, RunRecord, StreamRecord
    from streams.workspace import discover

    start(repo, "api")
    ws = discover(repo.root)
    rd = RunDir(ws, "20261202-000000-abcd")
    rd.create({"waves": []}, "digest")
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record = RunRecord(rd.run_id, "digest", ["api"], [["api"]], wave=1)
    attempt = Attempt(1, "agent", pid=agent.pid, start_time=start_time(agent.pid), started=1.0)
    record.streams["api"] = StreamRecord("api", 1, status=StreamStatus.RUNNING, attempts=[attempt])
    rd.save(record)
    try:
        data = snapshot(repo)
        api = row(data, "api")
        assert (api["agent_pid"], api["agent_running"]) == (agent.pid, True)
        assert api["run"] == {
            "run_id": rd.run_id,
            "wave": 1,
            "status": "running",
            "attempt": 1,
            "failure": None,
            "cause": "",
        }
        assert data["run"]["run_id"] == rd.run_id and data["run"]["runner_alive"] is False
        assert data["run"]["status"] == "interrupted"  # it says running, but no runner holds it
        assert f"running {agent.pid}" in line_of(text(repo), "api")
        attempt.start_time = "1"  # the same pid with another start time is another process
        rd.save(record)
        assert row(snapshot(repo), "api")["agent_running"] is False
    finally:
        agent.kill()
        agent.wait()
    attempt.start_time = None
    rd.save(record)
    api = row(snapshot(repo), "api")
    assert (api["agent_pid"], api["agent_running"]) == (agent.pid, False)


def test_names_select_rows_and_unknown_names_fail(repo: Repo) -> None:
    start(repo, "api", "ui")
    data = snapshot(repo, "ui")
    assert [s["name"] for s in data["streams"]] == ["ui"]
    r = run_cli(["status", "nope"], repo.root)
    assert r.code == 1 and "unknown stream 'nope'" in r.err and r.out == ""


@pytest.mark.parametrize("bad", ["0", "abc", "-1s", "1x", "50ms"])
def test_bad_interval_is_a_usage_error(repo: Repo, bad: str) -> None:
    r = run_cli(["status", "--watch", "--interval", bad], repo.root)
    assert r.code == 2 and "--interval" in r.err and r.out == ""


def test_status_works_from_inside_a_stream_worktree(repo: Repo) -> None:
    start(repo, "api")
    data = snapshot(repo, cwd=repo.worktree("api") / "src")
    assert row(data, "api")["state"] == "started"


def test_status_never_writes_the_index(repo: Repo) -> None:
    """With optional locks on, `git status` would refresh a stale index and rewrite it."""
    start(repo, "api")
    wt = repo.worktree("api")
    index = Path(repo.git("rev-parse", "--git-path", "index", cwd=wt).strip())
    if not index.is_absolute():
        index = wt / index
    os.utime(wt / "src/api/app.py", (1, 1))  # stat info changes, content does not: a refresh would write
    before = index.stat().st_mtime_ns, index.read_bytes()
    snapshot(repo)
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


def private_copies(wt: Path) -> list[Path]:
    git_dir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    folder = git_dir / paths.PRIVATE_INDEX_DIR
    return sorted(p for p in folder.iterdir() if p.name != status_mod.READERS_FILE) if folder.is_dir() else []


def test_status_keeps_its_own_index_copy_with_the_untracked_cache(repo: Repo) -> None:
    """git status runs on a private copy of the index it may write: the refreshed stat data and the
    untracked cache stay for the next call; the agent's index is untouched (inode, bytes, time)."""
    start(repo, "api")
    wt = repo.worktree("api")
    index = Path(repo.git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=wt).strip())
    repo.write("src/api/new.py", "new\n", cwd=wt)
    before = os.stat(index), index.read_bytes()
    assert row(snapshot(repo), "api")["dirty"] == ["src/api/new.py"]
    (copy,) = private_copies(wt)
    assert b"UNTR" in copy.read_bytes()  # the untracked cache, written by git into the copy only
    after = os.stat(index)
    assert (after.st_ino, after.st_mtime_ns, index.read_bytes()) == (before[0].st_ino, before[0].st_mtime_ns, before[1])

    # Untracked files come and go: the cache follows (directory times), one by one in a new directory.
    repo.write("src/api/pkg/deep/a.py", "a\n", cwd=wt)
    (wt / "src/api/new.py").unlink()
    assert row(snapshot(repo), "api")["dirty"] == ["src/api/pkg/deep/a.py"]
    assert private_copies(wt) == [copy]

    # The agent stages: its index is replaced, so the copy is taken again and the staged state shows.
    repo.git("add", "src/api/pkg/deep/a.py", cwd=wt)
    repo.write("src/api/app.py", "edited\n", cwd=wt)
    api = row(snapshot(repo), "api")
    assert sorted(api["dirty"]) == ["src/api/app.py", "src/api/pkg/deep/a.py"]
    (fresh,) = private_copies(wt)  # the copy of the old index is gone
    assert fresh != copy
    ahead = api["ahead"]
    commit(repo, wt, "src/api/app.py", "edited\n", "agent commits")
    api = row(snapshot(repo), "api")
    assert api["dirty"] == [] and api["ahead"] == ahead + 1


def test_stopping_a_stream_removes_its_index_copies(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    snapshot(repo)
    (copy,) = private_copies(wt)
    r = run_cli(["stop", "api"], repo.root)
    assert r.code == 0, r.err  # the copies are not the agent's work: stop does not call the worktree dirty
    assert not copy.exists() and not copy.parent.exists()


def test_old_copies_and_a_killed_gits_lock_go_only_when_no_dashboard_reads(repo: Repo) -> None:
    """Another dashboard (a real process holding the readers' shared flock) may be reading a copy:
    nothing is removed under it. Once it is gone, the next status sweeps what is stale."""
    start(repo, "api")
    wt = repo.worktree("api")
    snapshot(repo)
    (copy,) = private_copies(wt)
    lock = copy.with_name(copy.name + ".lock")
    lock.write_bytes(b"")  # as a git status killed while writing the copy leaves it
    reader = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_SH); print('reading', flush=True); sys.stdin.read()",
         str(copy.parent / status_mod.READERS_FILE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        repo.git("add", ".streams", cwd=wt)  # the agent's index is replaced: a new copy
        repo.write("src/api/new.py", "new\n", cwd=wt)
        assert row(snapshot(repo), "api")["dirty"] == ["src/api/new.py"]
        names = [p.name for p in private_copies(wt)]
        assert copy.name in names and lock.name in names and len(names) == 3  # and the new copy
    finally:
        reader.communicate("")
    snapshot(repo)
    names = [p.name for p in private_copies(wt)]
    assert copy.name not in names and lock.name not in names and len(names) == 1


def test_untracked_cache_off_in_the_config_is_honoured(repo: Repo) -> None:
    repo.git("config", "core.untrackedCache", "false")
    start(repo, "api")
    wt = repo.worktree("api")
    repo.write("src/api/new.py", "new\n", cwd=wt)
    assert row(snapshot(repo), "api")["dirty"] == ["src/api/new.py"]
    (copy,) = private_copies(wt)
    assert b"UNTR" not in copy.read_bytes()


def test_a_split_index_is_read_in_place_and_nothing_is_written_beside_it(repo: Repo) -> None:
    start(repo, "api")
    wt = repo.worktree("api")
    repo.git("update-index", "--split-index", cwd=wt)
    repo.write("src/api/app.py", "edited\n", cwd=wt)
    repo.git("add", "src/api/app.py", cwd=wt)
    repo.write("src/api/new.py", "new\n", cwd=wt)
    assert sorted(row(snapshot(repo), "api")["dirty"]) == ["src/api/app.py", "src/api/new.py"]
    assert private_copies(wt) == []


def test_the_dashboards_own_index_writes_do_not_wake_the_live_view(repo: Repo) -> None:
    """The copies live in the common dir the live view watches: writing them must not be a change,
    or every refresh would cause the next one."""
    from coordinator.dashboard import Dashboard
    from streams.workspace import discover, load_config

    start(repo, "api")
    wt = repo.worktree("api")
    repo.write("src/api/new.py", "new\n", cwd=wt)
    ws = discover(repo.root)
    config = load_config(ws)
    with status_mod.Collector(ws, config) as collector, Dashboard(ws, config, collector, files=True) as dashboard:
        wake, watcher = dashboard.wake, dashboard.files
        assert watcher is not None
        dashboard.refresh()  # collects, then watches the worktrees it shows
        time.sleep(0.5)
        wake.wait(0.01)  # drop what starting the watches produced
        watcher.take_changed()
        shutil.rmtree(private_copies(wt)[0].parent)
        collector.collect()  # takes the copy and writes the untracked cache into it
        assert b"UNTR" in private_copies(wt)[0].read_bytes()
        assert wake.wait(1.0) == set() and watcher.take_changed() == set()
        repo.write("src/api/other.py", "x\n", cwd=wt)  # and a real change still wakes it
        assert wake.wait(2.0) == {"change"} and watcher.take_changed() == {wt}


# --- JSON contract ------------------------------------------------------------------------------------------


def test_every_json_field_is_documented(repo: Repo) -> None:
    start(repo, "api")
    data = snapshot(repo)
    doc = dashboard.__doc__ or ""  # the model's module documents its JSON fields
    documented = {ln.split()[0] for ln in doc.splitlines() if ln[:1].isalpha() and "  " in ln}
    for key in data:
        if key != "summary" and key != "streams":
            assert key in documented, key
    for key in data["summary"]:
        assert f"summary.{key}" in documented, key
    for key in data["streams"][0]:
        assert f"streams[].{key}" in documented, key
    names = {f.name for f in dataclasses.fields(status_mod.StreamStatus)} | set(status_mod.StreamStatus.json_properties)
    assert set(data["streams"][0]) == names
    assert set(data["summary"]) == {f.name for f in dataclasses.fields(status_mod.Summary)} | set(
        status_mod.Summary.json_properties
    )


def test_rich_rendering_has_bars_and_colour_only_without_no_color(repo: Repo) -> None:
    from rich.console import Console

    from streams.cli.status import render_rich
    from streams.workspace import discover, load_config

    start(repo, "api")
    write_progress(repo, "api", status="in_progress", completion=50, current="forms")
    ws = discover(repo.root)
    snap = status_mod.collect(ws, load_config(ws))
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=True, color_system="standard", no_color=False).print(render_rich(snap))
    shown = buf.getvalue()
    assert "█████░░░░░  50%" in shown and "forms" in shown and "\x1b[" in shown
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=True, no_color=True).print(render_rich(snap))
    assert "\x1b[3" not in buf.getvalue()  # no foreground colours; bold may remain


# --- watching, off a terminal ------------------------------------------------------------------------------


def test_watch_off_a_terminal_prints_plain_snapshots_until_ctrl_c(repo: Repo) -> None:
    """A plain snapshot first, then one whenever something changed (tests/test_status_watch.py has
    the rest of the watch's contract)."""
    start(repo, "api")
    proc, lines = watch_status(repo, "0.2")
    try:
        wait_for(lambda: sum(ln.startswith("3 streams") for ln in lines) >= 1, "the first snapshot")
        commit(repo, repo.worktree("api"), "src/api/app.py", "v2\n")
        wait_for(lambda: any("+1 -0" in ln for ln in lines), "the new commit")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not any("\x1b[" in ln for ln in lines)  # plain text: no escape sequences


def test_watch_picks_up_an_edited_streams_yaml_and_survives_a_broken_one(repo: Repo) -> None:
    start(repo, "api")
    proc, lines = watch_status(repo, "0.2", "--json")
    config = repo.root / "streams.yaml"
    try:
        wait_for(lambda: len(lines) >= 1, "the first snapshot")
        config.write_text(config.read_text() + "  extra:\n    owns: [extra/**]\n")
        wait_for(lambda: "not in force until committed" in lines[-1], "the warning about the uncommitted edit")
        repo.commit_all("streams: extra")
        wait_for(lambda: '"name": "extra"' in lines[-1], "the added stream")
        config.write_text("version: [\n")
        repo.commit_all("streams: broken")
        wait_for(lambda: "cannot be used" in lines[-1], "the warning about the broken file")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    last = json.loads(lines[-1])["data"]
    assert row(last, "extra")["state"] == "not started"  # the previous configuration is kept
    assert any("streams.yaml changed but cannot be used" in w for w in last["warnings"])
    assert proc.returncode == 130, err


def test_agent_committing_in_a_loop_never_hits_index_lock(tmp_path: Path) -> None:
    """30 real commits by a real process while three `status --watch` processes poll its worktree.

    With 2,000 files in the worktree a `git status` that may take optional locks holds index.lock
    for a while on every poll (it refreshes and rewrites the index the agent keeps changing): with
    optional locks left on, this agent fails on index.lock in practically every run.
    """
    files = {**DEFAULT_FILES, **{f"src/api/d{i % 20}/f{i}.py": f"{i}\n" for i in range(2000)}}
    repo = make_repo(tmp_path, files)
    start(repo, "api")
    wt = repo.worktree("api")
    watchers, outputs = zip(*(watch_status(repo, "0.1", "--json") for _ in range(3)), strict=True)
    script = (
        "set -e\n"
        "for i in $(seq 1 30); do\n"
        "  echo $i >> src/api/app.py; echo $i > src/api/f$i.py\n"
        "  git add -A src/api\n"
        "  git commit -q -m c$i\n"
        "done\n"
    )
    errors: list[str] = []
    try:
        wait_for(lambda: all(outputs), "the first snapshots")
        agent = subprocess.run(["bash", "-c", script], cwd=wt, capture_output=True, text=True, check=False, timeout=300)
        wait_for(lambda: any('"ahead": 30' in ln for ln in outputs[0]), "a snapshot after the last commit")
    finally:
        for w in watchers:
            w.send_signal(signal.SIGINT)
        for w in watchers:
            errors.append(w.communicate(timeout=30)[1])
    assert agent.returncode == 0, agent.stderr
    assert "index.lock" not in agent.stderr
    assert all(w.returncode == 130 for w in watchers), errors
    assert all(json.loads(ln)["ok"] for lines in outputs for ln in lines)
    # Three dashboards share the copies of an index that changes all the time: none ever reads a copy
    # another removed (git would take a missing index for an empty one: 2,000 files staged for deletion).
    dirty = [
        s["dirty"] for lines in outputs for ln in lines for s in json.loads(ln)["data"]["streams"] if s["name"] == "api"
    ]
    assert max(len(d) for d in dirty) <= 2, max(dirty, key=len)[:5]


def test_a_halt_disappears_when_the_human_finished_it_by_hand_or_stopped_the_stream(repo: Repo) -> None:
    start(repo, "api", "docs")
    for name, rel in (("api", "src/api/app.py"), ("docs", "docs/index.md")):
        commit(repo, repo.worktree(name), rel, "stream side\n")
        repo.write(rel, "base side\n")
    repo.commit_all("base changes the same lines")
    assert run_cli(["sync"], repo.root).code == 4
    assert {s["name"] for s in snapshot(repo)["streams"] if s["halted"]} == {"api", "docs"}
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "resolved\n", cwd=wt)
    repo.git("add", "src/api/app.py", cwd=wt)
    env = {**os.environ, "GIT_EDITOR": "true"}
    assert subprocess.run(["git", "rebase", "--continue"], cwd=wt, env=env, capture_output=True).returncode == 0
    assert run_cli(["stop", "docs", "--force"], repo.root).code == 0
    data = snapshot(repo)
    assert [s["name"] for s in data["streams"] if s["halted"]] == []
    assert data["summary"]["halted"] == 0
    assert "HALTED" not in text(repo)
