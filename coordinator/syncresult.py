"""What one sync pass did with one stream (``coordinator.sync``'s per-stream result)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What one pass did with one stream."""

    UP_TO_DATE = "up to date"
    REBASED = "rebased"
    DIRTY = "dirty"
    HALTED = "halted"
    NOT_STARTED = "not started"
    NO_WORKTREE = "no worktree"
    DETACHED = "detached"
    FAILED = "failed"
    BLOCKED = "blocked"  # depends (directly or through others) on a halted stream: left alone
    REWRITTEN = "upstream rewritten"  # holds commits the upstream dropped: left alone for a human


class Push(StrEnum):
    """What became of a stream's push (with a remote)."""

    PUSHED = "pushed"
    REJECTED = "rejected"
    DIVERGED = "diverged"
    FAILED = "failed"


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamResult:
    name: str
    outcome: Outcome
    old_tip: str | None = None
    new_tip: str | None = None
    files: tuple[str, ...] = ()  # the uncommitted (dirty) or conflicting paths
    detail: str = ""
    push: Push | None = None  # None: nothing to push, or no remote
    push_detail: str = ""


__all__ = ["Outcome", "Push", "StreamResult"]
