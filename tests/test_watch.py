"""`streams watch` and coordinator.watcher: out-of-scope writes reported within a second, before any commit.

Bounded waits, not timed assertions: each test waits up to REPORT_WAIT for the report it expects,
then asserts on what arrived.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from watchdog.events import FileSystemEventHandler

from coordinator.fswatch import stream_worktree
from coordinator.watcher import ScopeEvent, Watcher, WatchEventT, WorktreeEvent
from streams.places import linked_worktrees
from streams.workspace import discover, load_config
from tests.conftest import Repo, run_cli

REPORT_WAIT = 1.0  # the promise: an out-of-scope write is reported within one second


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start", "api", "docs"], repo.root).code == 0
    return repo


class Collector:
    def __init__(self) -> None:
        self.q: queue.Queue[WatchEventT] = queue.Queue()
        self.seen: list[WatchEventT] = []

    def put(self, ev: WatchEventT) -> None:
        self.q.put(ev)

    def wait_for(self, pred: Any, timeout: float = REPORT_WAIT) -> WatchEventT | None:
        """Collect events for up to ``timeout`` s; return the first matching ``pred`` (or None)."""
        deadline = time.monotonic() + timeout
        for ev in self.seen:
            if pred(ev):
                return ev
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(ev)
            if pred(ev):
                return ev
        return None

    def scope(self) -> list[ScopeEvent]:
        while True:
            try:
                self.seen.append(self.q.get_nowait())
            except queue.Empty:
                break
        return [e for e in self.seen if isinstance(e, ScopeEvent)]


@pytest.fixture
def watching(started: Repo) -> Iterator[tuple[Repo, Collector, Watcher]]:
    ws = discover(started.root)
    col = Collector()
    watcher = Watcher(ws, load_config(ws, check_tracked=False), col.put)
    watcher.start()
    try:
        yield started, col, watcher
    finally:
        watcher.stop()


def violation(path: str) -> Any:
    return lambda e: isinstance(e, ScopeEvent) and e.path == path


def test_stream_worktrees_are_found_from_the_common_dir(started: Repo) -> None:
    found = {lw.root: lw.stream for lw in linked_worktrees(started.root / ".git") if stream_worktree(lw)}
    assert found == {started.worktree("api"): "api", started.worktree("docs"): "docs"}


def test_out_of_scope_write_is_reported_in_scope_is_not(watching: tuple[Repo, Collector, Watcher]) -> None:
    repo, col, watcher = watching
    assert set(watcher.watched.values()) == {"api", "docs"}
    api = repo.worktree("api")
    repo.write("src/api/new.py", "mine\n", cwd=api)  # in scope: first, so any report of it would come first
    repo.write("src/ui/main.ts", "not mine\n", cwd=api)
    ev = col.wait_for(violation("src/ui/main.ts"))
    assert isinstance(ev, ScopeEvent), col.seen
    assert ev.stream == "api" and ev.reason == "owned by ui" and ev.change == "modified"
    assert ev.worktree == api
    assert [e.path for e in col.scope()] == ["src/ui/main.ts"]


def test_created_deleted_moved_and_shared(watching: tuple[Repo, Collector, Watcher]) -> None:
    repo, col, _ = watching
    docs = repo.worktree("docs")
    repo.write("NOTES.md", "new\n", cwd=docs)
    ev = col.wait_for(violation("NOTES.md"))
    assert isinstance(ev, ScopeEvent) and ev.change == "created" and ev.reason == "unowned"
    (docs / "src/api/app.py").unlink()
    ev = col.wait_for(violation("src/api/app.py"))
    assert isinstance(ev, ScopeEvent) and ev.change == "deleted" and ev.reason == "owned by api"
    os.rename(docs / "docs/index.md", docs / "src/ui/index.md")  # out of docs' scope: the destination
    ev = col.wait_for(violation("src/ui/index.md"))
    assert isinstance(ev, ScopeEvent) and ev.reason == "owned by ui"
    repo.write("pyproject.toml", "[project]\n", cwd=docs)
    ev = col.wait_for(violation("pyproject.toml"))
    assert isinstance(ev, ScopeEvent) and ev.reason == "shared: run `streams lock pyproject.toml`"
    assert "docs/index.md" not in [e.path for e in col.scope()]  # the source side is docs' own


def test_ignored_files_and_git_dirs_are_not_reported(watching: tuple[Repo, Collector, Watcher]) -> None:
    repo, col, _ = watching
    (repo.root / ".git" / "info").mkdir(exist_ok=True)
    (repo.root / ".git" / "info" / "exclude").write_text("*.log\n")
    api = repo.worktree("api")
    repo.write("src/ui/debug.log", "ignored by git\n", cwd=api)
    repo.write("vendor/x/.git/HEAD", "a nested repository's git dir\n", cwd=api)
    repo.write("README.md", "sync point\n", cwd=api)
    assert col.wait_for(violation("README.md")) is not None
    time.sleep(0.3)  # let anything that was coming arrive
    paths = [e.path for e in col.scope()]
    assert "src/ui/debug.log" not in paths and not any(".git" in p.split("/") for p in paths)


def test_a_path_is_reported_once_until_it_is_clean_again(watching: tuple[Repo, Collector, Watcher]) -> None:
    repo, col, _ = watching
    api = repo.worktree("api")
    for i in range(3):
        repo.write("docs/index.md", f"edit {i}\n", cwd=api)
        time.sleep(0.05)
    assert col.wait_for(violation("docs/index.md")) is not None
    repo.write("README.md", "sync point\n", cwd=api)
    assert col.wait_for(violation("README.md")) is not None
    assert [e.path for e in col.scope()].count("docs/index.md") == 1
    repo.git("checkout", "--", "docs/index.md", cwd=api)  # clean again
    time.sleep(0.3)
    n = len(col.scope())
    repo.write("docs/index.md", "again\n", cwd=api)
    assert col.wait_for(lambda e: isinstance(e, ScopeEvent) and e.path == "docs/index.md" and col.seen.index(e) >= n)


def test_worktrees_that_appear_and_disappear_are_followed(watching: tuple[Repo, Collector, Watcher]) -> None:
    repo, col, watcher = watching
    assert run_cli(["start", "ui"], repo.root).code == 0
    ev = col.wait_for(lambda e: isinstance(e, WorktreeEvent) and e.stream == "ui" and e.action == "watching", 3.0)
    assert ev is not None
    repo.write("src/api/app.py", "not ui's\n", cwd=repo.worktree("ui"))
    ev = col.wait_for(violation("src/api/app.py"))
    assert isinstance(ev, ScopeEvent) and ev.stream == "ui"
    assert run_cli(["stop", "docs"], repo.root).code == 0
    ev = col.wait_for(lambda e: isinstance(e, WorktreeEvent) and e.stream == "docs" and e.action == "gone", 3.0)
    assert ev is not None and "docs" not in watcher.watched.values()


class _ExhaustedInotify:
    """Stands in for an inotify observer whose kernel limit is reached (ENOSPC on every watch)."""

    def schedule(
        self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = False, event_filter: Any = None
    ) -> Any:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def unschedule(self, watch: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def test_falls_back_to_polling_when_inotify_limits_are_hit(started: Repo) -> None:
    ws = discover(started.root)
    col = Collector()
    watcher = Watcher(
        ws, load_config(ws, check_tracked=False), col.put, observer_factory=_ExhaustedInotify, poll_interval=0.2
    )
    watcher.start()
    try:
        col.scope()  # drain what start() reported
        evs = [e for e in col.seen if isinstance(e, WorktreeEvent)]
        assert {(e.stream, e.observer) for e in evs} == {("api", "polling"), ("docs", "polling")}
        assert all("watch limit" in e.note for e in evs)
        time.sleep(0.3)  # a polling observer needs one snapshot before it can see a change
        started.write("src/ui/main.ts", "polled\n", cwd=started.worktree("api"))
        ev = col.wait_for(violation("src/ui/main.ts"))
        assert isinstance(ev, ScopeEvent) and ev.stream == "api"
    finally:
        watcher.stop()


# --- the command ---------------------------------------------------------------------------------------


def _reader(stream: Any, q: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        q.put(line)


def test_watch_command_reports_json_lines_and_stops_on_ctrl_c(started: Repo) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "watch", "--json"],
        cwd=started.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_reader, args=(proc.stderr, err), daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:  # startup: imports, config, first scan (not timed)
            line = err.get(timeout=30)
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        assert "watching 2 stream worktrees: api, docs" in "".join(lines)
        started.write("src/api/app.py", "in scope\n", cwd=started.worktree("api"))
        started.write("src/ui/main.ts", "out of scope\n", cwd=started.worktree("api"))
        got = []
        end = time.monotonic() + REPORT_WAIT
        while time.monotonic() < end:
            try:
                got.append(json.loads(out.get(timeout=max(end - time.monotonic(), 0.01))))
            except queue.Empty:
                break
            if any(g["data"].get("path") == "src/ui/main.ts" for g in got):
                break
        reports = [g["data"] for g in got if g["data"].get("kind") == "violation"]
        assert [r["path"] for r in reports] == ["src/ui/main.ts"], got
        assert got[-1]["command"] == "watch" and got[-1]["ok"] is True
        assert reports[0]["stream"] == "api" and reports[0]["reason"] == "owned by ui"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    assert code == 130
