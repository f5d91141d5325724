"""A worktree's uncommitted state for dashboards, read without touching the agent's index: one
``git status`` on the dashboard's own copy of that index (``private_index``)."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from streams import git
from streams.kernel import paths


@dataclass(frozen=True)
class WorktreeRead:
    dirty: tuple[str, ...]
    conflicted: tuple[str, ...]


READERS_FILE = paths.PRIVATE_INDEX_READERS


@contextmanager
def private_index(git_dir: Path) -> Iterator[Path | None]:
    """A copy of a worktree's index that only dashboards read and write, for as long as the
    ``with`` lasts; None when there can be none (no index, a split index whose shared part git
    would write next to the agent's, a git dir we cannot write).

    ``git status`` on the agent's own index must not write it (``GIT_OPTIONAL_LOCKS=0``: never take
    the agent's ``index.lock``), so every call would redo the whole untracked scan and re-hash any
    racily clean file. On a copy it may write: refreshed stat data and the untracked cache stay for
    the next call. The copy (a hard link until a git status first rewrites it) is named after the
    inode, size and modification time of the index it was taken from; git replaces an index by
    renaming a new file over it, so any change of the agent's index (a stage, a commit, a checkout)
    yields a new name and a fresh copy, and a name never holds a copy of another version. It lives
    in the worktree's private git dir, so removing the worktree removes it.

    Dashboards using a copy hold a shared ``flock`` on ``readers.flock``; copies of earlier versions
    (and locks or temp files of killed dashboards) are removed only under the exclusive lock, so a
    copy never vanishes under a running git status (which would read it as an empty index).
    """
    if next(git_dir.glob("sharedindex.*"), None) is not None or not (git_dir / "index").is_file():
        yield None
        return
    folder = git_dir / paths.PRIVATE_INDEX_DIR
    try:
        folder.mkdir(exist_ok=True)
        readers = os.open(folder / READERS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield None
        return
    try:
        fcntl.flock(readers, fcntl.LOCK_SH)
        copy = _take_copy(git_dir, folder)
        yield copy
        fcntl.flock(readers, fcntl.LOCK_UN)
        if copy is not None:
            _sweep(folder, readers, keep=copy.name)
    finally:
        os.close(readers)


def _take_copy(git_dir: Path, folder: Path) -> Path | None:
    """The copy of the index as it is now, made when there is none."""
    try:
        with open(git_dir / "index", "rb") as fh:
            st = os.fstat(fh.fileno())
            copy = folder / f"index-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"  # not ctime: a link moves it
            if copy.is_file():
                return copy
            tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}"
            _link_or_copy(git_dir / "index", fh, st, tmp)
            os.replace(tmp, copy)
            return copy
    except OSError:
        return None


def _link_or_copy(index: Path, fh: BinaryIO, st: os.stat_result, dest: Path) -> None:
    """A hard link to the open index when the name still holds it, else a copy. Sharing the inode is
    safe: git never writes an index in place, it renames a new file over the name, so the agent's
    next write leaves this version alone and ours never reaches the agent's."""
    try:
        os.link(index, dest)
        linked = os.stat(dest)
        if (linked.st_ino, linked.st_dev) == (st.st_ino, st.st_dev):
            return
        dest.unlink()  # the agent replaced its index in between: copy the version we opened
    except OSError:
        dest.unlink(missing_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(fh, out)


def _sweep(folder: Path, readers: int, keep: str) -> None:
    """With no dashboard reading: remove all but ``keep`` (older copies, a killed git's lock on a
    copy, a killed dashboard's temp file). When another dashboard reads, the next one sweeps."""
    try:
        if not set(os.listdir(folder)) - {keep, READERS_FILE}:
            return
        fcntl.flock(readers, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for name in os.listdir(folder):
            if name not in (keep, READERS_FILE):
                (folder / name).unlink(missing_ok=True)
    except OSError:  # busy (another dashboard reads), or the worktree is going away
        return


def read_worktree(path: Path, untracked_cache: bool = True) -> WorktreeRead:
    """Uncommitted and unmerged paths of one worktree: one ``git status --porcelain=v2``, on the
    dashboard's own copy of the index when there can be one (``private_index``), with git's
    untracked cache unless ``untracked_cache`` is False (``core.untrackedCache=false``)."""
    git_dir = git.worktree_git_dir(path)
    with private_index(git_dir) if git_dir is not None else nullcontext() as copy:
        entries = git.status(path, index=copy, untracked_cache=untracked_cache)
    dirty: list[str] = []
    for e in entries:
        if e.source:  # both sides of a rename
            dirty.append(e.source)
        dirty.append(e.path)
    return WorktreeRead(tuple(dirty), tuple(e.path for e in entries if e.kind == "u"))
