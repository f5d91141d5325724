"""Where each stream is now: its branch, tip, worktree, git dir and state.

``linked_worktrees`` reads the common dir alone (no git process), for the file watchers that must
follow worktrees as they come and go.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from streams.kernel.paths import read_marker


class PlaceState(StrEnum):
    """Where a stream is (``list --json``'s and ``status --json``'s ``state``)."""

    STARTED = "started"  # its worktree exists
    NOT_STARTED = "not started"  # neither worktree nor branch
    BRANCH_ONLY = "branch only"  # a branch, no worktree
    MISSING = "missing"  # a worktree git still registers, its directory gone
    UNCONFIGURED = "unconfigured"  # a stream worktree that streams.yaml does not name


@dataclass(frozen=True)
class LinkedWorktree:
    """A linked worktree as the common dir records it (``<common>/worktrees/<id>/``)."""

    id: str  # the name of its private git dir under <common>/worktrees/
    root: Path  # the top of the worktree (its gitdir file points at <root>/.git)
    git_dir: Path  # <common>/worktrees/<id>
    stream: str | None  # the stream whose marker its git dir holds, if any


def linked_worktrees(common_dir: Path) -> list[LinkedWorktree]:
    """Every linked worktree whose directory exists, read from ``<common>/worktrees`` (no git process)."""
    found: list[LinkedWorktree] = []
    try:
        entries = sorted(os.scandir(common_dir / "worktrees"), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        git_dir = Path(entry.path)
        try:
            dotgit = (git_dir / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        root = Path(os.path.dirname(os.path.normpath(dotgit)))
        if root.is_dir():
            found.append(LinkedWorktree(entry.name, root, git_dir, read_marker(git_dir)))
    return found
