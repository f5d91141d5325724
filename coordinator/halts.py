"""Halts: a stream whose rebase stopped and waits for a human.

- ``reconcile``: state.json against git, at the start of every pass and of ``--continue``: halts
  the human finished or aborted by hand, rebases a killed sync left behind, rebases in progress
  that nobody recorded. Git is the truth; the state is a record of intent.
  Also the fences no live sync holds: lifted, or turned ``halted`` over a half-done rebase.
- ``continue_halt``: ``streams sync --continue NAME``: refuse conflict markers left in the files
  that were in conflict, finish the rebase (passing the halted fence with its token), re-check the
  scope, lower the fence.
- ``abort_halt``: ``streams sync --abort NAME``: keep commits made after the halt began under
  ``refs/streams/saved/…``, leave the rebase, put the branch back at its original tip (the tip it
  leaves stays in the branch's reflog), lower the fence.

Each runs under the repository's sync lock (``state.sync_lock``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.gitlocks import locks_hint, stale_locks_fix
from coordinator.leftovers import (
    blocking_hint,
    clear_dead_ref_locks,
    files_with_markers,
    remember_dead_locks,
    remove_leftovers,
    retry_dead_locks,
)
from streams import fence as fencing
from streams import git
from streams.config import Config
from streams.kernel import events
from streams.kernel.durations import iso_utc
from streams.kernel.errors import HaltedError, ScopeViolationError, StreamsError
from streams.places import Place, locate
from streams.state import (
    Halt,
    HaltReason,
    InFlight,
    clear_halt,
    end_rebase,
    halts_of,
    inflight_of,
    read_state,
    record_halt,
    sync_lock,
)
from streams.workspace import Workspace
from streams.worktrees import save_ref, save_uncommitted

if TYPE_CHECKING:
    from streams.scope import Violation

Notify = Callable[[str], None]


class SyncError(StreamsError):
    code = "sync"


class Found(StrEnum):
    """What ``reconcile`` found in git that the state did not say."""

    RESOLVED = "resolved"  # the human finished the rebase by hand
    ABORTED = "aborted"  # the human aborted it by hand
    GONE = "worktree gone"
    RECOVERED = "recovered"  # a rebase a killed sync left behind
    FOUND = "found"  # a rebase streams did not start
    FENCE_LIFTED = "fence lifted"  # a fence a dead sync left (or a finished halt's) taken down
    ROLLED_BACK = "rolled back"  # a rebase a killed sync left before any conflict, undone
    LEFT_BEHIND = "left behind"  # a worktree a killed sync left at the old tip, not brought along yet


@dataclass(frozen=True)
class Reconciled:
    """Something a pass found in git that the state did not say, and what it did about it."""

    stream: str
    what: Found
    detail: str


@dataclass(frozen=True)
class ContinueResult:
    stream: str
    halt: Halt
    tip: str  # the branch tip once the rebase finished (its scope re-checked)


@dataclass(frozen=True)
class AbortResult:
    stream: str
    halt: Halt | None
    original_tip: str
    replaced_tip: str | None  # a tip the abort moved away from (still in the branch's reflog)
    worktree: Path
    removed: tuple[str, ...] = ()  # untracked copies of committed files a killed rebase left behind
    saved: tuple[str, ...] = ()  # refs/streams/saved/… keeping commits made after the halt began


# --- what to tell the human ---------------------------------------------------------------------------


def halt_next(h: Halt) -> str:
    """What the halt is and the human's next steps, in one line."""
    if h.reason == HaltReason.INTERRUPTED:
        what = "an interrupted rebase is left half done"
    elif h.reason == HaltReason.FOUND:
        what = "a rebase streams did not start is in progress"
    elif h.files:
        what = f"conflict in {', '.join(h.files)}"
    else:
        what = "the rebase stopped"
    locks = git.stale_lock_files(Path(h.worktree), h.ref) if h.ref else []
    stale = f"; first: {stale_locks_fix(locks, 'that worktree', Path(h.worktree))}" if locks else ""
    return (
        f"{what} in {h.worktree}{stale}; resolve and `git add` the files, then `git rebase --continue` there or "
        f"`streams sync --continue {h.stream}`; or `streams sync --abort {h.stream}` (back to {h.original_tip[:12]})"
    )


# --- reconciling state.json with git ---------------------------------------------------------------


def halt_from_git(name: str, place: Place, upstream: str, reason: HaltReason) -> Halt:
    assert place.git_dir is not None and place.worktree is not None
    rebase_dir = git.rebase_dir(place.git_dir)
    orig = git.read_small(rebase_dir / "orig-head") if rebase_dir else None
    onto = git.read_small(rebase_dir / "onto") if rebase_dir else None
    return Halt(
        stream=name,
        files=git.unmerged_paths(place.worktree),
        original_tip=orig or place.tip or "",
        onto=onto or "",
        time=iso_utc(),
        worktree=str(place.worktree),
        reason=reason,
        upstream=upstream,
        ref=place.ref,
    )


def reconcile(
    ws: Workspace, config: Config, places: dict[str, Place], upstream: str
) -> tuple[dict[str, Halt], list[Reconciled]]:
    """The halts pending among ``places`` once state.json agrees with git, and what changed."""
    data = read_state(ws)
    halts = halts_of(data)
    notes: list[Reconciled] = []
    for name, rec in inflight_of(data).items():
        note = _recover(ws, name, rec, places.get(name), halts, upstream)
        if note is not None:
            notes.append(note)
            if note.what == Found.ROLLED_BACK:  # back on its branch: the pass sees it so
                places[name] = locate(ws, config, [name])[name]
    for name, halt in list(halts.items()):
        note = _settle(ws, config, name, halt, places.get(name))
        if note is not None:
            del halts[name]
            notes.append(note)
    for name, place in places.items():
        if place.rebasing and name not in halts and place.worktree is not None:
            halt = halt_from_git(name, place, upstream, HaltReason.FOUND)
            record_halt(ws, halt)
            halts[name] = halt
            notes.append(
                Reconciled(name, Found.FOUND, f"a rebase that streams did not start is in progress in {place.worktree}")
            )
            events.append(ws.common_dir, "halt.find", stream=name, worktree=str(place.worktree))
    left = {n.stream for n in notes if n.what == Found.LEFT_BEHIND}  # their fences keep agents out
    notes += _settle_fences(ws, {n: p for n, p in places.items() if n not in left}, halts)
    return halts, notes


def _settle_fences(ws: Workspace, places: dict[str, Place], halts: dict[str, Halt]) -> list[Reconciled]:
    """Fences no live sync holds, made to agree with the halts: a dead sync's fence is lifted (or
    turns ``halted`` when its rebase is left half done); a finished halt's fence is lifted."""
    notes: list[Reconciled] = []
    for name, place in places.items():
        if place.git_dir is None:
            continue
        halt = halts.get(name)
        halted = halt is not None and halt.reason != HaltReason.FOUND
        done = fencing.settle(place.git_dir, place.worktree, name, halted=halted)
        if done is None:
            continue
        what, old = done
        events.append(ws.common_dir, "fence.lift" if what == "lifted" else "fence.halt", stream=name, pid=old.pid)
        if what == "lifted" and old.purpose == fencing.SYNC:
            detail = f"lifted the fence in {place.worktree} that a sync (pid {old.pid}) left when it died"
            if place.worktree is not None and (
                locks := clear_dead_ref_locks(place.worktree, place.git_dir, ws.common_dir, place.ref)
            ):
                detail += f"; removed the lock files its killed git left: {', '.join(map(str, locks))}"
            held = [p for p in (place.git_dir / "HEAD.lock", ws.common_dir / f"{place.ref}.lock") if p.exists()]
            if held:  # a git that started before them still runs: the next passes look again
                remember_dead_locks(place.git_dir, held)
                detail += f"; {', '.join(map(str, held))} may still be a running git's: the next sync looks again"
            notes.append(Reconciled(name, Found.FENCE_LIFTED, detail))
        elif done is None and place.worktree is not None and (locks := retry_dead_locks(ws, place)):
            detail = f"removed the lock files a dead sync's git left: {', '.join(map(str, locks))}"
            notes.append(Reconciled(name, Found.FENCE_LIFTED, detail))
    return notes


def _recover(
    ws: Workspace, name: str, rec: InFlight, place: Place | None, halts: dict[str, Halt], upstream: str
) -> Reconciled | None:
    """A rebase a killed sync recorded as in flight: a halt if it is still half done, else judged."""
    if place is not None and (place.rebasing or place.detached) and place.worktree is not None:
        if name in halts:
            end_rebase(ws, name)
            return None
        files = git.unmerged_paths(place.worktree)
        if not files and (rolled := _roll_back_interrupted(ws, name, rec, place)) is not None:
            return rolled
        reason = HaltReason.CONFLICT if files else HaltReason.INTERRUPTED
        halt = Halt(
            name, files, rec.original_tip, rec.onto, iso_utc(), str(place.worktree), reason, upstream, place.ref
        )
        record_halt(ws, halt)
        halts[name] = halt
        left = "the rebase is still in progress" if place.rebasing else "HEAD is left detached"
        events.append(ws.common_dir, "sync.recover", stream=name, state="rebase in progress", pid=rec.pid)
        return Reconciled(
            name, Found.RECOVERED, f"a sync (pid {rec.pid}) was interrupted while rebasing {name}; {left}"
        )
    tip = place.tip if place is not None else None
    if tip is not None and tip != rec.original_tip and rec.onto and git.is_ancestor(ws.main_root, rec.onto, tip):
        detail = f"a sync (pid {rec.pid}) was interrupted after rebasing {name} onto {rec.onto[:12]}; it had finished"
        if place is not None and place.git_dir is not None and place.worktree is not None:
            if _left_behind(place, rec.original_tip, tip):  # under the index lock it may have left
                res = git.bring_along_locked(place.worktree, place.git_dir, rec.original_tip, tip)
                said = res.stderr.decode("utf-8", "replace").lower()
                if res.returncode != 0 and "untracked working tree file" in said:  # read-tree says "file 'x'"
                    remove_leftovers(place.worktree, [tip])  # the killed read-tree had written them already
                    res = git.bring_along_locked(place.worktree, place.git_dir, rec.original_tip, tip)
                if res.returncode != 0:  # its fence stays: an agent's commit now would undo the upstream's
                    detail += (
                        f"; its worktree is still at the old tip: `git read-tree -m -u {rec.original_tip[:12]} "
                        f"{tip[:12]}` there failed: {res.first_error()}; the next sync tries again"
                    )
                    return Reconciled(name, Found.LEFT_BEHIND, detail)
                detail += "; its worktree, left at the old tip, was brought along"
            fencing.clear_dead_move(place.git_dir, place.worktree)
    elif tip == rec.original_tip:
        detail = f"a sync (pid {rec.pid}) was interrupted before rebasing {name}; the branch is unchanged"
    else:
        detail = (
            f"a sync (pid {rec.pid}) was interrupted around a rebase of {name}; the branch is at {(tip or '-')[:12]}"
        )
    end_rebase(ws, name)
    events.append(ws.common_dir, "sync.recover", stream=name, state="no rebase in progress", tip=tip, pid=rec.pid)
    return Reconciled(name, Found.RECOVERED, detail)


def _roll_back_interrupted(ws: Workspace, name: str, rec: InFlight, place: Place) -> Reconciled | None:
    """A rebase a killed sync left half done that has not reached a conflict: rolled back at once
    (`git rebase --abort` passing the dead sync's fence, uncommitted files saved under a ref first),
    as a rebase that stops without a conflict is; the pass then rebases the stream afresh. None when
    it is not a rebase in progress or the abort did not get the branch back: it becomes a halt."""
    assert place.worktree is not None and place.git_dir is not None
    if not place.rebasing:
        return None
    saved = ""
    if git.is_dirty(place.worktree, untracked=True):
        why = f"streams: sync rolled back {name}'s interrupted rebase"
        ref, _ = save_uncommitted(ws, place.worktree, name, "when sync rolled back an interrupted rebase", why)
        saved = f"; the worktree's uncommitted files were saved first as {ref}"
    env = fencing.holder_env(place.git_dir)
    res = git.rebase_abort(place.worktree, env=env)
    if res.returncode != 0 and saved and res.blocking_files():  # files made meanwhile, saved above
        for rel in res.blocking_files():
            (place.worktree / rel).unlink(missing_ok=True)
        git.rebase_abort(place.worktree, env=env)
    if git.rebase_dir(place.git_dir) is not None or git.symbolic_head(place.worktree) != place.ref:
        return None
    end_rebase(ws, name)
    tip = git.resolve_commit(place.worktree, place.ref) or ""
    events.append(ws.common_dir, "sync.rollback", stream=name, tip=tip, said="interrupted", pid=rec.pid)
    detail = (
        f"a sync (pid {rec.pid}) was interrupted while rebasing {name}, before any conflict; rolled back: "
        f"{place.branch} is at {tip[:12]}, nothing lost{saved}"
    )
    return Reconciled(name, Found.ROLLED_BACK, detail)


def _left_behind(place: Place, original: str, tip: str) -> bool:
    """The branch moved to ``tip`` but its worktree may still be at ``original`` (a sync killed
    between moving the branch and bringing its worktree along): its fence says so, or its index
    still holds ``original``."""
    assert place.worktree is not None and place.git_dir is not None
    left = fencing.read_fence(place.git_dir)
    if left is not None and left.moving == f"{original} {tip}" and not left.holder_alive():
        return True
    return git.index_matches(place.worktree, original) and not git.index_matches(place.worktree, tip)


def _settle(ws: Workspace, config: Config, name: str, halt: Halt, place: Place | None) -> Reconciled | None:
    """A recorded halt that git says is over (finished, aborted, gone): cleared and noted; else None."""
    if place is None:
        if name in config.names:
            return None  # not selected in this pass: leave it be
        clear_halt(ws, name)
        return Reconciled(name, Found.GONE, f"{name} is no longer configured; its halt is forgotten")
    if place.worktree is None or place.tip is None:
        clear_halt(ws, name)
        events.append(ws.common_dir, "halt.clear", stream=name, why="worktree gone")
        return Reconciled(name, Found.GONE, f"the worktree of {name} is gone; its halt is forgotten")
    if place.rebasing or place.detached:
        return None
    clear_halt(ws, name)
    if halt.onto and git.is_ancestor(ws.main_root, halt.onto, place.tip):
        events.append(ws.common_dir, "halt.resolve", stream=name, tip=place.tip, via="git")
        return Reconciled(name, Found.RESOLVED, f"the rebase of {name} was finished by hand; now at {place.tip[:12]}")
    events.append(ws.common_dir, "halt.abort", stream=name, tip=place.tip, via="git")
    return Reconciled(name, Found.ABORTED, f"the rebase of {name} was aborted by hand; at {place.tip[:12]}")


# --- continue ---------------------------------------------------------------------------------------


def _place_of(ws: Workspace, config: Config, name: str) -> Place:
    config.stream(name)  # UnknownStreamError naming the known streams
    return locate(ws, config, [name])[name]


def continue_halt(ws: Workspace, config: Config, name: str, *, on_wait: Notify | None = None) -> ContinueResult:
    """Finish a halted stream's rebase (``git rebase --continue``), then re-check its scope.

    Raises ``HaltedError`` when files are still unmerged or the next commit conflicts too (the
    halt is updated), ``ScopeViolationError`` when the finished rebase holds out-of-scope changes.
    """
    with sync_lock(ws, on_wait):
        place = _place_of(ws, config, name)
        halts, notes = reconcile(ws, config, {name: place}, config.upstream_name())
        halt = halts.get(name)
        if halt is None:
            done = next((n for n in notes if n.stream == name and n.what == Found.RESOLVED), None)
            if done is not None and place.tip is not None:
                check_scope(ws, config, name, place)
                return ContinueResult(name, _resolved_halt(name, place), place.tip)
            raise SyncError(
                f"stream {name!r} is not halted; nothing to continue (run `streams sync` to sync it)", code="not_halted"
            )
        assert place.worktree is not None and place.git_dir is not None
        wt = place.worktree
        unmerged = git.unmerged_paths(wt)
        if unmerged:
            raise HaltedError(
                f"{name}: {len(unmerged)} file{'s' if len(unmerged) != 1 else ''} still unmerged in {wt}: "
                f"{', '.join(unmerged)}; resolve them, `git add` them, then run `streams sync --continue {name}` again"
            )
        marked = files_with_markers(wt, halt.files)
        if marked:
            raise HaltedError(
                f"{name}: conflict markers are still in {', '.join(marked)} in {wt}; resolve them, `git add` "
                f"the files, then run `streams sync --continue {name}` again",
                code="conflict_markers",
            )
        res = git.rebase_continue(wt, env=fencing.holder_env(place.git_dir))
        if git.rebase_dir(place.git_dir) is not None:
            if fencing.read_fence(place.git_dir) is None:
                fencing.raise_fence(place.git_dir, name, fencing.HALTED)
            files = git.unmerged_paths(wt)
            again = dataclasses.replace(
                halt, files=files, time=iso_utc(), reason=HaltReason.CONFLICT if files else halt.reason
            )
            record_halt(ws, again)
            events.append(ws.common_dir, "sync.halt", stream=name, files=list(files), onto=halt.onto, worktree=str(wt))
            what = (
                f"the next commit conflicts too, in {', '.join(files)}"
                if files
                else f"the rebase stopped again: {res.says()}"
            )
            raise HaltedError(f"{name}: {what}; {halt_next(again)}")
        if res.returncode != 0:
            raise SyncError(f"`git rebase --continue` in {wt} failed: {res.first_error()}", code="continue_failed")
        tip = git.rev_parse(wt)
        missing = git.missing_commits(wt, halt.original_tip, halt.onto, tip) if halt.onto else []
        clear_halt(ws, name)
        fencing.lower(place.git_dir)
        events.append(ws.common_dir, "halt.resolve", stream=name, tip=tip, via="streams sync --continue")
        if missing:  # e.g. a sync killed mid-rebase: never say "finished" over a lost commit
            kept = save_ref(ws, name, halt.original_tip, f"streams: sync --continue {name}: the rebase lost commits")
            raise SyncError(
                f"{name}: the rebase finished at {tip[:12]} without {len(missing)} commit"
                f"{'s' if len(missing) != 1 else ''} of the original tip ({', '.join(c[:12] for c in missing)}); "
                f"the original tip is kept as {kept}: cherry-pick them back (`git cherry-pick {' '.join(c[:12] for c in missing)}`)",
                code="incomplete",
            )
        check_scope(ws, config, name, dataclasses.replace(place, tip=tip), onto=halt.onto, original=halt.original_tip)
        return ContinueResult(name, halt, tip)


def _finished_by_hand(place: Place, halt: Halt) -> bool:
    """No rebase in progress, HEAD on the branch, and the branch on the upstream the halt was onto."""
    if place.rebasing or place.detached or place.tip is None or not halt.onto:
        return False
    return git.is_ancestor(place.worktree or Path(), halt.onto, place.tip)


def _resolved_halt(name: str, place: Place) -> Halt:
    return Halt(name, (), place.tip or "", "", iso_utc(), str(place.worktree or ""), HaltReason.RESOLVED, ref=place.ref)


def check_scope(
    ws: Workspace, config: Config, name: str, place: Place, *, onto: str | None = None, original: str | None = None
) -> None:
    """Raise ``ScopeViolationError`` when the stream's rebased commits leave its scope."""
    from streams.scope import violations_in_range  # here: only --continue needs it (and its 5 ms of imports)

    assert place.tip is not None
    upstream_ref = config.upstream_ref()
    base = onto or git.resolve_commit(ws.main_root, upstream_ref) or upstream_ref
    violations = list(violations_in_range(ws, config, name, place.tip, [base]))
    if violations:
        back = (
            f", or go back to before the rebase with `git -C {place.worktree} reset --keep {original}` "
            "(the rebased commits stay in the reflog)"
            if original and place.worktree
            else ""
        )
        raise ScopeViolationError(
            f"{name}: the rebase finished (tip {place.tip[:12]}) but its commits change paths outside the "
            f"stream's scope: {_describe(violations)}; put them back with a new commit{back}"
        )


def _describe(violations: Sequence[Violation]) -> str:
    shown = [f"{v.path} ({v.reason})" for v in violations[:10]]
    more = f" and {len(violations) - 10} more" if len(violations) > 10 else ""
    return ", ".join(shown) + more


# --- abort ------------------------------------------------------------------------------------------


def abort_halt(ws: Workspace, config: Config, name: str, *, on_wait: Notify | None = None) -> AbortResult:
    """Abort a halted stream's rebase and make sure its branch is back at the original tip."""
    with sync_lock(ws, on_wait):
        place = _place_of(ws, config, name)
        state = read_state(ws)
        halt = halts_of(state).get(name)
        inflight = inflight_of(state).get(name)  # a killed sync's rebase, not reconciled yet
        if halt is None and inflight is None and not place.rebasing:
            raise SyncError(f"stream {name!r} is not halted; nothing to abort", code="not_halted")
        if place.worktree is None or place.git_dir is None:
            clear_halt(ws, name)
            raise SyncError(
                f"stream {name!r} has no worktree any more; its halt is forgotten (the branch is at "
                f"{(place.tip or '-')[:12]}, the original tip was {(halt.original_tip if halt else '-')[:12]})",
                code="no_worktree",
            )
        if halt is not None and inflight is None and _finished_by_hand(place, halt):
            clear_halt(ws, name)
            fencing.lower(place.git_dir)
            raise SyncError(
                f"{name}'s rebase was finished by hand ({place.branch} at {(place.tip or '')[:12]}, on "
                f"{halt.onto[:12]}): nothing to abort, and the halt is cleared; to undo the rebase itself, "
                f"`git reset --keep {halt.original_tip[:12]}` in {place.worktree}",
                code="not_halted",
            )
        original = _original_tip(place, halt, inflight)
        ontos = [h.onto for h in (halt, inflight) if h is not None and h.onto]
        env = fencing.holder_env(place.git_dir)
        saved = save_new_work(ws, name, place, original, ontos)
        removed = _leave_rebase(name, place, original, env)
        removed += _back_on_branch(name, place, ontos, original, env)
        replaced = _back_at_tip(place, original, env)
        clear_halt(ws, name)
        end_rebase(ws, name)
        fencing.lower(place.git_dir)
        events.append(
            ws.common_dir,
            "halt.abort",
            stream=name,
            tip=original,
            replaced=replaced,
            removed=removed,
            saved=list(saved),
            via="streams sync --abort",
        )
        return AbortResult(name, halt, original, replaced, place.worktree, tuple(removed), saved)


def save_new_work(ws: Workspace, name: str, place: Place, original: str, ontos: Sequence[str]) -> tuple[str, ...]:
    """Keep, under ``refs/streams/saved/<name>/<time>``, HEAD and the branch tip when either holds a
    commit made after the halt began: one that is not on the original tip nor the upstream, is not
    a commit the rebase wrote (its ``rewritten-list``), and has no equivalent patch on the original
    tip. An abort then drops nothing but the rebase's own replays. Returns the refs written."""
    assert place.worktree is not None and place.git_dir is not None
    wt = place.worktree
    rebase_dir = git.rebase_dir(place.git_dir)
    rewritten: set[str] = set()
    for listing in ("rewritten-list", "rewritten-pending"):
        text = git.read_small(rebase_dir / listing) if rebase_dir else None
        rewritten |= {w for line in (text or "").splitlines() for w in line.split()[1:2]}
    tips = [git.resolve_commit(wt, "HEAD"), git.resolve_commit(wt, place.ref)]
    saved: list[str] = []
    for tip in dict.fromkeys(t for t in tips if t and t != original):
        fresh = set(git.commits_from(ws.main_root, tip, [original, *ontos])) - rewritten
        only = git.commits_only_in(ws.main_root, original, tip) if fresh else None
        if only is not None:
            fresh &= set(only)
        if fresh:
            why = f"streams: sync --abort {name}: {len(fresh)} commit(s) made after the halt began"
            saved.append(save_ref(ws, name, tip, why))
    return tuple(saved)


def _original_tip(place: Place, halt: Halt | None, inflight: InFlight | None) -> str:
    assert place.git_dir is not None
    if halt is not None and halt.original_tip:
        return halt.original_tip
    if inflight is not None:
        return inflight.original_tip
    rebase_dir = git.rebase_dir(place.git_dir)
    original = git.read_small(rebase_dir / "orig-head") if rebase_dir else None
    if not original:
        raise SyncError(
            f"cannot tell the original tip of {place.name}; run `git rebase --abort` in {place.worktree} yourself"
        )
    return original


def _leave_rebase(name: str, place: Place, original: str, env: dict[str, str]) -> list[str]:
    """``git rebase --abort``, removing the untracked copies of committed files a killed rebase left
    in the way (and nothing else). Returns the removed paths."""
    assert place.worktree is not None and place.git_dir is not None
    wt = place.worktree
    rebase_dir = git.rebase_dir(place.git_dir)
    if rebase_dir is None:
        return []
    onto = git.read_small(rebase_dir / "onto")
    removed: list[str] = []
    res = git.rebase_abort(wt, env=env)
    if git.rebase_dir(place.git_dir) is not None and "untracked working tree files" in res.stderr.decode(
        "utf-8", "replace"
    ):
        removed = remove_leftovers(wt, [r for r in (onto, original) if r])
        res = git.rebase_abort(wt, env=env)
    if git.rebase_dir(place.git_dir) is not None:
        raise SyncError(
            f"`git rebase --abort` in {wt} failed: {res.first_error()}{blocking_hint(res)}"
            f"{locks_hint(wt, place.ref)}; fix that, then retry `streams sync --abort {name}`",
            code="abort_failed",
        )
    return removed


def _back_on_branch(name: str, place: Place, ontos: Sequence[str], original: str, env: dict[str, str]) -> list[str]:
    """Switch a worktree left detached (a rebase killed at its start or end) back to its branch."""
    assert place.worktree is not None
    wt = place.worktree
    removed: list[str] = []
    head = git.symbolic_head(wt)
    if head is None:
        res = git.switch(wt, place.branch, env=env)
        if res.returncode != 0 and "untracked working tree files" in res.stderr.decode("utf-8", "replace"):
            removed = remove_leftovers(wt, [*ontos, original])
            res = git.switch(wt, place.branch, env=env)
        if res.returncode != 0:
            raise SyncError(
                f"HEAD is detached in {wt} and `git switch {place.branch}` failed: {res.first_error()}"
                f"{blocking_hint(res)}{locks_hint(wt, place.ref)}; fix that, then retry `streams sync --abort {name}`",
                code="abort_failed",
            )
        head = git.symbolic_head(wt)
    if head != place.ref:
        raise SyncError(
            f"{wt} is on {head} after the abort, not on {place.branch}; run `git switch {place.branch}` there, "
            f"then retry `streams sync --abort {name}`",
            code="abort_failed",
        )
    return removed


def _back_at_tip(place: Place, original: str, env: dict[str, str]) -> str | None:
    """Put the branch back at ``original``; the tip it leaves (returned) stays in the branch's reflog."""
    assert place.worktree is not None
    wt = place.worktree
    tip = git.rev_parse(wt)
    if tip == original:
        return None
    res = git.reset_keep(wt, original, env=env)
    if res.returncode != 0 or git.rev_parse(wt) != original:
        raise SyncError(
            f"could not move {place.branch} back to {original[:12]} in {wt}: "
            f"{res.first_error()}{locks_hint(wt, place.ref)}; commit or clean up the worktree and retry",
            code="abort_failed",
        )
    return tip
