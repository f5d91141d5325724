"""The one file watcher: watchdog observers on stream worktrees (and, if asked, the common dir), with
a polling fallback, following worktrees as they come and go.

``FSWatch(common_dir, on_event)`` calls ``on_event(FileEvent)`` from the observers' threads for each
change that may matter:

- in a **worktree**: a file or directory written, created, deleted or moved; never anything under
  a ``.git`` (a worktree's ``.git`` is a file; a nested repository's internals are noise);
- in the **common dir** (``common=True``): only what signals a change of state: refs, ``HEAD`` and
  index files (commits, checkouts, staging), rebase/merge state in a worktree's private git dir,
  leases, ``streams/state.json`` and agent pid files. Objects, logs and git's own ``*.lock`` files
  are ignored, and so are reads and attribute changes everywhere: a command's own ``git status``
  never wakes it. A ref or private-git-dir change names the worktree it concerns
  (``FileEvent.worktree``).

It remembers which worktrees changed since ``take_changed()`` was last called, so that a refresh
re-reads only those (``watching(root)`` says whether a root's events can be trusted at all).

``follow(select)`` reads the linked worktrees from the common dir (``places.linked_worktrees``, no
git process), watches those ``select`` accepts and stops watching the others and those whose
directory was deleted (also when it came back at the same path); it returns what changed. When the
kernel's inotify limits are hit (ENOSPC: watches, EMFILE: instances) a root is watched by a
``PollingObserver`` instead, and a note says so (``notes``); ``polling=True`` polls everything.
With ``polling_fallback=False`` such a root is left unwatched instead (``watching`` says so), for a
consumer that has a cheaper way to read it than a polling observer's walk of every file every
``poll_interval`` (the dashboard: one ``git status`` per refresh).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from streams.kernel import paths
from streams.places import LinkedWorktree, linked_worktrees

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM)


class ObserverKind(StrEnum):
    """How a worktree is watched (``WorktreeChange.observer``; ``watch --json``'s ``observer``)."""

    INOTIFY = "inotify"  # the native observer (inotify on Linux)
    POLLING = "polling"


class Action(StrEnum):
    """What happened to a followed worktree (``WorktreeChange.action``)."""

    WATCHING = "watching"
    GONE = "gone"
    UNWATCHABLE = "unwatchable"


INOTIFY, POLLING = ObserverKind.INOTIFY, ObserverKind.POLLING
WATCHING, GONE, UNWATCHABLE = Action.WATCHING, Action.GONE, Action.UNWATCHABLE

# What a FileEvent says happened (watchdog's event types; reads and attribute changes never arrive).
CREATED, DELETED, MODIFIED, MOVED, CLOSED = "created", "deleted", "modified", "moved", "closed"

# Files in a linked worktree's private git dir (<common>/worktrees/<id>/) whose change matters.
WORKTREE_STATE_FILES = ("HEAD", "index", "rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD")
COMMON_NOISE = ("objects", "logs", "hooks", "lfs", "info", "modules")  # top-level dirs that never matter
COMMON_STATE = ("packed-refs", "HEAD", "index", "FETCH_HEAD", "ORIG_HEAD")


@dataclass(frozen=True)
class FileEvent:
    """A change under a watched root that may matter."""

    root: Path  # the watched root: a worktree, or the common dir
    rel: str  # the path relative to ``root``, with ``/`` ("" for the root itself)
    kind: str  # created | deleted | modified | moved (source and destination each) | closed (after a write)
    is_directory: bool
    polled: bool  # seen by the polling observer, which sees no close events (a write is "modified")
    worktree: Path | None  # the worktree whose state it may change (the root itself for a worktree)


@dataclass(frozen=True)
class WorktreeChange:
    """What ``follow`` did to a worktree."""

    root: Path
    action: Action
    observer: ObserverKind | str  # "" when unwatchable
    stream: str | None  # the stream its marker names
    note: str = ""  # why polling, or why it cannot be watched


class ObserverLike(Protocol):
    def schedule(
        self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = False, event_filter: Any = None
    ) -> Any: ...
    def unschedule(self, watch: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def stream_worktree(lw: LinkedWorktree) -> bool:
    """``follow``'s default: the linked worktrees a stream's marker names."""
    return lw.stream is not None


@dataclass
class _Watch:
    observer: ObserverLike
    handle: Any
    kind: str


class FSWatch:
    """See the module doc. ``on_event`` runs on an observer thread: keep it short and thread-safe."""

    def __init__(
        self,
        common_dir: Path,
        on_event: Callable[[FileEvent], None] | None = None,
        *,
        common: bool = False,
        polling: bool = False,
        poll_interval: float = 0.5,
        polling_fallback: bool = True,
        observer_factory: Callable[[], ObserverLike] | None = None,
    ) -> None:
        self.common_dir = Path(common_dir).resolve()
        self.on_event = on_event
        self.common = common
        self.force_polling = polling
        self.polling_fallback = polling_fallback
        self.poll_interval = poll_interval
        self._observer_factory = observer_factory
        self._lock = threading.Lock()
        self._watches: dict[Path, _Watch] = {}
        self._worktrees: dict[Path, LinkedWorktree] = {}  # watched worktree root -> what the common dir says
        self._roots: list[str] = []  # watched worktree roots, longest first
        self._by_id: dict[str, Path] = {}  # <common>/worktrees/<id> -> worktree root
        self._by_branch: dict[str, Path] = {}  # refs/heads/... -> root of the worktree it is checked out in
        self._changed: set[Path] = set()
        self._dead: set[Path] = set()
        self.notes: dict[Path, str] = {}  # root -> why it is polled, or why it is not watched
        self._native: ObserverLike | None = None
        self._polling: ObserverLike | None = None
        self._handlers: dict[bool, Any] = {}

    # --- what the consumers ask -------------------------------------------------------------------

    @property
    def worktrees(self) -> dict[Path, LinkedWorktree]:
        """The worktrees being watched, by root."""
        with self._lock:
            return dict(self._worktrees)

    def watching(self, root: Path) -> bool:
        """Whether ``root``'s changes are being seen (its watch is live)."""
        with self._lock:
            return root in self._watches and root not in self._dead

    def take_changed(self) -> set[Path]:
        """The worktrees with events since the last call (and those watched since)."""
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed

    # --- following worktrees ----------------------------------------------------------------------

    def follow(
        self, select: Callable[[LinkedWorktree], bool] = stream_worktree, *, branches: Mapping[str, Path] | None = None
    ) -> list[WorktreeChange]:
        """Watch the linked worktrees ``select`` accepts, and no others (see the module doc).

        ``branches`` maps a branch ref (``refs/heads/…``) to the worktree that has it checked out, so
        that a commit there counts as a change of that worktree even mid-rebase (HEAD detached).
        """
        want = {lw.root: lw for lw in linked_worktrees(self.common_dir) if select(lw)}
        with self._lock:
            dead, self._dead = self._dead, set()
        changes = self._drop(want, dead)
        if self.common and self.common_dir not in self._watches:
            self._add(self.common_dir)
        for root in sorted(set(want) - set(self._watches)):
            changes += self._add(root, want[root])
        with self._lock:
            self._by_id = {lw.id: root for root, lw in self._worktrees.items()}
            self._roots = sorted((str(r) for r in self._worktrees), key=len, reverse=True)
            self._by_branch = dict(branches or {})
        return changes

    def _drop(self, want: Mapping[Path, LinkedWorktree], dead: set[Path]) -> list[WorktreeChange]:
        changes: list[WorktreeChange] = []
        for root, w in list(self._watches.items()):
            if root == self.common_dir:
                keep = self.common
            else:  # still wanted, the same worktree (stream, private git dir), still there
                keep = want.get(root) == self._worktrees.get(root) and root.is_dir()
            if keep and root not in dead:
                continue
            with contextlib.suppress(KeyError, OSError, RuntimeError):
                w.observer.unschedule(w.handle)
            with self._lock:
                del self._watches[root]
                lw = self._worktrees.pop(root, None)
            self.notes.pop(root, None)
            if lw is not None:
                changes.append(WorktreeChange(root, GONE, w.kind, lw.stream))
        for root in [r for r in self.notes if r not in want and r != self.common_dir]:
            del self.notes[root]  # no longer wanted: forget why it could not be watched
        return changes

    def _add(self, root: Path, lw: LinkedWorktree | None = None) -> list[WorktreeChange]:
        """Watch ``root`` (a worktree, or the common dir when ``lw`` is None)."""
        stream = lw.stream if lw is not None else None
        note = ""
        watch: _Watch | None = None
        try:
            if not self.force_polling:
                try:
                    watch = self._schedule(self._native_observer(), root, INOTIFY)
                except OSError as exc:
                    if exc.errno not in LIMIT_ERRNOS or not self.polling_fallback:
                        raise
                    note = f"kernel watch limit reached ({exc.strerror or exc}); polling every {self.poll_interval:g} s instead"
            if watch is None:
                watch = self._schedule(self._polling_observer(), root, POLLING)
        except OSError as exc:
            why = f"file events unavailable for {root} ({exc.strerror or exc})"
            if self.notes.get(root) == why:
                return []  # said already
            self.notes[root] = why
            return [WorktreeChange(root, UNWATCHABLE, "", stream, why)] if lw is not None else []
        with self._lock:
            self._watches[root] = watch
            if lw is not None:
                self._worktrees[root] = lw
                self._changed.add(root)  # it may have changed before the watch began
        if note:
            self.notes[root] = note
        else:
            self.notes.pop(root, None)
        return [WorktreeChange(root, WATCHING, watch.kind, stream, note)] if lw is not None else []

    def _schedule(self, observer: ObserverLike, root: Path, kind: str) -> _Watch:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        # Writes, creations, deletions and moves only: no opens, reads or attribute changes.
        kinds = [
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileClosedEvent,
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
        ]
        handler = self._handler(kind == POLLING)
        return _Watch(observer, observer.schedule(handler, str(root), recursive=True, event_filter=kinds), kind)

    # --- events (observer threads) ----------------------------------------------------------------

    def _dispatch(self, event: FileSystemEvent, polled: bool) -> None:
        kind = event.event_type
        if kind not in (CREATED, DELETED, MODIFIED, MOVED, CLOSED):
            return
        if kind == DELETED and event.is_directory:
            self._vanished(Path(os.fsdecode(event.src_path)))
        raws = [event.src_path]
        if kind == MOVED and event.dest_path:
            raws.append(event.dest_path)
        for raw in raws:
            ev = self._classify(os.fsdecode(raw), kind, event.is_directory, polled)
            if ev is None:
                continue
            if ev.worktree is not None:
                with self._lock:
                    self._changed.add(ev.worktree)
            if self.on_event is not None:
                self.on_event(ev)

    def _classify(self, path: str, kind: str, is_directory: bool, polled: bool) -> FileEvent | None:
        """The event a change at ``path`` makes, or None when it does not matter."""
        common = str(self.common_dir)
        if path == common or path.startswith(common + os.sep):
            parts = path[len(common) + 1 :].split(os.sep)
            matters, worktree = self._common_state(parts)
            if not matters:
                return None
            return FileEvent(self.common_dir, "/".join(parts), kind, is_directory, polled, worktree)
        root = next((r for r in self._roots if path == r or path.startswith(r + os.sep)), None)
        if root is None:
            return None
        rel = path[len(root) + 1 :].replace(os.sep, "/")
        if ".git" in rel.split("/"):
            return None
        return FileEvent(Path(root), rel, kind, is_directory, polled, Path(root))

    def _common_state(self, rel: list[str]) -> tuple[bool, Path | None]:
        """(does a change at ``<common>/<rel>`` matter, the worktree whose state it may change)."""
        top, name = rel[0], rel[-1]
        if top == paths.STATE_DIR:
            wanted = len(rel) > 1 and (
                rel[1] == paths.LOCKS_DIR
                or rel[1:] == [paths.STATE_FILE]
                or (rel[1] == paths.RUNS_DIR and name in ("state.json", "latest"))  # a run's records
            )
            return wanted, None
        if name.endswith(".lock") or top in COMMON_NOISE:
            return False, None
        if top == "refs":  # a branch moved: the worktree that has it checked out sees new changes
            return True, self._by_branch.get("/".join(rel))
        if top in COMMON_STATE:
            return True, None
        if top == "worktrees" and len(rel) >= 3 and rel[2] in WORKTREE_STATE_FILES:
            return True, self._by_id.get(rel[1])
        return False, None

    def _vanished(self, path: Path) -> None:
        """A watched root's directory was deleted: its watch died with it."""
        with self._lock:
            if path in self._watches:
                self._dead.add(path)

    # --- observers --------------------------------------------------------------------------------

    def _handler(self, polled: bool) -> Any:
        if polled not in self._handlers:
            from watchdog.events import FileSystemEventHandler

            watch = self

            class Handler(FileSystemEventHandler):
                def dispatch(self, event: FileSystemEvent) -> None:
                    watch._dispatch(event, polled)

            self._handlers[polled] = Handler()
        return self._handlers[polled]

    def _native_observer(self) -> ObserverLike:
        if self._native is None:
            if self._observer_factory is not None:
                self._native = self._observer_factory()
            else:
                from watchdog.observers import Observer

                observer = Observer()
                observer.daemon = True
                self._native = observer
            self._native.start()
        return self._native

    def _polling_observer(self) -> ObserverLike:
        if self._polling is None:
            from watchdog.observers.polling import PollingObserver

            obs = PollingObserver(timeout=self.poll_interval)
            obs.daemon = True
            obs.start()
            self._polling = obs
        return self._polling

    def stop(self) -> None:
        observers = [o for o in (self._native, self._polling) if o is not None]
        self._native = self._polling = None
        for obs in observers:
            obs.stop()
        for obs in observers:
            obs.join(timeout=5)

    def __enter__(self) -> FSWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "CLOSED",
    "CREATED",
    "DELETED",
    "GONE",
    "INOTIFY",
    "MODIFIED",
    "MOVED",
    "POLLING",
    "UNWATCHABLE",
    "WATCHING",
    "Action",
    "FSWatch",
    "FileEvent",
    "ObserverKind",
    "ObserverLike",
    "WorktreeChange",
    "stream_worktree",
]
