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

Core logic only: the CLI (``streams watch``) prints what the callback receives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)

from streams import git
from streams.config import Config
from streams.kernel.errors import StreamsError
from streams.kernel.paths import MARKER_FILE
from streams.scope import check_paths
from streams.workspace import Workspace, load_config

LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM)
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


class ObserverLike(Protocol):
    def schedule(self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = False) -> Any: ...
    def unschedule(self, watch: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def stream_worktrees(common_dir: Path) -> dict[Path, str]:
    """Every started stream worktree, ``{worktree root: stream}``, read from the common dir (no git process)."""
    found: dict[Path, str] = {}
    try:
        entries = list(os.scandir(common_dir / "worktrees"))
    except OSError:
        return found
    for entry in entries:
        base = Path(entry.path)
        try:
            name = (base / MARKER_FILE).read_text(encoding="utf-8").strip()
            dotgit = (base / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        top = Path(dotgit).parent
        if name and top.is_dir():
            found[top] = name
    return found


_WANTED = {EVENT_TYPE_CLOSED, EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MOVED}


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, top: Path, polling: bool) -> None:
        self.watcher = watcher
        self.top = top
        self.root = str(top)
        # A polling observer sees no close events: a modification is the best it can say.
        self.wanted = _WANTED | {EVENT_TYPE_MODIFIED} if polling else _WANTED

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type not in self.wanted:
            return
        if event.is_directory and event.event_type not in (EVENT_TYPE_MOVED, EVENT_TYPE_DELETED):
            return
        paths = [event.src_path]
        if event.event_type == EVENT_TYPE_MOVED and event.dest_path:
            paths.append(event.dest_path)
        for raw in paths:
            full = os.fsdecode(raw)
            rel = os.path.relpath(full, self.root)
            if rel == "." or rel.startswith(".."):
                continue
            rel = rel.replace(os.sep, "/")
            if ".git" in rel.split("/"):
                continue
            self.watcher.note(self.top, rel)


class Watcher:
    """See the module doc. ``on_event`` is called from the watcher's own thread."""

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
        self.config = config
        self.on_event = on_event
        self.debounce = debounce
        self.max_delay = max_delay
        self.rescan_every = rescan
        self.force_polling = polling
        self.poll_interval = poll_interval
        self._observer_factory = observer_factory
        self._lock = threading.Lock()
        self._pending: dict[tuple[Path, str], tuple[float, float]] = {}  # (top, path) -> (first, last)
        self._reported: dict[tuple[Path, str], str] = {}  # (top, path) -> reason last reported
        self._watches: dict[Path, tuple[str, ObserverLike, Any]] = {}  # top -> (stream, observer, watch)
        self._native: ObserverLike | None = None
        self._polling: ObserverLike | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._config_stamp = self._stamp()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch every started stream worktree; returns once all are watched."""
        self._sync_worktrees()
        self._thread = threading.Thread(target=self._run, name="streams-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for obs in (self._native, self._polling):
            if obs is not None:
                obs.stop()
        for obs in (self._native, self._polling):
            if obs is not None:
                obs.join(timeout=5)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def watched(self) -> dict[Path, str]:
        with self._lock:
            return {top: stream for top, (stream, _, _) in self._watches.items()}

    # --- events ---------------------------------------------------------------------------------

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

    def _run(self) -> None:
        next_scan = time.monotonic() + self.rescan_every
        while not self._stop.wait(min(self.debounce / 2, 0.05)):
            try:
                for top, paths in self._due().items():
                    self._judge(top, paths)
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self.rescan_every
                    self._reload_config()
                    self._sync_worktrees()
            except Exception as exc:  # noqa: BLE001 - keep watching; say what went wrong
                self.on_event(WatchWarning(time.time(), f"{type(exc).__name__}: {exc}"))

    def _judge(self, top: Path, paths: list[str]) -> None:
        with self._lock:
            entry = self._watches.get(top)
        if entry is None:
            return
        stream = entry[0]
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
        args = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]
        if len(paths) <= STATUS_PATHSPEC_MAX:
            args += ["--", *(f":(literal){p}" for p in paths)]
        try:
            res = git.run(*args, cwd=top, optional_locks=False, check=False)
        except StreamsError:
            return None
        if res.returncode != 0:
            return None
        changed: dict[str, str] = {}
        for rec in res.stdout.split(b"\0"):
            if len(rec) < 4:
                continue
            xy = rec[:2].decode("ascii", "replace")
            path = rec[3:].decode("utf-8", "surrogateescape")
            changed[path] = _change(xy)
        return changed

    # --- worktrees and config -------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.ws.config_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _reload_config(self) -> None:
        stamp = self._stamp()
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            self.config = load_config(self.ws, check_tracked=False)
        except StreamsError as exc:
            self.on_event(WatchWarning(time.time(), f"streams.yaml changed but cannot be used: {exc.message}"))

    def _sync_worktrees(self) -> None:
        current = stream_worktrees(self.ws.common_dir)
        with self._lock:
            known = dict(self._watches)
        for top, (stream, observer, watch) in known.items():
            if current.get(top) != stream:
                with contextlib.suppress(KeyError, OSError):
                    observer.unschedule(watch)
                with self._lock:
                    del self._watches[top]
                    for key in [k for k in self._pending if k[0] == top]:
                        del self._pending[key]
                    for key in [k for k in self._reported if k[0] == top]:
                        del self._reported[key]
                self.on_event(WorktreeEvent(time.time(), stream, top, "gone", self._kind(observer)))
        for top, stream in sorted(current.items()):
            if top in known and known[top][0] == stream:
                continue
            self._watch(top, stream)

    def _kind(self, observer: ObserverLike) -> str:
        return "polling" if observer is self._polling else "inotify"

    def _watch(self, top: Path, stream: str) -> None:
        note = ""
        if not self.force_polling:
            try:
                native = self._native_observer()
                watch = native.schedule(_Handler(self, top, polling=False), str(top), recursive=True)
            except OSError as exc:
                if exc.errno not in LIMIT_ERRNOS:
                    raise
                note = f"kernel watch limit reached ({exc.strerror or exc}); polling every {self.poll_interval:g} s instead"
            else:
                with self._lock:
                    self._watches[top] = (stream, native, watch)
                self.on_event(WorktreeEvent(time.time(), stream, top, "watching", "inotify"))
                return
        polling = self._polling_observer()
        watch = polling.schedule(_Handler(self, top, polling=True), str(top), recursive=True)
        with self._lock:
            self._watches[top] = (stream, polling, watch)
        self.on_event(WorktreeEvent(time.time(), stream, top, "watching", "polling", note))

    def _native_observer(self) -> ObserverLike:
        if self._native is None:
            if self._observer_factory is not None:
                obs = self._observer_factory()
            else:
                from watchdog.observers import Observer

                obs = Observer()
            obs.start()
            self._native = obs
        return self._native

    def _polling_observer(self) -> ObserverLike:
        if self._polling is None:
            from watchdog.observers.polling import PollingObserver

            obs = PollingObserver(timeout=self.poll_interval)
            obs.start()
            self._polling = obs
        return self._polling


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
