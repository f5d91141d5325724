"""Publishing what a sync pass rebased: each moved stream branch pushed to the remote with
``--force-with-lease``, never forced over commits someone else pushed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from coordinator.syncresult import Outcome, Push, StreamResult
from streams import git
from streams.config import Config
from streams.kernel import events
from streams.places import Place
from streams.workspace import Workspace


def push_streams(
    ws: Workspace, config: Config, places: dict[str, Place], results: dict[str, StreamResult]
) -> dict[str, StreamResult]:
    assert config.remote is not None
    remote = config.remote
    todo: list[tuple[str, str, str | None]] = []  # (name, local tip, expected remote value)
    out: dict[str, StreamResult] = {}
    for name, r in results.items():
        if r.outcome not in (Outcome.REBASED, Outcome.UP_TO_DATE) or r.new_tip is None:
            continue
        place = places[name]
        if place.remote_tip == r.new_tip:
            continue
        before = r.old_tip or r.new_tip
        if (
            place.remote_tip is not None
            and place.remote_tip != before
            and not _remote_is_ours(ws.main_root, place.ref, place.remote_tip, before)
        ):
            out[name] = dataclasses.replace(
                r,
                push=Push.DIVERGED,
                push_detail=f"not pushed: {remote}/{place.branch} ({place.remote_tip[:12]}) has commits that "
                f"{place.branch} does not (someone else pushed); not forced. Look with "
                f"`git log {place.ref}..{remote}/{place.branch}` and reconcile by hand",
            )
            continue
        todo.append((name, r.new_tip, place.remote_tip))
    if not todo:
        return out
    res, status = git.push_with_leases(ws.main_root, remote, [(places[n].ref, expected) for n, _, expected in todo])
    for name, tip, expected in todo:
        branch = places[name].branch
        flag, summary = status.get(places[name].ref, ("", ""))
        if flag in (" ", "+", "*", "="):
            push, detail = Push.PUSHED, f"pushed {tip[:12]} to {remote}"
            events.append(ws.common_dir, "sync.push", stream=name, tip=tip, remote=remote, was=expected)
        elif flag == "!":
            push = Push.REJECTED
            detail = f"push to {remote} rejected {summary}; not forced: someone else pushed {branch}; fetch and reconcile by hand"
            events.append(ws.common_dir, "sync.push_reject", stream=name, tip=tip, summary=summary)
        else:
            push, detail = Push.FAILED, f"push to {remote} failed: {res.first_error()}"
        out[name] = dataclasses.replace(results[name], push=push, push_detail=detail)
    return out


def _remote_is_ours(cwd: Path, ref: str, remote_tip: str, before: str) -> bool:
    """May ``remote_tip`` be replaced by the local branch without losing anyone's commits?

    Yes when it is contained in the branch as it was before this pass's rebase; or when the local
    branch itself once pointed at it (its reflog: we pushed it, and a later rebase or a push that
    never happened left the remote behind); or when every commit on it has an equivalent patch in
    the branch (``--cherry-pick``). A commit someone else pushed satisfies none of these.
    """
    if git.is_ancestor(cwd, remote_tip, before):
        return True
    if remote_tip in git.reflog_oids(cwd, ref):
        return True
    return git.commits_only_in(cwd, before, remote_tip) == []
