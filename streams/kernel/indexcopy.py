"""The dashboard's own copy of a worktree's index, for ``git status`` to read and write.

``streams.private_index`` (the full ``status``) and the quick ``status --json``
(``streams.cli.quickstatus``) both take the copy here, so the two never disagree on its name or its
locking. Standard library only: the kernel floor.

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

from __future__ import annotations

import fcntl
import os

from streams.kernel.paths import PRIVATE_INDEX_DIR, PRIVATE_INDEX_READERS


class PrivateIndex:
    """``with PrivateIndex(git_dir) as copy:`` the path of the copy of the worktree's index whose
    private git dir is ``git_dir``, for as long as the ``with`` lasts; None when there can be none
    (no index, a split index whose shared part git would write next to the agent's, a git dir we
    cannot write)."""

    def __init__(self, git_dir: str) -> None:
        self.git_dir = git_dir
        self.folder = os.path.join(git_dir, PRIVATE_INDEX_DIR)
        self.readers = -1
        self.copy: str | None = None

    def __enter__(self) -> str | None:
        try:
            names = os.listdir(self.git_dir)
        except OSError:
            return None
        if any(n.startswith("sharedindex.") for n in names) or not os.path.isfile(os.path.join(self.git_dir, "index")):
            return None
        try:
            os.makedirs(self.folder, exist_ok=True)
            self.readers = os.open(
                os.path.join(self.folder, PRIVATE_INDEX_READERS), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError:
            return None
        try:
            fcntl.flock(self.readers, fcntl.LOCK_SH)
            self.copy = _take_copy(self.git_dir, self.folder)
        except BaseException:
            os.close(self.readers)
            self.readers = -1
            raise
        return self.copy

    def __exit__(self, *exc: object) -> None:
        if self.readers < 0:
            return
        try:
            fcntl.flock(self.readers, fcntl.LOCK_UN)
            if self.copy is not None:
                _sweep(self.folder, self.readers, keep=os.path.basename(self.copy))
        finally:
            os.close(self.readers)
            self.readers = -1


def _take_copy(git_dir: str, folder: str) -> str | None:
    """The copy of the index as it is now, made when there is none."""
    index = os.path.join(git_dir, "index")
    try:
        with open(index, "rb") as fh:
            st = os.fstat(fh.fileno())
            copy = os.path.join(
                folder, f"index-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"
            )  # not ctime: a link moves it
            if os.path.isfile(copy):
                return copy
            from _thread import get_ident

            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{get_ident()}")
            _link_or_copy(index, fh, st, tmp)
            os.replace(tmp, copy)
            return copy
    except OSError:
        return None


def _link_or_copy(index: str, fh: object, st: os.stat_result, dest: str) -> None:
    """A hard link to the open index when the name still holds it, else a copy. Sharing the inode is
    safe: git never writes an index in place, it renames a new file over the name, so the agent's
    next write leaves this version alone and ours never reaches the agent's."""
    try:
        os.link(index, dest)
        linked = os.stat(dest)
        if (linked.st_ino, linked.st_dev) == (st.st_ino, st.st_dev):
            return
        os.unlink(dest)  # the agent replaced its index in between: copy the version we opened
    except OSError:
        _remove(dest)
    read = fh.read  # type: ignore[attr-defined]
    with open(dest, "wb") as out:
        while chunk := read(1 << 20):
            out.write(chunk)


def _sweep(folder: str, readers: int, keep: str) -> None:
    """With no dashboard reading: remove all but ``keep`` (older copies, a killed git's lock on a
    copy, a killed dashboard's temp file). When another dashboard reads, the next one sweeps."""
    try:
        if not set(os.listdir(folder)) - {keep, PRIVATE_INDEX_READERS}:
            return
        fcntl.flock(readers, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for name in os.listdir(folder):
            if name not in (keep, PRIVATE_INDEX_READERS):
                _remove(os.path.join(folder, name))
    except OSError:  # busy (another dashboard reads), or the worktree is going away
        return


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
