"""Upstream rewrites are not undone (issue 11, item 5): when the base was force-pushed to drop
commits, sync must not replay the dropped commits into every stream (and push them back).

Each pass compares the upstream tip with the one the previous pass synced onto. When the old tip
is no longer in the new one's history, the commits only the old one had were dropped upstream.
They are remembered in state.json (``rewritten``) until no stream branch holds any of them; a
stream that holds one is left alone, outcome ``upstream rewritten``, naming the dropped commits
and the rebase that leaves them out (``git rebase --onto NEW OLD``): a human decides.
"""

from __future__ import annotations

from typing import Any

from streams import git
from streams.places import Place
from streams.state import last_sync, read_state, update_state
from streams.workspace import Workspace

KEY = "rewritten"


def dropped_commits(ws: Workspace, upstream_tip: str) -> tuple[tuple[str, ...], str | None]:
    """(every commit dropped from the upstream and still remembered, the upstream tip before the
    rewrite or None)."""
    known = read_state(ws).get(KEY)
    dropped: list[str] = list(known.get("dropped", [])) if isinstance(known, dict) else []
    old = str(known.get("old")) if isinstance(known, dict) and known.get("old") else None
    prev = (last_sync(ws) or {}).get("upstream_tip")
    moved = isinstance(prev, str) and prev and prev != upstream_tip and git.resolve_commit(ws.main_root, prev)
    if moved and isinstance(prev, str) and not git.is_ancestor(ws.main_root, prev, upstream_tip):
        dropped = list(dict.fromkeys([*dropped, *git.commits_from(ws.main_root, prev, [upstream_tip])]))
        old = prev
    return tuple(dropped), old


def carried(ws: Workspace, place: Place, upstream_tip: str, dropped: tuple[str, ...]) -> list[str]:
    """The dropped commits the stream's branch still holds (newest first)."""
    if not dropped or place.tip is None:
        return []
    gone = set(dropped)
    return [c for c in git.commits_from(ws.main_root, place.tip, [upstream_tip]) if c in gone]


def remember(ws: Workspace, dropped: tuple[str, ...], old: str | None, still: set[str]) -> None:
    """Keep the dropped commits some stream still holds (``still``) for the next passes; forget
    the rest (and the record once none is left)."""
    keep = [c for c in dropped if c in still]

    def change(data: dict[str, Any]) -> None:
        if keep:
            data[KEY] = {"dropped": keep, "old": old}
        else:
            data.pop(KEY, None)

    if keep or KEY in read_state(ws):
        update_state(ws, change)


def advice(name: str, place: Place, carried_commits: list[str], upstream: str, old: str | None) -> str:
    shown = ", ".join(c[:12] for c in carried_commits[:5]) + (" …" if len(carried_commits) > 5 else "")
    fix = (
        f"`git rebase --onto {upstream} {old[:12]} {place.branch}` in {place.worktree or 'its worktree'}"
        if old
        else f"an interactive rebase onto {upstream} that drops them, in {place.worktree or 'its worktree'}"
    )
    return (
        f"{upstream} was rewritten and no longer has {len(carried_commits)} commit"
        f"{'s' if len(carried_commits) != 1 else ''} {name} still holds ({shown}); left alone so sync does not "
        f"bring them back: rebase without them ({fix}) if they were dropped on purpose, then sync again"
    )
