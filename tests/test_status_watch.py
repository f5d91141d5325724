"""`streams status --watch` in every output mode: one incremental refresh (only the worktrees whose
files changed), a line per change (NDJSON with --json), and how it ends (signals, a closed stdout).

Real processes and real file events throughout; every wait has a generous limit and no test
asserts a speed (scripts/bench status measures the CPU a refresh costs)."""

from __future__ import annotations

import errno
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.dashboard import Dashboard
from streams import status as status_mod
from streams.dashboard import steady
from streams.git import door
from streams.workspace import discover, load_config
from tests.conftest import Repo, run_cli, wait_for, watch_status


def start(repo: Repo, *names: str) -> None:
    r = run_cli(["start", *names], repo.root)
    assert r.code == 0, r.err


def api_of(line: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in json.loads(line)["data"]["streams"] if s["name"] == "api")
    return found


def last_api(lines: list[str]) -> dict[str, Any] | None:
    return api_of(lines[-1]) if lines else None


def without_clock(line: str) -> dict[str, Any]:
    """A line's data without the fields that change with the clock alone (``steady``'s list)."""
    data: dict[str, Any] = json.loads(line)["data"]
    data["time"] = ""
    for s in data["streams"]:
        s["last_commit_age"] = None
        for lk in s["locks"]:
            lk["seconds_left"] = 0
    if data["run"]:
        data["run"]["elapsed"], data["run"]["remaining"] = 0, None
    return data


# --- NDJSON: a line per change, every change seen ------------------------------------------------


def test_json_watch_prints_a_line_per_change_and_sees_edits_commits_and_leases(repo: Repo) -> None:
    """With an interval far longer than the test, every update must come from file events: an edit
    in the worktree, a commit there, a lease taken. Each line is one envelope; no two lines in a
    row say the same thing."""
    start(repo, "api")
    wt = repo.worktree("api")
    proc, lines = watch_status(repo, "10m", "--json")
    try:
        wait_for(lambda: lines, "the first snapshot")
        assert api_of(lines[0])["dirty"] == []
        repo.write("src/api/new.py", "new\n", cwd=wt)
        wait_for(lambda: (last_api(lines) or {}).get("dirty") == ["src/api/new.py"], "the edit")
        repo.git("add", "src/api/new.py", cwd=wt)
        repo.git("commit", "-q", "-m", "new", cwd=wt)
        head = repo.git("rev-parse", "HEAD", cwd=wt).strip()
        wait_for(lambda: (last_api(lines) or {}).get("head") == head, "the commit")
        assert (last_api(lines) or {})["dirty"] == []
        r = run_cli(["lock", "pyproject.toml"], wt)
        assert r.code == 0, r.err
        wait_for(
            lambda: [lk["path"] for lk in (last_api(lines) or {}).get("locks", [])] == ["pyproject.toml"], "the lease"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    envelopes = [json.loads(ln) for ln in lines]
    assert all(ln.endswith("\n") for ln in lines)
    assert all(e["command"] == "status" and e["ok"] and e["version"] == 1 for e in envelopes)
    steady_lines = [without_clock(ln) for ln in lines]
    assert all(a != b for a, b in itertools.pairwise(steady_lines)), "a line that changed nothing"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_json_watch_ends_with_130_on_sigint_and_sigterm_after_whole_lines(repo: Repo, signum: int) -> None:
    start(repo, "api")
    proc, lines = watch_status(repo, "0.2", "--json")
    try:
        wait_for(lambda: lines, "the first snapshot")
        repo.write("src/api/x.py", "x\n", cwd=repo.worktree("api"))  # something to refresh meanwhile
    finally:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "streams: interrupted", err
    assert "Traceback" not in err
    for line in lines:
        assert line.endswith("\n") and json.loads(line)["ok"]


def test_json_watch_ends_with_0_once_its_reader_is_gone(repo: Repo) -> None:
    """`streams status --watch --json | head -1`: the first line, then the watch notices its
    reader left (even with nothing new to print) and exits 0 without a word."""
    start(repo, "api")
    proc = subprocess.Popen(
        [
            "bash",
            "-c",
            f"set -o pipefail; '{sys.executable}' -m streams status --watch --json --interval 0.2 | head -1",
        ],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err == ""
    (line,) = out.splitlines()
    assert json.loads(line)["command"] == "status"


def test_plain_watch_off_a_terminal_prints_only_when_something_changed(repo: Repo) -> None:
    start(repo, "api")
    proc, lines = watch_status(repo, "0.2")
    try:
        wait_for(lambda: any(ln.startswith("3 streams") for ln in lines), "the first snapshot")
        repo.write("src/api/x.py", "x\n", cwd=repo.worktree("api"))
        wait_for(lambda: sum(ln.startswith("3 streams") for ln in lines) >= 2, "the snapshot after the edit")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    snapshots = "".join(lines).split("3 streams")[1:]
    assert all(a != b for a, b in itertools.pairwise(snapshots))


# --- the refresh itself: only what changed ---------------------------------------------------------


class GitCalls:
    """Every git process the code under test starts (the real door runs each one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[tuple[str, ...], Path]] = []
        real = door.run

        def counting(*args: str, cwd: Path | str, **kwargs: Any) -> door.Result:
            self.calls.append((args, Path(cwd)))
            return real(*args, cwd=cwd, **kwargs)

        monkeypatch.setattr(door, "run", counting)

    def statuses(self) -> list[Path]:
        return [cwd for args, cwd in self.calls if "status" in args]

    def clear(self) -> None:
        self.calls.clear()


def settle(dashboard: Dashboard) -> None:
    """Let the watches' first events arrive and drop them."""
    time.sleep(1.0)
    dashboard.wake.wait(0.01)


def test_a_refresh_runs_git_status_only_where_files_changed_and_nothing_when_nothing_did(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_mod, "RACY_SECONDS", 0.0)  # files made a moment ago: trust their stat at once
    start(repo, "api", "docs")
    api, docs = repo.worktree("api"), repo.worktree("docs")
    ws = discover(repo.root)
    config = load_config(ws)
    git_calls = GitCalls(monkeypatch)
    with status_mod.Collector(ws, config, predict=True) as collector, Dashboard(ws, config, collector) as dashboard:
        dashboard.refresh()  # everything, then the worktrees are watched
        settle(dashboard)
        dashboard.refresh()  # newly watched worktrees count as changed: read once more
        settle(dashboard)
        git_calls.clear()
        snap = dashboard.refresh()
        assert git_calls.calls == []  # nothing changed: no git process at all
        assert snap is not None

        repo.write("src/api/new.py", "new\n", cwd=api)
        assert "change" in dashboard.wake.wait(30.0)
        git_calls.clear()
        snap = dashboard.refresh()
        assert git_calls.statuses() == [api]
        assert [args[0] for args, _ in git_calls.calls] == ["-c"]  # the status alone: refs and worktrees unchanged
        assert snap is not None and {s.name: s.dirty for s in snap.streams}["api"] == ("src/api/new.py",)

        repo.git("add", "src/api/new.py", cwd=api)
        repo.git("commit", "-q", "-m", "new", cwd=api)
        assert "change" in dashboard.wake.wait(30.0)
        git_calls.clear()
        snap = dashboard.refresh()
        assert git_calls.statuses() == [api]
        assert snap is not None
        rows = {s.name: s for s in snap.streams}
        assert rows["api"].dirty == () and rows["api"].head == repo.git("rev-parse", "HEAD", cwd=api).strip()
        assert rows["docs"].dirty == ()
    assert docs not in git_calls.statuses()


def test_a_refresh_without_file_events_still_sees_a_commit_through_the_index_and_refs(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector alone, told that no worktree's files changed: a commit still shows, because
    the worktree's index and the branch's ref file changed (the stat stamps)."""
    start(repo, "api")
    api = repo.worktree("api")
    ws = discover(repo.root)
    with status_mod.Collector(ws, load_config(ws)) as collector:
        collector.collect()
        repo.write("src/api/app.py", "v2\n", cwd=api)
        repo.git("commit", "-q", "-am", "v2", cwd=api)
        snap = collector.collect(unchanged=lambda _p: True)
    (row,) = [s for s in snap.streams if s.name == "api"]
    assert row.head == repo.git("rev-parse", "HEAD", cwd=api).strip()
    assert row.dirty == ()


def test_steady_leaves_out_only_the_clock(repo: Repo) -> None:
    start(repo, "api")
    assert run_cli(["lock", "pyproject.toml"], repo.worktree("api")).code == 0
    ws = discover(repo.root)
    with status_mod.Collector(ws, load_config(ws)) as collector:
        now = time.time()
        a, b = collector.collect(now=now), collector.collect(now=now + 30)
        assert a != b and steady(a) == steady(b)
        repo.write("src/api/x.py", "x\n", cwd=repo.worktree("api"))
        c = collector.collect(now=now + 30)
    assert steady(c) != steady(b)


# --- one for-each-ref for every stream's ahead/behind ----------------------------------------------


def test_ahead_and_behind_agree_with_rev_list_also_for_a_branch_with_its_own_upstream(repo: Repo) -> None:
    """Counted for all streams by one for-each-ref; a branch whose configuration names another
    upstream (git reads that first) is counted by its own rev-list instead: both as git says."""
    start(repo, "api", "docs", "ui")
    repo.write("src/api/app.py", "api v2\n", cwd=repo.worktree("api"))
    repo.git("commit", "-q", "-am", "api v2", cwd=repo.worktree("api"))
    repo.write("README.md", "base moved\n")
    repo.commit_all("base moved")
    repo.git("config", "branch.streams/docs.remote", ".")
    repo.git("config", "branch.streams/docs.merge", "refs/heads/elsewhere")
    ws = discover(repo.root)
    snap = status_mod.collect(ws, load_config(ws))
    for s in snap.streams:
        counts = repo.git("rev-list", "--left-right", "--count", f"main...streams/{s.name}").split()
        assert s.behind == int(counts[0]), s.name
    rows = {s.name: s for s in snap.streams}
    assert rows["api"].ahead == 1 and rows["docs"].ahead == 0 and rows["ui"].ahead == 0
    assert rows["docs"].behind == 1


def test_ahead_counts_what_stop_counts_with_one_log_for_the_streams_the_base_did_not_leave(repo: Repo) -> None:
    """AHEAD is ``worktrees.unmerged_commits`` (work commits, progress-only ones left out): asked of
    one ``git log`` for every stream whose commits are a line on top of the base, of its own
    ``rev-list --cherry-pick`` for one with a merge."""
    from streams import worktrees

    start(repo, "api", "docs", "ui")
    api, docs = repo.worktree("api"), repo.worktree("docs")
    repo.write("src/api/app.py", "api v2\n", cwd=api)
    repo.git("commit", "-q", "-am", "work", cwd=api)
    repo.write(".streams/stream-api.md", (api / ".streams/stream-api.md").read_text() + "\n", cwd=api)
    repo.git("commit", "-q", "-am", "progress only", cwd=api)
    repo.write("docs/a.md", "a\n", cwd=docs)
    repo.git("add", "docs/a.md", cwd=docs)
    repo.git("commit", "-q", "-m", "a", cwd=docs)
    repo.git("checkout", "-q", "-b", "side", "HEAD~1", cwd=docs)
    repo.write("docs/b.md", "b\n", cwd=docs)
    repo.git("add", "docs/b.md", cwd=docs)
    repo.git("commit", "-q", "-m", "b", cwd=docs)
    repo.git("checkout", "-q", "streams/docs", cwd=docs)
    repo.git("merge", "-q", "--no-ff", "side", "-m", "merge side", cwd=docs)
    ws = discover(repo.root)
    config = load_config(ws)
    rows = {s.name: s for s in status_mod.collect(ws, config).streams}
    for name in ("api", "docs", "ui"):
        assert rows[name].ahead == len(worktrees.unmerged_commits(ws, config, name)), name
    assert (rows["api"].ahead, rows["docs"].ahead, rows["ui"].ahead) == (1, 2, 0)


class ExhaustedInotify:
    """Stands in for an inotify observer whose kernel limit is reached (EMFILE on every watch)."""

    def schedule(self, event_handler: Any, path: str, *, recursive: bool = False, event_filter: Any = None) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    def unschedule(self, watch: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def test_a_worktree_that_cannot_be_watched_is_read_at_every_refresh_not_polled(repo: Repo) -> None:
    """Kernel limits reached: no polling observer walking every file every half second; the
    worktree's git status runs at each refresh instead, and the dashboard says why."""
    start(repo, "api")
    api = repo.worktree("api")
    ws = discover(repo.root)
    config = load_config(ws)
    with (
        status_mod.Collector(ws, config) as collector,
        Dashboard(ws, config, collector, observer_factory=ExhaustedInotify) as dashboard,
    ):
        dashboard.refresh()
        assert dashboard.files is not None and not dashboard.files.watching(api)
        assert any("file events unavailable" in note for note in dashboard.notes), dashboard.notes
        repo.write("src/api/new.py", "new\n", cwd=api)
        snap = dashboard.refresh()  # no event can come: read anyway
        assert snap is not None and {s.name: s.dirty for s in snap.streams}["api"] == ("src/api/new.py",)
        assert dashboard.files._polling is None  # no polling observer was started
