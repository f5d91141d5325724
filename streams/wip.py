"""An attempt's uncommitted work, saved as a commit under a ref of its own (DESIGN "Where things
live": ``refs/streams/wip/<stream>/<run>/<attempt>``), and put back to HEAD once saved.

``snapshot``: the worktree's tracked changes (staged or not), deletions and untracked files that
are not ignored become one commit whose parent is HEAD, made through a temporary index
(``streams.git.attempt``): the worktree's index, files and HEAD are left byte for byte as they
were, its ``index.lock`` is never taken, no hook runs (``commit-tree`` runs none; the
reference-transaction hook looks at HEAD and branches only), and nothing goes to ``refs/stash``,
which every worktree shares. The ref is created, never moved: a name already taken is refused.

``discard``: only after a snapshot, and only while the worktree still holds exactly what the
snapshot saved (same HEAD, same tree, computed afresh): back to HEAD, untracked files that are not
ignored removed. Anything written after the snapshot makes it refuse with nothing changed, so no
unsaved work is ever thrown away. (The caller stops the agent first: a write between the
comparison and the reset, milliseconds apart, is the one window left.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streams import git
from streams.kernel.errors import GitError, StreamsError
from streams.kernel.paths import ZERO_OID


class WipError(StreamsError):
    """A snapshot that cannot be made as asked, or a discard that would lose work."""

    code = "wip_changed"


@dataclass(frozen=True)
class WipSnapshot:
    """One saved attempt's uncommitted work.

    ======  ==========  ===========================================================================
    field   type        meaning
    ======  ==========  ===========================================================================
    ref     str         where it is kept, ``refs/streams/wip/<stream>/<run>/<attempt>``
    commit  str         the commit (its parent: HEAD when it was taken)
    files   [str]       the paths it holds that differ from HEAD (added, changed or deleted)
    ======  ==========  ===========================================================================
    """

    ref: str
    commit: str
    files: tuple[str, ...]


def snapshot(worktree: Path, ref: str, message: str) -> WipSnapshot | None:
    """Save ``worktree``'s uncommitted work under ``ref`` (create-only); None when there is none.

    Raises ``WipError`` (code ``wip_exists``) when ``ref`` exists already, ``WipError`` when the
    worktree's branch has no commit yet.
    """
    head = git.head_or_none(worktree)
    if head is None:
        raise WipError(f"cannot save the work in {worktree}: its branch has no commit yet", code="error")
    tree = git.snapshot_tree(worktree)
    if tree == git.tree_of(worktree, head):
        return None
    files = tuple(git.tree_paths_changed(worktree, head, tree))
    commit = git.wip_commit(worktree, tree, head, message if message.endswith("\n") else message + "\n")
    try:
        git.update_ref(worktree, ref, commit, ZERO_OID, f"streams: {message.splitlines()[0] if message else 'wip'}")
    except GitError as exc:
        if git.resolve_commit(worktree, ref) is not None:
            raise WipError(
                f"{ref} exists already: a WIP snapshot is never overwritten (name another attempt)", code="wip_exists"
            ) from exc
        raise
    return WipSnapshot(ref, commit, files)


def discard(worktree: Path, snap: WipSnapshot) -> None:
    """Bring ``worktree`` back to HEAD after ``snap`` saved its work: tracked files reset, untracked
    files that are not ignored removed. Refuses (``WipError``, nothing changed) when HEAD moved or a
    file changed since the snapshot, naming what changed."""
    head = git.head_or_none(worktree)
    parent = git.rev_parse(worktree, f"{snap.commit}^")
    if head != parent:
        raise WipError(
            f"not discarding the work in {worktree}: HEAD moved since the snapshot {snap.ref} "
            f"({parent[:12]} -> {(head or 'none')[:12]}); snapshot again first"
        )
    saved = git.tree_of(worktree, snap.commit)
    now = git.snapshot_tree(worktree)
    if now != saved:
        changed = git.tree_paths_changed(worktree, saved, now)
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise WipError(
            f"not discarding the work in {worktree}: changed since the snapshot {snap.ref}: {shown}; "
            "snapshot again first"
        )
    git.reset_to_head(worktree)
