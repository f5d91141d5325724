"""What a killed git or a killed sync leaves in a stream's worktree, and what sync does about it.

- ``remove_leftovers``: untracked files a killed rebase or checkout wrote without recording them in
  the index, when each is byte for byte a committed blob (removing it loses nothing);
- ``clear_dead_ref_locks``: the ``HEAD.lock`` and ``<branch>.lock`` a sync's ``git update-ref``
  killed while moving the branch leaves (git never removes them; every commit there fails until
  someone does), removed when no git process running in that worktree can hold them (each started
  after the lock was made: an agent retrying its commit does not count). Only called where a dead sync's
  fence was found: a lock elsewhere is a human's to judge (``git.stale_lock_files`` names them);
- ``stale_locks_fix``, ``locks_hint``, ``blocking_hint``: the words that name such files for a human.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from streams import git
from streams.kernel.paths import DEAD_LOCKS_FILE
from streams.places import Place
from streams.workspace import Workspace

__all__ = [
    "blocking_hint",
    "clear_dead_ref_locks",
    "files_with_markers",
    "git_runs_in",
    "remember_dead_locks",
    "remove_leftovers",
    "retry_dead_locks",
]


def remove_leftovers(worktree: Path, revs: Sequence[str]) -> list[str]:
    """Delete the untracked files a killed rebase wrote without recording them in the index.

    Only files whose content is byte for byte the blob at the same path in one of ``revs`` (the
    commit the rebase was onto, the original tip) count: removing them loses nothing.
    """
    others = [
        p
        for p in git.untracked_files(worktree)
        if "\n" not in p and (worktree / p).is_file() and not (worktree / p).is_symlink()
    ]
    if not others or not revs:
        return []
    mine = git.hash_files(worktree, others)
    known = git.object_ids(worktree, [f"{rev}:{p}" for p in others for rev in revs])
    leftovers = [
        path
        for i, (path, oid) in enumerate(zip(others, mine, strict=True))
        if oid in known[i * len(revs) : (i + 1) * len(revs)]
    ]
    for path in leftovers:
        (worktree / path).unlink()
    return leftovers


HOUSEKEEPING = (b"gc", b"maintenance", b"repack", b"pack-objects", b"prune", b"index-pack", b"multi-pack-index")


def git_runs_in(worktree: Path, since: float) -> bool:
    """Whether a git process that started before ``since`` (seconds since the epoch) runs with its
    working directory in ``worktree`` (from ``/proc``; True when that cannot be told). A lock file
    made at ``since`` can belong to no process that started after it."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(float(ln.split()[1]) for ln in fh if ln.startswith("btime "))
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError):
        return True
    root = os.path.realpath(worktree)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                name, _, rest = fh.read().partition(" (")[2].rpartition(")")
            if not name.startswith("git"):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                words = [w for w in fh.read().split(b"\0")[1:] if w and not w.startswith(b"-")]
            if words and words[0] in HOUSEKEEPING:
                continue  # a background `git gc --auto` and its helpers take no HEAD or branch lock
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        started = boot + int(rest.split()[19]) / tick
        if (cwd == root or cwd.startswith(root + os.sep)) and started <= since + 0.05:
            return True
    return False


def clear_dead_ref_locks(worktree: Path, git_dir: Path, common_dir: Path, ref: str, wait: float = 10.0) -> list[Path]:
    """Remove ``HEAD.lock`` (in the worktree's git dir) and ``<ref>.lock`` that no git process running
    in ``worktree`` can hold (each started after the lock was made); one that started before may
    be an agent's commit about to finish: waited for, at most ``wait`` seconds. Returns the files
    removed."""
    removed = []
    deadline = time.monotonic() + wait
    for lock in (git_dir / "HEAD.lock", common_dir / f"{ref}.lock"):
        try:
            made = lock.stat().st_mtime
        except OSError:
            continue
        while git_runs_in(worktree, made) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not lock.exists() or git_runs_in(worktree, made):
            continue
        lock.unlink(missing_ok=True)
        removed.append(lock)
    return removed


def remember_dead_locks(git_dir: Path, held: Sequence[Path]) -> None:
    """Note lock files a dead sync's git left that a running git might still hold, for later passes."""
    (git_dir / DEAD_LOCKS_FILE).write_text("".join(f"{p}\n" for p in held), encoding="utf-8")


def retry_dead_locks(ws: Workspace, place: Place) -> list[Path]:
    """On a later pass: clear what ``remember_dead_locks`` noted, now that the git that might have
    held them has had time to finish. Returns the files removed."""
    assert place.git_dir is not None
    note = place.git_dir / DEAD_LOCKS_FILE
    if place.worktree is None or not note.exists():
        return []
    removed = clear_dead_ref_locks(place.worktree, place.git_dir, ws.common_dir, place.ref)
    if not any(p.exists() for p in (place.git_dir / "HEAD.lock", ws.common_dir / f"{place.ref}.lock")):
        note.unlink(missing_ok=True)
    return removed


def blocking_hint(res: git.Result) -> str:
    files = res.blocking_files()
    if not files:
        return ""
    return (
        f" {', '.join(files)} (untracked; not copies of committed files, so streams leaves them: "
        "look at them and move them away)"
    )


MARKER_STARTS = (b"<<<<<<< ", b">>>>>>> ")
MARKER_LINE = b"======="


def files_with_markers(worktree: Path, files: Sequence[str]) -> list[str]:
    """Those of ``files`` (the paths that were in conflict) that still hold a conflict marker line:
    ``<<<<<<< …``, ``=======``, ``>>>>>>> …``."""
    marked = []
    for rel in files:
        path = worktree / rel
        try:
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            if line.startswith(MARKER_STARTS) or line.rstrip(b"\r") == MARKER_LINE:
                marked.append(rel)
                break
    return marked
