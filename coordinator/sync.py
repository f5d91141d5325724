"""The sync loop: keep every stream rebased on the upstream, and halt for a human on a conflict.

One pass (``sync_pass``), under a repository-wide lock so that two syncs never race:

1. fetch once from ``remote`` (when set); the upstream is ``<remote>/<base>``, else the local base;
2. reconcile ``state.json`` with git (``coordinator.halts.reconcile``): halts the human finished or
   aborted by hand, rebases a killed sync left behind, rebases in progress that nobody recorded;
3. per stream, in dependency order: nothing when the branch already contains the upstream tip;
   else, recorded in ``state.json`` before it starts and under the worktree's fence
   (``streams.fence``: the hooks refuse agents' commits there meanwhile; sync waits for a running
   git command and reads the branch again behind it), skipped when the worktree has uncommitted
   changes to tracked files (never auto-stashed; asked there, once: the answer that counts is the
   one behind the fence), else the stream is rebased: replayed without touching the
   worktree when no path overlaps the upstream (``git.replay``, then the branch moves and the
   worktree is brought along; ``coordinator.syncprep`` makes every stream's replay at once before
   the fences), else ``git rebase <upstream>`` in its worktree. After a rebase,
   unmerged entries and the rebase directory are checked, not only the exit code; a rebase that
   stopped without a conflict is rolled back at once; a conflict leaves the rebase in progress
   and the fence up (``halted``) and records a ``Halt``. A halt (this pass's or an earlier one
   still pending) stops only that stream and the streams that depend on it, directly or through
   others (``blocked``); every other stream is rebased in the same pass;
4. with a remote, push every stream branch that moved, each with
   ``--force-with-lease=<ref>:<value fetched a moment ago>``, and only when that remote value is
   contained in the branch as it was before the rebase: commits someone else pushed are reported,
   never overwritten.

Nothing is kept between passes: no git object, no child process, no open lock. Halts (continue,
abort, reconcile) live in ``coordinator.halts``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from coordinator import rewrites, syncprep
from coordinator.gitlocks import locks_hint, stale_locks_fix
from coordinator.halts import (
    AbortResult,
    ContinueResult,
    Found,
    Notify,
    Reconciled,
    SyncError,
    abort_halt,
    continue_halt,
    halt_next,
    reconcile,
)
from coordinator.leftovers import blocking_hint, remove_leftovers
from coordinator.syncpush import push_streams
from coordinator.syncresult import Outcome, Push, StreamResult
from streams import fence as fencing
from streams import git
from streams.config import Config, Stream
from streams.graph import dependency_order, waits_for
from streams.kernel import events
from streams.kernel.durations import iso_utc
from streams.kernel.errors import GitError
from streams.places import Place, locate
from streams.predict import conflicts_with
from streams.progress import ProgressError, stream_worktree_lock
from streams.state import Halt, HaltReason, begin_rebase, begin_rebases, finish_pass, record_halt, sync_lock
from streams.workspace import Workspace
from streams.worktrees import save_uncommitted

__all__ = [
    "AbortResult",
    "ContinueResult",
    "Outcome",
    "Push",
    "Reconciled",
    "StreamResult",
    "SyncError",
    "SyncReport",
    "abort_halt",
    "continue_halt",
    "halt_next",
    "sync_pass",
]


@dataclass(frozen=True)
class SyncReport:
    upstream: str  # for people, e.g. origin/main
    upstream_ref: str  # e.g. refs/remotes/origin/main
    upstream_tip: str
    fetched: bool
    streams: tuple[StreamResult, ...]
    halts: tuple[Halt, ...]  # every halt pending among the selected streams after the pass
    new_halts: tuple[Halt, ...]  # the conflicts this pass stopped on, in dependency order
    reconciled: tuple[Reconciled, ...]
    predicted: dict[str, list[str]] | None = None
    time: str = field(default_factory=iso_utc)

    json_properties: ClassVar[tuple[str, ...]] = ("halted", "failed")  # derived facts the JSON carries too

    @property
    def halted(self) -> bool:
        """A human must act: a conflict halted, or the upstream was rewritten under a stream."""
        return bool(self.halts) or any(r.outcome == Outcome.REWRITTEN for r in self.streams)

    @property
    def failed(self) -> tuple[StreamResult, ...]:
        return tuple(
            r
            for r in self.streams
            if r.outcome == Outcome.FAILED or r.push in (Push.REJECTED, Push.DIVERGED, Push.FAILED)
        )


# --- one pass ------------------------------------------------------------------------------------


def sync_pass(
    ws: Workspace,
    config: Config,
    names: Sequence[str] = (),
    *,
    predict: bool = False,
    on_wait: Notify | None = None,
) -> SyncReport:
    """One sync pass over the named streams (all when none), under the repository's sync lock."""
    streams = config.select(tuple(names))
    with sync_lock(ws, on_wait):
        return _pass(ws, config, streams, predict=predict)


def _fetch(ws: Workspace, config: Config) -> None:
    assert config.remote is not None
    prefix = config.branch_prefix
    res = git.fetch(
        ws.main_root,
        config.remote,
        [
            f"+{config.base_ref()}:{config.upstream_ref()}",
            f"+refs/heads/{prefix}*:refs/remotes/{config.remote}/{prefix}*",
        ],
    )
    if res.returncode != 0:
        locks = git.fetch_lock_files(ws.common_dir, config.remote)
        fix = (
            f"{stale_locks_fix(locks, 'this repository', ws.main_root)}, then sync again"
            if locks
            else f"check the remote with `git fetch {config.remote}`, or remove `remote:` from streams.yaml"
        )
        raise SyncError(
            f"fetching {config.base} from remote {config.remote!r} failed: {res.first_error()} ({fix})",
            code="fetch_failed",
        )


def _upstream_tip(ws: Workspace, config: Config) -> str:
    upstream_tip = git.resolve_commit(ws.main_root, config.upstream_ref())
    if upstream_tip is None:
        hint = (
            f"push {config.base} to {config.remote} first"
            if config.remote
            else f"create branch {config.base}, or set `base:` in streams.yaml"
        )
        raise SyncError(f"the upstream {config.upstream_name()} does not exist ({hint})", code="no_upstream")
    return upstream_tip


def _pass(ws: Workspace, config: Config, streams: Sequence[Stream], *, predict: bool) -> SyncReport:
    if config.remote:
        _fetch(ws, config)
    upstream = config.upstream_name()
    upstream_tip = _upstream_tip(ws, config)
    depends = {s.name: s.depends for s in config.streams}
    names = dependency_order([s.name for s in streams], depends)
    places = locate(ws, config, list(config.names))
    halts, notes = reconcile(ws, config, places, upstream)
    git.drop_asides(ws.main_root, ws.state_dir / "aside")  # private rebase worktrees a killed sync left
    prefix = config.branch_prefix.rstrip("/")
    on_top = git.ref_oids(ws.main_root, f"refs/heads/{prefix}", contains=upstream_tip)
    predicted = conflicts_with(ws, config, names, upstream_tip, places) if predict else None

    results: dict[str, StreamResult] = {}
    candidates: list[str] = []
    dropped, old_upstream = rewrites.dropped_commits(ws, upstream_tip)
    still: set[str] = set()
    left = {n.stream: n.detail for n in notes if n.what == Found.LEFT_BEHIND}
    for name in names:
        if dropped and (held := rewrites.carried(ws, places[name], upstream_tip, dropped)):
            still.update(held)
            detail = rewrites.advice(name, places[name], held, upstream, old_upstream)
            results[name] = StreamResult(name, Outcome.REWRITTEN, places[name].tip, places[name].tip, detail=detail)
            continue
        skipped = _skip_reason(config, places[name], halts.get(name), on_top)
        if name in left:  # its worktree still at the old tip, fenced: nothing more until it is brought along
            skipped = StreamResult(name, Outcome.FAILED, places[name].tip, places[name].tip, detail=left[name])
        if skipped is not None:
            results[name] = skipped
        else:
            candidates.append(name)

    # Intent first, in one write: a crash from here on is reconciled with git by the next pass.
    if candidates:
        begin_rebases(ws, [(n, places[n].tip or "", upstream_tip, places[n].worktree or Path()) for n in candidates])
    # Their rebased commits made at once (objects only, no ref moves): used behind each fence when
    # the branch is still at the tip they were made from.
    prep = syncprep.prepare(ws.main_root, [t for n in candidates if (t := places[n].tip)], upstream_tip)
    new_halts: list[Halt] = []
    for name in candidates:
        place = places[name]
        if (halted := waits_for(name, depends, halts)) is not None:
            results[name] = _blocked(name, place, halted, any(h.stream == halted for h in new_halts))
            continue
        try:
            with stream_worktree_lock(ws.state_dir, name):  # no progress commit lands mid-rebase
                results[name], halt = _rebase_one(ws, name, place, prep, upstream)
        except ProgressError as exc:  # busy: another streams command in that worktree
            results[name], halt = StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=exc.message), None
        if halt is not None:
            halts[name] = halt
            new_halts.append(halt)

    if dropped:
        others = [p for n, p in places.items() if n not in names]
        still.update(c for p in others for c in rewrites.carried(ws, p, upstream_tip, dropped))
        rewrites.remember(ws, dropped, old_upstream, still)
    final = _with_new_tips(ws, config, places, results)
    if config.remote:
        final.update(push_streams(ws, config, places, final))
    summary = {
        "time": iso_utc(),
        "upstream": upstream,
        "upstream_tip": upstream_tip,
        "outcomes": {n: final[n].outcome for n in names},
        "halted": [h.stream for h in new_halts],
    }
    finish_pass(ws, [n for n in candidates if n not in {h.stream for h in new_halts}], summary)
    return SyncReport(
        upstream=upstream,
        upstream_ref=config.upstream_ref(),
        upstream_tip=upstream_tip,
        fetched=bool(config.remote),
        streams=tuple(final[n] for n in names),
        halts=tuple(halts[n] for n in names if n in halts),
        new_halts=tuple(new_halts),
        reconciled=tuple(notes),
        predicted=predicted,
    )


def _blocked(name: str, place: Place, halted: str, new: bool) -> StreamResult:
    """A stream left alone because ``halted``, which it depends on, waits for a human."""
    when = "halted in this pass" if new else "is halted"
    detail = f"not rebased: it depends on {halted}, which {when}; sync rebases it once {halted} is resolved"
    return StreamResult(name, Outcome.BLOCKED, place.tip, place.tip, detail=detail)


def _skip_reason(config: Config, place: Place, halt: Halt | None, on_top: dict[str, git.Oid]) -> StreamResult | None:
    """Why this pass leaves the stream alone (not started, halted, detached, up to date, no
    worktree, a merge in progress), or None: rebase it. Uncommitted changes are asked behind the
    fence (``_reread``), where the answer holds: an agent may edit until then."""
    name, tip = place.name, place.tip
    if tip is None:
        return StreamResult(name, Outcome.NOT_STARTED, detail=f"no branch {place.branch} (`streams start {name}`)")
    if halt is not None:
        detail = f"halted since {halt.time}: {halt_next(halt)}"
        return StreamResult(name, Outcome.HALTED, tip, tip, files=halt.files, detail=detail)
    if place.detached:
        detail = f"skipped: HEAD is detached in {place.worktree}; `git switch {place.branch}` there"
        return StreamResult(name, Outcome.DETACHED, tip, tip, detail=detail)
    if place.ref in on_top:
        return StreamResult(name, Outcome.UP_TO_DATE, tip, tip)
    if place.worktree is None:
        detail = f"branch {place.branch} is not checked out in any worktree; `streams start {name}` makes one"
        return StreamResult(name, Outcome.NO_WORKTREE, tip, tip, detail=detail)
    op, _ = git.worktree_operation(place.worktree)
    if op is not None:  # a merge or cherry-pick of the agent's or a human's: a rebase would drop it
        detail = f"skipped: a {op} is in progress in {place.worktree}; finish or abort it there, then sync again"
        return StreamResult(name, Outcome.DIRTY, tip, tip, detail=detail)
    return None


def _ignored_in_the_way(place: Place, prep: syncprep.Prepared) -> StreamResult | None:
    """An ignored file in the worktree (``.env``) that the upstream now tracks: a rebase would
    overwrite it without a word. Left alone, and said. Only a path something occupies in the
    worktree can be overwritten: git's list of ignored files (a walk of the whole worktree) is
    asked only when one does."""
    assert place.worktree is not None and place.tip is not None
    base = prep.fork(place.worktree, place.tip)
    if base is None:
        return None
    there = syncprep.present(place.worktree, prep.added_since(place.worktree, base))
    if not there:
        return None
    ignored = git.ignored_paths(place.worktree)
    clash = sorted(p for p in there if p in ignored or any(p.startswith(d) for d in ignored if d.endswith("/")))
    if not clash:
        return None
    detail = (
        f"skipped: the upstream now tracks {', '.join(clash)}, an ignored file in {place.worktree} that the "
        "rebase would overwrite; move it away (or commit it), then sync again"
    )
    return StreamResult(place.name, Outcome.DIRTY, place.tip, place.tip, files=tuple(clash), detail=detail)


def _with_new_tips(
    ws: Workspace, config: Config, places: dict[str, Place], results: dict[str, StreamResult]
) -> dict[str, StreamResult]:
    """``results`` with each rebased stream's new tip read back from its branch."""
    if not any(r.outcome == Outcome.REBASED for r in results.values()):
        return dict(results)
    tips = git.ref_oids(ws.main_root, f"refs/heads/{config.branch_prefix.rstrip('/')}")
    return {
        name: dataclasses.replace(r, new_tip=tips.get(places[name].ref)) if r.outcome == Outcome.REBASED else r
        for name, r in results.items()
    }


def _rebase_one(
    ws: Workspace, name: str, place: Place, prep: syncprep.Prepared, upstream: str
) -> tuple[StreamResult, Halt | None]:
    """Rebase one clean stream worktree (its in-flight record is already written), under its fence.

    The fence goes up first; then sync waits for a git command already running there and for the
    branch's ref lock (an agent's commit whose hooks passed before the fence went up holds it until
    the branch has moved), reads the branch again (the agent may have committed meanwhile), rebases
    with the fence's token, and lowers the fence, unless the rebase halted on a conflict: then it
    stays, ``halted``.
    """
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    upstream_tip = prep.upstream_tip
    raised = fencing.raise_fence(place.git_dir, name)
    keep = False
    try:
        busy = fencing.wait_for_git(place.git_dir)
        if busy is None:  # a commit whose hooks passed before the fence went up lands while it holds this lock
            busy = git.held_lock(ws.common_dir / f"{place.ref}.lock", fencing.WAIT_SECONDS)
        if busy is not None:
            detail = (
                f"skipped: a git command holds {busy} (waited up to {fencing.WAIT_SECONDS:.0f} s); if no git process "
                f"runs in {place.worktree}, delete that file, then sync again{locks_hint(place.worktree, place.ref)}"
            )
            return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail), None
        now = _reread(ws, name, place, upstream_tip)
        if isinstance(now, StreamResult):
            return now, None
        in_the_way = _ignored_in_the_way(now, prep)
        if in_the_way is not None:
            return in_the_way, None
        result, halt = _rebase_fenced(ws, name, now, prep, upstream, raised)
        keep = halt is not None
        return result, halt
    finally:
        if not keep:
            fencing.lower(place.git_dir)


def _reread(ws: Workspace, name: str, place: Place, upstream_tip: str) -> Place | StreamResult:
    """The stream's place read again behind the fence, or why it is left alone after all."""
    assert place.worktree is not None and place.tip is not None
    wt = place.worktree
    head, tip = git.head_and_tip(wt, place.ref, git_dir=place.git_dir, common_dir=ws.common_dir)
    if head != place.ref or tip is None or git.rebase_dir(place.git_dir or wt) is not None:
        detail = f"skipped: {wt} is no longer plainly on {place.branch} (HEAD is {head or 'detached'}); sync again"
        return StreamResult(name, Outcome.DETACHED, place.tip, place.tip, detail=detail)
    if tip != place.tip:  # the agent committed meanwhile: rebase what is there now
        begin_rebase(ws, name, tip, upstream_tip, wt)
        place = dataclasses.replace(place, tip=tip, head=tip)
        if git.is_ancestor(wt, upstream_tip, tip):
            return StreamResult(name, Outcome.UP_TO_DATE, tip, tip)
    dirty = tuple(git.is_dirty(wt, untracked=False))
    if dirty:
        return StreamResult(name, Outcome.DIRTY, tip, tip, files=dirty, detail=_dirty_detail(dirty, wt))
    return place


def _dirty_detail(dirty: Sequence[str], wt: Path) -> str:
    n = len(dirty)
    return f"skipped: {n} uncommitted change{'s' if n != 1 else ''} in {wt}; commit them, then sync again"


def _rebase_fenced(
    ws: Workspace, name: str, place: Place, prep: syncprep.Prepared, upstream: str, raised: fencing.Raised
) -> tuple[StreamResult, Halt | None]:
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    wt = place.worktree
    upstream_tip = prep.upstream_tip
    replayed = _replay(ws, name, place, prep, upstream, raised)
    if replayed is not None:
        return replayed, None
    held = git.held_lock(ws.common_dir / "packed-refs.lock", fencing.WAIT_SECONDS)
    if held is not None:  # git rebase would wait a second for it at every commit
        detail = (
            f"skipped: a git command holds {held} (waited up to {fencing.WAIT_SECONDS:.0f} s); if no git process "
            f"runs in this repository, delete that file, then sync again{locks_hint(wt, place.ref)}"
        )
        return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail), None
    aside = _rebase_aside(ws, name, place, upstream_tip, upstream, raised)
    if aside is not None:
        return aside, None
    # A conflict: the rebase is made again where the human resolves it, the stream's worktree.
    res = git.rebase(wt, upstream_tip, env=raised.env())
    blocked = res.returncode != 0 and "untracked working tree files" in res.stderr.decode("utf-8", "replace")
    if blocked and remove_leftovers(wt, [upstream_tip, place.tip]):
        # A sync killed while checking out left copies of committed files; removing them loses nothing.
        res = git.rebase(wt, upstream_tip, env=raised.env())
    # The exit code is not the whole story: look at the rebase state and the index.
    rebasing = git.rebase_dir(place.git_dir) is not None
    unmerged = git.unmerged_paths(wt)
    if rebasing and not unmerged:
        rolled = _roll_back(ws, name, place, res, raised)
        if rolled is not None:
            return rolled, None
    if rebasing or unmerged:
        halt = Halt(
            stream=name,
            files=unmerged,
            original_tip=place.tip,
            onto=upstream_tip,
            time=iso_utc(),
            worktree=str(wt),
            reason=HaltReason.CONFLICT if unmerged else HaltReason.STOPPED,
            upstream=upstream,
            ref=place.ref,
        )
        record_halt(ws, halt)
        raised.turn(fencing.HALTED)
        events.append(
            ws.common_dir,
            "sync.halt",
            stream=name,
            files=list(unmerged),
            original_tip=place.tip,
            onto=upstream_tip,
            worktree=str(wt),
        )
        detail = halt_next(halt) if unmerged else f"the rebase stopped: {res.says()}; {halt_next(halt)}"
        return StreamResult(name, Outcome.HALTED, place.tip, None, files=unmerged, detail=detail), halt
    if res.returncode != 0 and (dirty := tuple(git.is_dirty(wt, untracked=False))):
        # The agent changed files after the check behind the fence (it stops commits, not edits) and
        # `git rebase` refused to start: left alone, as a dirty worktree is.
        return StreamResult(
            name, Outcome.DIRTY, place.tip, place.tip, files=dirty, detail=_dirty_detail(dirty, wt)
        ), None
    if res.returncode != 0:
        detail = (
            f"`git rebase` in {wt} failed and changed nothing: {res.first_error()}{blocking_hint(res)}"
            f"{locks_hint(wt, place.ref)}"
        )
        return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail), None
    events.append(ws.common_dir, "sync.rebase", stream=name, old=place.tip, onto=upstream_tip)
    detail = f"rebased onto {upstream} ({upstream_tip[:12]})"
    return StreamResult(name, Outcome.REBASED, place.tip, None, detail=detail), None


def _replay(
    ws: Workspace, name: str, place: Place, prep: syncprep.Prepared, upstream: str, raised: fencing.Raised
) -> StreamResult | None:
    """The rebase made without touching the worktree (``git.replay``; prepared for the whole pass when
    the branch is still at the tip it was made from) and published with the worktree brought along
    (only the files the upstream changed are written), or None: ``git rebase`` it."""
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    upstream_tip = prep.upstream_tip
    prepared = prep.replayed(place.tip)
    if prepared is not None:
        new = prepared.new
    else:
        try:
            new = git.replay(ws.main_root, place.tip, upstream_tip)
        except GitError:  # e.g. a lock a killed git left: let `git rebase` try, and say what stands in its way
            new = None
    if new is None:
        return None
    return _publish(ws, name, place, new, upstream_tip, upstream, raised)


def _rebase_aside(
    ws: Workspace, name: str, place: Place, upstream_tip: str, upstream: str, raised: fencing.Raised
) -> StreamResult | None:
    """``git rebase`` in a private worktree (``git.rebase_aside``), published as a replay is; or None
    when it conflicts (or no private worktree could be made): the caller rebases in the worktree."""
    assert place.tip is not None
    aside = git.rebase_aside(ws.main_root, place.tip, upstream_tip, ws.state_dir / "aside", env=raised.env())
    if aside.new is not None:
        return _publish(ws, name, place, aside.new, upstream_tip, upstream, raised)
    if aside.conflict or not aside.made:
        return None
    if not aside.stopped:
        detail = f"`git rebase` failed and changed nothing: {aside.result.first_error()}; sync again"
        return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail)
    events.append(ws.common_dir, "sync.rollback", stream=name, tip=place.tip, said=aside.result.says())
    detail = (
        f"the rebase stopped without a conflict ({aside.result.says()}); rolled back at once: {place.branch} is at "
        f"{place.tip[:12]} as before, nothing lost; sync again"
    )
    return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail)


def _publish(
    ws: Workspace, name: str, place: Place, new: str, upstream_tip: str, upstream: str, raised: fencing.Raised
) -> StreamResult:
    """Move the branch to the rebased ``new`` and bring its worktree along (``git.move_checked_out``)."""
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    message = f"streams sync: rebase {place.branch} onto {upstream} ({upstream_tip[:12]})"
    raised.moving(place.tip, new)
    for _ in range(3):  # an agent's `git add` may hold index.lock for a moment
        res = git.move_checked_out(place.worktree, place.git_dir, place.ref, new, place.tip, message, env=raised.env())
        if res.returncode == 0 or "index.lock" not in res.stderr.decode("utf-8", "replace"):
            break
        fencing.wait_for_git(place.git_dir, timeout=2.0)
    if res.returncode != 0:
        detail = (
            f"not rebased: moving {place.branch} and its worktree {place.worktree} to the rebased commits failed "
            f"and was undone: {res.says()}{locks_hint(place.worktree, place.ref)}; sync again"
        )
        return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail)
    events.append(ws.common_dir, "sync.rebase", stream=name, old=place.tip, onto=upstream_tip)
    return StreamResult(name, Outcome.REBASED, place.tip, None, detail=f"rebased onto {upstream} ({upstream_tip[:12]})")


def _roll_back(ws: Workspace, name: str, place: Place, res: git.Result, raised: fencing.Raised) -> StreamResult | None:
    """A rebase that stopped for anything but a conflict: ``git rebase --abort`` at once, the branch
    back at its tip, the worktree's uncommitted files saved first under a ref (an abort resets them).
    None when the abort did not get there: the caller records a halt for a human."""
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    wt = place.worktree
    saved = ""
    if git.is_dirty(wt, untracked=True):
        ref, _ = save_uncommitted(ws, wt, name, "when a sync's rebase stopped", f"streams: sync rolled back {name}")
        saved = f"; the worktree's uncommitted files were saved first as {ref}"
    git.rebase_abort(wt, env=raised.env())
    if (
        git.rebase_dir(place.git_dir) is not None
        or git.symbolic_head(wt) != place.ref
        or git.resolve_commit(wt, place.ref) != place.tip
    ):
        return None
    events.append(ws.common_dir, "sync.rollback", stream=name, tip=place.tip, said=res.says())
    detail = (
        f"the rebase stopped without a conflict ({res.says()}); rolled back at once: {place.branch} is at "
        f"{place.tip[:12]} as before, nothing lost{saved}; sync again"
    )
    return StreamResult(name, Outcome.FAILED, place.tip, place.tip, detail=detail)
