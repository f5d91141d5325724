"""Watching every started stream worktree for out-of-scope edits, the moment a file is written.

``Watcher`` puts a watchdog observer (inotify on Linux) on each stream worktree and reports, through
a callback, each change a stream may not commit, before any commit: a file written and closed,
created, deleted or moved, outside the stream's scope (``streams.scope.check_paths``: the same
rules as the hooks, live leases included).

- Events are filtered (closed-after-write, created, deleted, moved; nothing under ``.git``) and
  debounced: a path is judged once its events have been quiet for ``debounce`` seconds, or at the
  latest ``max_delay`` after its first event, so an editor's write-rename-chmod burst is one report.
- A batch is confirmed with ``git status`` on exactly those paths (optional locks off, so an agent
  never finds our ``index.lock``): files git ignores and writes that leave a file as committed are
  not reported, and a path is reported again only after it was clean or allowed in between.
- Worktrees that appear or disappear (``streams start``/``stop``) are followed, by rescanning
  ``<git-common-dir>/worktrees`` every ``rescan`` seconds; an edited ``streams.yaml`` is reloaded.
- When the kernel's inotify limits are hit (ENOSPC: watches, EMFILE: instances) a worktree is
  watched by a ``PollingObserver`` instead, and a notice says so.

The watching is ``coordinator.fswatch`` (the worktrees, the polling fallback); the timing is
``coordinator.loop`` (a tick every ``min(debounce / 2, 0.05)`` s, the rescan timer, the config
reload). This module is the scope logic on top. Core logic only: the CLI (``streams watch``) prints
what the callback receives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coordinator.fswatch import (
    CLOSED,
    CREATED,
    DELETED,
    GONE,
    MODIFIED,
    MOVED,
    WATCHING,
    FileEvent,
    FSWatch,
    ObserverLike,
    stream_worktree,
)
from coordinator.loop import ConfigWatch, Loop, Tick
from streams import git
from streams.config import Config
from streams.kernel.errors import StreamsError
from streams.scope import check_paths
from streams.workspace import Workspace

STATUS_PATHSPEC_MAX = 200  # more pending paths than this: one `git status` of the whole worktree


@dataclass(frozen=True)
class ScopeEvent:
    """A change in a stream worktree that the stream may not commit."""

    time: float
    stream: str
    worktree: Path
    path: str  # relative to the worktree root
    change: str  # created | modified | deleted | added | type changed
    reason: str  # as the hooks say it: "owned by ui", "unowned", …
    fix: str
    kind: str = "violation"


@dataclass(frozen=True)
class WorktreeEvent:
    """A worktree the watcher started or stopped watching."""

    time: float
    stream: str
    worktree: Path
    action: str  # watching | gone
    observer: str  # inotify | polling
    note: str = ""  # e.g. why polling
    kind: str = "worktree"


@dataclass(frozen=True)
class WatchWarning:
    time: float
    message: str
    kind: str = "warning"


WatchEventT = ScopeEvent | WorktreeEvent | WatchWarning


_WANTED = {CLOSED, CREATED, DELETED, MOVED}
_WANTED_POLLED = _WANTED | {MODIFIED}
RESCAN = "rescan"  # the loop's timer: follow worktrees as streams start and stop


class Watcher:
    """See the module doc. ``on_event`` is called from the thread that runs the loop (``run``, or
    the one ``start`` starts), and from ``start`` and ``follow``."""

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        on_event: Callable[[WatchEventT], None],
        *,
        debounce: float = 0.1,
        max_delay: float = 0.4,
        rescan: float = 0.5,
        polling: bool = False,
        poll_interval: float = 0.5,
        observer_factory: Callable[[], ObserverLike] | None = None,
    ) -> None:
        self.ws = ws
        self.on_event = on_event
        self.debounce = debounce
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._pending: dict[tuple[Path, str], tuple[float, float]] = {}  # (top, path) -> (first, last)
        self._reported: dict[tuple[Path, str], str] = {}  # (top, path) -> reason last reported
        self._config = ConfigWatch(ws, config)
        self._files = FSWatch(
            ws.common_dir,
            self._on_file,
            polling=polling,
            poll_interval=poll_interval,
            observer_factory=observer_factory,
        )
        self._loop = Loop(min(debounce / 2, 0.05), config=self._config)
        self._loop.every(RESCAN, rescan)
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> Config:
        """The configuration edits are judged by: streams.yaml, reloaded when it changes."""
        return self._config.config

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch every started stream worktree, then judge edits and follow worktrees on a thread
        of its own; returns once all are watched."""
        self.follow()
        self._thread = threading.Thread(target=self.run, name="streams-watch", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Judge edits and follow worktrees in this thread until ``stop`` (or Ctrl-C)."""
        self._loop.run(self._tick)

    def stop(self) -> None:
        self._loop.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._files.stop()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def watched(self) -> dict[Path, str]:
        return {top: lw.stream for top, lw in self._files.worktrees.items() if lw.stream is not None}

    # --- events ---------------------------------------------------------------------------------

    def _on_file(self, ev: FileEvent) -> None:
        """A change in a worktree (observer threads). Only finished writes count (a polling observer
        sees no close events: a modification is the best it can say), and of a directory only its
        move or deletion."""
        wanted = _WANTED_POLLED if ev.polled else _WANTED
        if ev.kind not in wanted or not ev.rel or ev.worktree is None:
            return
        if ev.is_directory and ev.kind not in (MOVED, DELETED):
            return
        self.note(ev.worktree, ev.rel)

    def note(self, top: Path, path: str) -> None:
        """Record an event on ``path`` in worktree ``top`` (called from observer threads)."""
        now = time.monotonic()
        with self._lock:
            first = self._pending.get((top, path), (now, now))[0]
            self._pending[(top, path)] = (first, now)

    def _due(self) -> dict[Path, list[str]]:
        now = time.monotonic()
        due: dict[Path, list[str]] = {}
        with self._lock:
            for key, (first, last) in list(self._pending.items()):
                if now - last >= self.debounce or now - first >= self.max_delay:
                    del self._pending[key]
                    due.setdefault(key[0], []).append(key[1])
        return due

    def _tick(self, tick: Tick) -> None:
        try:
            if tick.reloaded and self._config.problem:
                self.on_event(WatchWarning(time.time(), self._config.problem))
            for top, paths in self._due().items():
                self._judge(top, paths)
            if RESCAN in tick.reasons:
                self.follow()
        except Exception as exc:  # noqa: BLE001 - keep watching; say what went wrong
            self.on_event(WatchWarning(time.time(), f"{type(exc).__name__}: {exc}"))

    def _judge(self, top: Path, paths: list[str]) -> None:
        stream = self.watched.get(top)
        if stream is None:
            return
        changed = self._changed(top, paths)
        if changed is None:
            return  # the worktree vanished meanwhile
        if len(paths) <= STATUS_PATHSPEC_MAX:
            prefixes = tuple(p + "/" for p in paths)
            relevant = {p: c for p, c in changed.items() if p in paths or p.startswith(prefixes)}
        else:
            relevant = changed
        try:
            found = {v.path: v for v in check_paths(self.ws, self.config, stream, relevant)}
        except StreamsError as exc:  # e.g. the stream left streams.yaml
            self.on_event(WatchWarning(time.time(), f"{stream}: {exc.message}"))
            return
        with self._lock:
            for p in paths:  # clean again, or allowed now: report it afresh next time
                if p not in found:
                    self._reported.pop((top, p), None)
            fresh = [v for v in found.values() if self._reported.get((top, v.path)) != v.reason]
            for v in fresh:
                self._reported[(top, v.path)] = v.reason
        now = time.time()
        for v in sorted(fresh, key=lambda v: v.path):
            self.on_event(ScopeEvent(now, stream, top, v.path, relevant.get(v.path, "modified"), v.reason, v.fix))

    def _changed(self, top: Path, paths: list[str]) -> dict[str, str] | None:
        """``{path: change}`` for the paths (or everything, for many) that differ from HEAD and are not ignored."""
        try:
            entries = git.status(top, paths=paths if len(paths) <= STATUS_PATHSPEC_MAX else None, renames=False)
        except StreamsError:
            return None
        return {e.path: _change(e.xy) for e in entries}

    # --- worktrees ------------------------------------------------------------------------------

    def follow(self) -> None:
        """Watch the stream worktrees there are now, and no others (done every ``rescan`` s while
        the loop runs)."""
        for change in self._files.follow(stream_worktree):
            top, stream, now = change.root, change.stream or "?", time.time()
            if change.action == GONE:
                with self._lock:
                    for key in [k for k in self._pending if k[0] == top]:
                        del self._pending[key]
                    for key in [k for k in self._reported if k[0] == top]:
                        del self._reported[key]
                self.on_event(WorktreeEvent(now, stream, top, "gone", change.observer))
            elif change.action == WATCHING:
                self.on_event(WorktreeEvent(now, stream, top, "watching", change.observer, change.note))
            else:
                self.on_event(WatchWarning(now, f"{stream}: {change.note}"))


def _change(xy: str) -> str:
    if xy == "??":
        return "created"
    if "D" in xy:
        return "deleted"
    if "A" in xy:
        return "added"
    if "T" in xy:
        return "type changed"
    return "modified"
