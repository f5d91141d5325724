"""``streams merge --continue`` and ``--abort``: the conflict ``streams merge`` left in the integration
worktree for a human, landed once resolved (squashed, as the queue lands) or dropped."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.leftovers import files_with_markers
from coordinator.merge import MergeReport, Outcome, _message, _publish, _Queue, _run_check
from streams import git, worktrees
from streams.config import Config
from streams.kernel import paths
from streams.kernel.errors import ScopeViolationError, StreamsError
from streams.landings import read_resolving, write_resolving
from streams.ownership import compiled
from streams.state import sync_lock
from streams.workspace import Workspace


@dataclass(frozen=True)
class Dropped:
    """``streams merge --abort --json``'s ``data``.

    ========  =====  ==============================================================================
    field     type   meaning
    ========  =====  ==============================================================================
    stream    str    the stream whose conflict resolution was dropped (its branch is untouched)
    worktree  str    the integration worktree, back at the base
    ========  =====  ==============================================================================
    """

    stream: str
    worktree: str


def merge_continue(
    ws: Workspace,
    config: Config,
    *,
    check: str | None = None,
    keep: bool = False,
    push: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> MergeReport:
    """Land the conflict a human resolved in the integration worktree (squashed, as the queue does)."""
    with sync_lock(ws, on_wait):
        rec = _waiting(ws)
        name, tip, base_tip = str(rec["stream"]), str(rec["tip"]), str(rec["base_before"])
        where = Path(paths.integration_dir(ws.common_dir))
        if git.resolve_commit(ws.main_root, config.base_ref()) != base_tip:
            raise StreamsError(
                f"{config.base} moved since the conflict was set up; `streams merge --abort`, then merge again",
                code="moved",
            )
        if git.resolve_commit(ws.main_root, config.branch_ref(name)) != tip:
            raise StreamsError(
                f"{config.branch(name)} moved since; `streams merge --abort`, then merge again", code="moved"
            )
        unmerged = git.unmerged_paths(where)
        if unmerged:
            raise StreamsError(
                f"still unmerged in {where}: {', '.join(unmerged)}; resolve them and `git add` them", code="unmerged"
            )
        marked = files_with_markers(where, [str(f) for f in rec.get("files", [])])
        if marked:
            raise StreamsError(
                f"conflict markers are still in {', '.join(marked)} in {where}; resolve them", code="conflict_markers"
            )
        tree = git.tree_with(ws.main_root, git.write_tree(where), config.stream(name).progress_path, like=base_tip)
        _in_scope(ws, config, name, base_tip, tree)
        work: list[str] = list(reversed(worktrees.unmerged_commits(ws, config, name)))
        candidate = git.commit_tree(ws.main_root, tree, [base_tip], _message(ws, config, name, work))
        q = _Queue(ws, config, check, False, keep, push, "squash", on_wait)
        log = None
        if check:
            passed, log, tail = _run_check(ws, check, name, candidate)
            if not passed:
                raise StreamsError(f"check failed on the resolution: {tail} (log: {log})", code="merge_stopped")
        landing = _publish(q, name, tip, work, base_tip, candidate, log)
        if landing is None:
            raise StreamsError(
                f"{config.base} moved while landing; `streams merge --abort`, then merge again", code="moved"
            )
        if landing.outcome == Outcome.LANDED:
            write_resolving(ws, None)
        return MergeReport(config.base, "squash", (landing,))


def merge_abort(ws: Workspace, config: Config, *, on_wait: Callable[[str], None] | None = None) -> Dropped:
    """Drop the conflict waiting in the integration worktree; the stream's branch is untouched."""
    with sync_lock(ws, on_wait):
        rec = _waiting(ws)
        where = Path(paths.integration_dir(ws.common_dir))
        if (where / ".git").exists():
            git.discard_changes(where)
        write_resolving(ws, None)
        return Dropped(str(rec["stream"]), str(where))


def _waiting(ws: Workspace) -> dict[str, Any]:
    rec = read_resolving(ws)
    if rec is None:
        raise StreamsError(
            "no merge conflict is waiting for a human (`streams merge` sets one up)", code="nothing_to_continue"
        )
    return rec


def _in_scope(ws: Workspace, config: Config, name: str, base_tip: str, tree: str) -> None:
    """Refuse a resolution that changes what the stream may not (shared paths pass, as in verify)."""
    changed = git.tree_changes(ws.main_root, base_tip, tree)
    found = compiled(config).check(name, changed, lambda _p: (name, math.inf))
    if found:
        paths_ = ", ".join(f[0] for f in found)
        raise ScopeViolationError(
            f"the resolution changes what stream {name} may not: {paths_}; undo those in the integration worktree"
        )


__all__ = ["Dropped", "merge_abort", "merge_continue"]
