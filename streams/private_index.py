"""A worktree's uncommitted state for dashboards, read without touching the agent's index: one
``git status`` on the dashboard's own copy of that index (``private_index``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from streams import git
from streams.kernel import paths
from streams.kernel.indexcopy import PrivateIndex


@dataclass(frozen=True)
class WorktreeRead:
    dirty: tuple[str, ...]
    conflicted: tuple[str, ...]


READERS_FILE = paths.PRIVATE_INDEX_READERS


@contextmanager
def private_index(git_dir: Path) -> Iterator[Path | None]:
    """A copy of a worktree's index that only dashboards read and write, for as long as the
    ``with`` lasts; None when there can be none (``streams.kernel.indexcopy``)."""
    with PrivateIndex(str(git_dir)) as copy:
        yield Path(copy) if copy is not None else None


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
