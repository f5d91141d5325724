"""Lock files git leaves while it works, or a killed git left: what to tell the human.

A lock file is called stale only when no running git works in the repository (any of its
worktrees: ``streams.kernel.procs.git_processes_in``); while one does, the human is told to wait
for it; where processes cannot be listed, "held?", never "stale".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streams import git
from streams.kernel.errors import StreamsError

__all__ = ["lock_holders", "locks_hint", "stale_locks_fix"]


def stale_locks_fix(locks: Sequence[Path], where: str, repo: Path) -> str:
    """What to do about lock files git leaves while it works, or a killed git left
    (``git.stale_lock_files``, ``git.fetch_lock_files``). "Stale" only when no running git works in
    the repository ``repo`` is in (any of its worktrees, ``procs.git_processes_in``); when one does,
    wait for it; when that cannot be known, "held?", never "stale"."""
    names = ", ".join(str(p) for p in locks)
    holders = lock_holders(locks, repo)
    if holders is None:
        return (
            f"lock files {names} (held? streams cannot tell whether a git process holds them here): "
            f"delete them if no git command runs in {where}"
        )
    if holders:
        pids = ", ".join(str(pid) for pid in holders[:3]) + (" …" if len(holders) > 3 else "")
        return f"lock files {names} are held by a running git (pid {pids}) in {where}: wait for it to finish"
    return (
        f"stale lock files: {names}; a killed git process may have left them (no git process runs in {where}): "
        "delete them"
    )


def lock_holders(locks: Sequence[Path], repo: Path) -> list[int] | None:
    """The running git processes that may hold ``locks`` (any git working in the repository
    ``repo`` is in, or in the lock files' directories); None when that cannot be known."""
    from streams.kernel.procs import git_processes_in

    try:
        roots = [str(w.path) for w in git.worktrees(repo)]
    except (StreamsError, OSError):
        roots = [str(repo)]
    roots += sorted({str(p.parent) for p in locks})
    return git_processes_in(roots)


def locks_hint(worktree: Path, ref: str) -> str:
    locks = git.stale_lock_files(worktree, ref)
    return f" ({stale_locks_fix(locks, 'that worktree', worktree)})" if locks else ""
