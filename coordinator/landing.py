"""After the base moves: the merge queue's record (``merge.json`` through ``streams.landings``), the
bookkeeping of a landing, finishing what a killed ``streams merge`` left, and ``--undo``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.leftovers import remove_leftovers
from streams import fence as fencing
from streams import git, worktrees
from streams.config import Config
from streams.kernel import events, locks, paths
from streams.kernel.errors import StreamsError
from streams.landings import read_landings as _read_record
from streams.landings import write_landings as _write_record
from streams.state import mark_stopped, sync_lock
from streams.workspace import Workspace


@dataclass(frozen=True)
class Undone:
    """``streams merge --undo --json``'s ``data``.

    ============  ==========  =====================================================================
    field         type        meaning
    ============  ==========  =====================================================================
    stream        str         the stream whose landing was undone
    base_before   str         where the base is back at
    merged        str         the landing's commit, no longer on the base
    branch        str | null  the stream's branch, restored from its landed ref when it was removed
    ============  ==========  =====================================================================
    """

    stream: str
    base_before: str
    merged: str
    branch: str | None


def update_entry(ws: Workspace, candidate: str, **fields: Any) -> None:
    landings = _read_record(ws)
    for entry in landings:
        if entry.get("merged") == candidate:
            entry.update(fields)
    _write_record(ws, landings)


def drop_entry(ws: Workspace, candidate: str) -> None:
    _write_record(ws, [e for e in _read_record(ws) if e.get("merged") != candidate])


def checked_out(ws: Workspace, ref: str) -> git.Worktree | None:
    return next((w for w in git.worktrees(ws.main_root) if w.branch == ref and not w.bare), None)


def after_landing(
    ws: Workspace, config: Config, name: str, tip: str, *, keep: bool, worktree: Path | None = None
) -> tuple[str, bool]:
    """Keep the tip under refs/streams/landed/, release the leases, remove worktree and branch.
    ``worktree``: where the merge queue found the stream's worktree clean, to be removed without
    ``stop``'s re-checks while git finds it still clean (else ``stop --force``, as without it)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    landed = paths.landed_ref(name, stamp)
    message = f"streams merge: {name} landed"
    if not keep and worktree is not None:
        removed = worktrees.remove_landed(ws, config, name, worktree, tip, landed=landed, message=message)
        if removed is not None:
            return landed, removed
    # The slower way: a branch with no worktree, a worktree written to since the queue found it
    # clean, or the recovery of a landing killed before it was recorded done. A landed ref that
    # already keeps this tip (made before such a kill) is used again rather than made twice.
    branch = config.branch_ref(name)
    kept = [ref for ref, oid in git.ref_oids(ws.main_root, paths.landed_ref(name, "")).items() if oid == tip]
    now = git.resolve_commit(ws.main_root, branch) if kept else None
    if kept:
        landed = kept[-1]
        at_tip = not keep and now == tip
    else:
        # Created only while the branch is still at the landed tip (one transaction); else alone:
        # the branch moved since, so it stays (its new commits are not landed).
        at_tip = not keep and git.create_ref_while(ws.main_root, landed, tip, other=branch, at=tip, message=message)
        if not at_tip:
            git.update_ref(ws.main_root, landed, tip, git.ZERO_OID, message)
    locks.release_stream(ws.common_dir, name)
    if kept and not keep and now is None and checked_out(ws, branch) is None:
        mark_stopped(ws, [name], stopped=True)  # worktree and branch went before the kill: all done
        return landed, True
    if not at_tip:
        return landed, False
    worktrees.stop(ws, config, [name], force=True, delete_branch=True)
    return landed, True


def release_landed(ws: Workspace, name: str, commits: list[str]) -> list[str]:
    """Release ``name``'s leases held until one of ``commits`` lands (``--shared-only``)."""
    landed = set(commits)
    return [
        lease.path
        for lease in locks.list_leases(ws.common_dir)
        if lease.stream == name
        and lease.landing in landed
        and locks.release_lease(ws.common_dir, lease, cause="landed")
    ]


def recover(ws: Workspace, config: Config) -> tuple[str, ...]:
    """Finish the landings a killed ``streams merge`` left: a candidate on the base is completed,
    one that never landed is dropped. Returns the streams finished."""
    landings = _read_record(ws)
    open_ = [e for e in landings if e.get("state") in ("landing", "landed")]
    if not open_:
        return ()
    finished = []
    base_tip = git.resolve_commit(ws.main_root, config.base_ref())
    _settle_checkout(ws, config, open_, base_tip)
    for entry in open_:
        candidate, name = str(entry.get("merged", "")), str(entry.get("stream", ""))
        if base_tip and candidate and git.is_ancestor(ws.main_root, candidate, base_tip):
            if entry.get("partial"):
                release_landed(ws, name, [str(c) for c in entry.get("commits", [])])
                entry.update(state="done")
            elif name in config.names:
                landed_ref, _ = after_landing(ws, config, name, str(entry.get("tip", "")), keep=False)
                entry.update(state="done", landed_ref=landed_ref)
            else:
                entry.update(state="done")
            finished.append(name)
        else:
            entry["state"] = "dropped"
    _write_record(ws, [e for e in landings if e.get("state") != "dropped"])
    return tuple(finished)


def _settle_checkout(ws: Workspace, config: Config, open_: list[dict[str, Any]], base_tip: str | None) -> None:
    """A merge killed while it brought the base's worktree along left the index lock it held (the
    next landing would fail on it) and the index at the tree before the landing (a commit there
    would undo it): the lock is cleared, the new index put in place when complete, else the
    worktree is brought along from that landing's base-before; when git refuses, say so."""
    holder = checked_out(ws, config.base_ref())
    if holder is None or base_tip is None:
        return
    fencing.clear_dead_move(git.worktree_git_dir(holder.path) or holder.path, holder.path)
    befores = [str(e.get("base_before", "")) for e in reversed(open_) if e.get("merged") == base_tip]
    before = befores[0] if befores else ""
    if not before or not git.index_matches(holder.path, before) or git.index_matches(holder.path, base_tip):
        return
    res = git.bring_along(holder.path, before, base_tip)
    for _ in range(3):  # files the killed read-tree had written already, as they are on the base: away
        if res.returncode == 0:
            break
        if not remove_leftovers(holder.path, [base_tip]) + _written(holder.path, res.blocking_files(), base_tip):
            break
        res = git.bring_along(holder.path, before, base_tip)
    if res.returncode != 0:
        raise StreamsError(
            f"a killed merge left {holder.path} at {before[:12]}, before the landing of {base_tip[:12]} on "
            f"{config.base}: `git read-tree -m -u {before[:12]} {base_tip[:12]}` there failed "
            f"({res.first_error()}); run it once that is fixed, then merge again",
            code="dirty",
        )


def _written(worktree: Path, files: list[str], rev: str) -> list[str]:
    """Delete those of ``files`` whose content is byte for byte the blob at ``rev``: removing them
    loses nothing (``read-tree -u`` writes them again). Returns them."""
    present = [p for p in files if (worktree / p).is_file() and not (worktree / p).is_symlink()]
    if not present:
        return []
    blobs = git.object_ids(worktree, [f"{rev}:{p}" for p in present])
    same = [p for p, oid, blob in zip(present, git.hash_files(worktree, present), blobs, strict=True) if oid == blob]
    for path in same:
        (worktree / path).unlink()
    return same


def undo(ws: Workspace, config: Config, *, on_wait: Callable[[str], None] | None = None) -> Undone:
    """Put the base back where the last landing found it, only if it is still at that landing's commit."""
    with sync_lock(ws, on_wait):
        landings = [e for e in _read_record(ws) if e.get("state") == "done"]
        if not landings:
            raise StreamsError("nothing to undo: no landing is recorded", code="nothing_to_undo")
        last = landings[-1]
        merged, before, name = str(last["merged"]), str(last["base_before"]), str(last["stream"])
        now = git.resolve_commit(ws.main_root, config.base_ref())
        if now != merged:
            raise StreamsError(
                f"{config.base} is at {(now or '')[:12]}, not at {name}'s landing {merged[:12]}: something landed "
                "or was committed since; revert that landing with `git revert` instead",
                code="moved",
            )
        holder = checked_out(ws, config.base_ref())
        message = f"streams merge --undo: {name}"
        if holder is None:
            git.update_ref(ws.main_root, config.base_ref(), before, merged, message)
        else:
            moved = git.move_checked_out(
                holder.path,
                git.worktree_git_dir(holder.path) or holder.path,
                config.base_ref(),
                before,
                merged,
                message,
            )
            if moved.returncode != 0:
                raise StreamsError(
                    f"cannot move {config.base} back: uncommitted changes in {holder.path} are in the way "
                    f"({', '.join(moved.blocking_files()) or moved.first_error()}); commit or stash them, then undo again",
                    code="dirty",
                )
        branch = None
        landed = last.get("landed_ref")
        if landed and git.resolve_commit(ws.main_root, config.branch_ref(name)) is None:
            git.update_ref(
                ws.main_root, config.branch_ref(name), git.rev_parse(ws.main_root, str(landed)), git.ZERO_OID, message
            )
            branch = config.branch(name)
        _write_record(ws, [e for e in _read_record(ws) if e.get("merged") != merged])
        events.append(ws.common_dir, "merge.undo", stream=name, base_before=before, merged=merged)
        return Undone(name, before, merged, branch)
