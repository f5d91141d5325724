"""Raising and lowering the fence in a stream's worktree (``streams.kernel.fence`` says what it is
and who passes it; the hooks enforce it).

Sync raises it (``raise_fence``) before it touches a worktree, waits for a git command already
running there (``wait_for_git``), works with the fence's token in its git processes' environment
(``Raised.env``), and lowers it (``lower``); a conflict turns it into a ``halted`` fence that stays
until ``streams sync --continue/--abort`` or a later sync finds the halt over. A fence whose sync is
dead is lifted by the next sync (``coordinator.halts.reconcile``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from streams import git
from streams.kernel import fence as kfence
from streams.kernel.durations import iso_utc
from streams.kernel.paths import FENCE_ENV, MOVE_INDEX, MOVE_LOCK_TAG
from streams.kernel.procs import pid_alive, start_time

SYNC = kfence.SYNC
HALTED = kfence.HALTED
Fence = kfence.Fence

WAIT_SECONDS = 10.0  # how long sync waits for a git command already running in a fenced worktree

__all__ = [
    "HALTED",
    "SYNC",
    "WAIT_SECONDS",
    "Fence",
    "Raised",
    "clear_dead_move",
    "holder_env",
    "lower",
    "raise_fence",
    "read_fence",
    "settle",
    "wait_for_git",
]


@dataclass(frozen=True)
class Raised:
    """A fence this process holds: its git children pass it with ``env()``."""

    git_dir: Path
    token: str
    stream: str

    def env(self) -> dict[str, str]:
        return {FENCE_ENV: self.token}

    def turn(self, purpose: str) -> None:
        """Keep the fence, with another purpose (``halted``: it stays for a human)."""
        kfence.write(self.git_dir, _fence(self.token, self.stream, purpose))

    def moving(self, old: str, new: str) -> None:
        """Say on the fence that the branch moves from ``old`` to ``new`` and its worktree follows:
        killed in between, the fence keeps agents out until the next sync brings the worktree along."""
        kfence.write(self.git_dir, _fence(self.token, self.stream, SYNC, f"{old} {new}"))


def _fence(token: str, stream: str, purpose: str, moving: str = "") -> Fence:
    pid = os.getpid()
    return Fence(token, pid, start_time(pid) or "", purpose, stream, iso_utc(), moving)


def raise_fence(git_dir: Path, stream: str, purpose: str = SYNC) -> Raised:
    """Fence the worktree of ``git_dir`` for this process (replacing any fence there)."""
    token = secrets.token_hex(12)
    kfence.write(git_dir, _fence(token, stream, purpose))
    return Raised(git_dir, token, stream)


def read_fence(git_dir: Path) -> Fence | None:
    return kfence.read(git_dir)


def holder_env(git_dir: Path) -> dict[str, str]:
    """The environment that passes the fence now in ``git_dir`` (``streams sync --continue/--abort``
    act for the fence's holder); empty when there is none."""
    found = kfence.read(git_dir)
    return {FENCE_ENV: found.token} if found is not None else {}


def lower(git_dir: Path) -> bool:
    """Remove the fence; False when there was none."""
    return kfence.remove(git_dir)


def settle(git_dir: Path, worktree: Path | None, stream: str, *, halted: bool) -> tuple[str, Fence] | None:
    """Make a fence no live sync holds agree with the halts (a sync pass, under the sync lock).

    ``halted``: the stream has a halt pending: a fence a dead sync left turns ``halted``. Otherwise a
    ``halted`` fence (the halt is over) or a dead sync's fence is lifted. Returns (``"lifted"`` or
    ``"halted"``, the fence as it was), or None when nothing changed.
    """
    clear_dead_move(git_dir, worktree)
    found = kfence.read(git_dir)
    if found is None:
        return None
    if halted:
        if found.purpose == HALTED or found.holder_alive():
            return None
        kfence.write(git_dir, _fence(found.token, stream, HALTED))
        return "halted", found
    if found.purpose == SYNC and found.holder_alive():
        return None
    kfence.remove(git_dir)
    return "lifted", found


def clear_dead_move(git_dir: Path, worktree: Path | None = None) -> bool:
    """Finish or clear what a sync killed while it moved the branch left behind: its ``index.lock``
    (naming that sync's pid, which is gone) is removed; its new index, when complete (it holds the
    tree HEAD now names), is put in place, else dropped. True when there was such a lock."""
    lock = git_dir / "index.lock"
    try:
        with open(lock, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    tag = MOVE_LOCK_TAG.encode()
    if not head.startswith(tag):
        return False
    try:
        pid = int(head[len(tag) :].split()[0])
    except (ValueError, IndexError):
        return False
    if pid_alive(pid):
        return False
    built = git_dir / MOVE_INDEX.format(pid=pid)
    if worktree is not None and built.exists() and git.index_matches(worktree, "HEAD", built):
        os.replace(built, git_dir / "index")
    built.unlink(missing_ok=True)
    built.with_name(f"{built.name}.lock").unlink(missing_ok=True)  # a read-tree killed writing it
    lock.unlink(missing_ok=True)
    return True


def wait_for_git(git_dir: Path, timeout: float = WAIT_SECONDS) -> Path | None:
    """Wait (at most ``timeout`` seconds) until no git command holds the worktree's ``index.lock``.

    Returns None once it is free, else the lock file still there (a command still running, or a
    lock a killed git left: the caller reports it, it is never waited on forever); a lock already
    older than ``timeout`` is returned at once.
    """
    return git.held_lock(git_dir / "index.lock", timeout)
