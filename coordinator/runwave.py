"""The runner's work around its agents: the plan it runs, each wave's worktrees and briefs, the
agent's environment, the verdict after an exit, the WIP snapshot before a retry, and the landing
between waves.

These take the run's context (``RunContext``) and act on one stream or one wave; the loop that
calls them, and decides what a failure means, lives in ``coordinator.runner``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coordinator import gates, report, runverify
from coordinator import merge as merging
from coordinator import plan as planning
from coordinator.supervise import log_tail
from streams import brief as briefing
from streams import git, runstate, wip, worktrees
from streams.config import Config
from streams.kernel import events, paths
from streams.kernel.errors import StreamsError
from streams.kernel.paths import CONFIG_FILE
from streams.kernel.reffiles import read_ref
from streams.runclass import FailureClass, StreamStatus
from streams.runstate import Attempt, RunDir, RunRecord, StreamRecord
from streams.workspace import Workspace

CHECK_TIMEOUT = 30 * 60.0


@dataclass
class RunContext:
    """What every step of a run works with."""

    ws: Workspace
    cfg: Config
    rd: RunDir
    record: RunRecord
    notify: Callable[[str], None]


def make_plan(cfg: Config, names: Sequence[str], *, merge: bool) -> planning.Plan:
    return planning.build_plan(cfg, names, merge=merge)


# --- before a wave -----------------------------------------------------------------------------------


def prepare(runner: RunContext, names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The wave's worktrees, made one at a time from the base as it is now (or reused): (the
    streams to dispatch, in plan order; (stream, cause) for those whose worktree cannot be made)."""
    ready: list[str] = []
    failed: list[tuple[str, str]] = []
    existing: list[str] = []  # worktrees that were there before this run: synced first
    base_key = git.tree_key(runner.ws.main_root, runner.cfg.base_ref(), leaving_out=[CONFIG_FILE])
    earlier = runstate.earlier_outcomes(runner.ws, but=runner.record.run_id)
    for name in names:
        s = runner.record.streams[name]
        if s.status is not StreamStatus.PENDING:
            continue  # skipped meanwhile (a dependency failed)
        st = runner.cfg.stream(name)
        s.fingerprint = s.fingerprint or runstate.fingerprint(st.task, st.command or "", st.owns, base_key)
        if (done := _done_before(runner, s, earlier.get(name))) is not None:
            s.status, s.cause = done
            runner.notify(f"{name}: {s.cause}")
            continue
        try:
            result = worktrees.start(runner.ws, runner.cfg, [name])[0]
        except StreamsError as exc:
            failed.append((name, f"cannot make its worktree: {exc}"))
            continue
        s.worktree = str(result.path)
        if result.outcome is worktrees.StartOutcome.ALREADY_STARTED and not s.since:
            existing.append(name)
        ready.append(name)
    for name, cause in _sync_existing(runner, existing).items():
        ready.remove(name)
        failed.append((name, cause))
    for name in ready:
        s = runner.record.streams[name]
        s.since = s.since or read_ref(str(runner.ws.common_dir), runner.cfg.branch_ref(name)) or ""
        s.status, s.next_at = StreamStatus.QUEUED, time.time()
    return ready, failed


def _done_before(
    runner: RunContext, s: StreamRecord, before: runstate.Earlier | None
) -> tuple[StreamStatus, str] | None:
    """A stream an earlier run already did for the same inputs: verified with the same fingerprint
    and its branch still at that tip, or landed with the same task, command and patterns."""
    if before is None or before.fingerprint != s.fingerprint:
        return None
    tip = git.resolve_commit(runner.ws.main_root, runner.cfg.branch_ref(s.name))
    if before.status is StreamStatus.VERIFIED and tip is not None and tip == before.tip:
        s.tip = tip
        return StreamStatus.VERIFIED, f"verified by run {before.run_id} for the same inputs: not run again"
    return None


def git_dir_of(worktree: Path) -> str:
    """The worktree's private git dir (``git.worktree_git_dir``: its ``.git`` file read, no process)."""
    return str(git.worktree_git_dir(worktree) or worktree / ".git")


def write_brief(runner: RunContext, s: StreamRecord, attempt: int) -> Path:
    previous = None
    if attempt > 1:
        last = s.attempts[-2]
        previous = briefing.PreviousAttempt(
            last.n, last.klass or "verified", last.cause, last.wip, log_tail(Path(last.log), 1500)
        )
    b = briefing.compose(
        runner.ws,
        runner.cfg,
        s.name,
        run_id=runner.record.run_id,
        wave=s.wave,
        attempt=attempt,
        delivered=_delivered(runner, s.wave),
        previous=previous,
        notes=gates.notes_for(runner.rd, s.name),
    )
    path = runner.rd.brief(s.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(briefing.render(b), encoding="utf-8")
    return path


def _delivered(runner: RunContext, wave: int) -> tuple[briefing.Delivered, ...]:
    """What the waves before delivered, from their reports (none readable: said, and left out)."""
    try:
        return report.delivered(runner.rd, runner.record, wave)
    except StreamsError as exc:
        runner.notify(f"the earlier waves' reports cannot be read ({exc}); the briefs go without them")
        return ()


def agent_path() -> str:
    """PATH for the agents, with this installation's ``streams`` first."""
    here = os.path.dirname(sys.executable)
    rest = os.environ.get("PATH", "")
    return here if not rest else f"{here}{os.pathsep}{rest}"


def agent_env(runner: RunContext, s: StreamRecord, attempt: int, brief: Path) -> dict[str, str]:
    """The agent contract's environment: this process's, minus git's repository-locating variables
    (the agent's git finds its worktree from its directory)."""
    env = {k: v for k, v in git.no_git_env().items() if k not in git.JUDGE_ENV or k in os.environ}
    cfg = runner.cfg
    base_sha = git.resolve_commit(runner.ws.main_root, cfg.base_ref()) or ""
    env.update(
        {
            "PATH": agent_path(),
            "STREAMS_RUN_ID": runner.record.run_id,
            "STREAMS_STREAM": s.name,
            "STREAMS_WAVE": str(s.wave),
            "STREAMS_ATTEMPT": str(attempt),
            "STREAMS_WORKTREE": s.worktree,
            "STREAMS_BASE": cfg.base,
            "STREAMS_BASE_SHA": base_sha,
            "STREAMS_BRIEF": str(brief),
            "STREAMS_PROGRESS_FILE": str(Path(s.worktree) / cfg.stream(s.name).progress_path),
            "STREAMS_AGENT": "1",
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    return env


# --- after an attempt ---------------------------------------------------------------------------------


def verify(runner: RunContext, s: StreamRecord, a: Attempt) -> tuple[FailureClass | None, str]:
    """The verdict on an exit 0, from git alone (``coordinator.runverify``)."""
    v = runverify.verify_attempt(
        runner.ws,
        runner.cfg,
        s.name,
        Path(s.worktree),
        s.since,
        check=runner.cfg.run.check,
        check_log=a.check_log,
        wip_ref=paths.wip_ref(s.name, runner.record.run_id, a.n),
        check_timeout=CHECK_TIMEOUT,
    )
    a.flags = list(v.flags)
    a.commits, a.files, a.insertions, a.deletions = v.work_commits, v.files, v.insertions, v.deletions
    if v.wip is not None:
        a.wip = v.wip.ref
    if v.check is not None:
        a.check_passed, a.check_failed = v.check.passed_count, v.check.failed_count
    klass = FailureClass(v.klass) if v.klass is not None else None
    return klass, v.cause


def save_wip(runner: RunContext, s: StreamRecord, a: Attempt, *, discard: bool) -> None:
    """The attempt's uncommitted work, saved under its WIP ref; with ``discard`` (a retry follows)
    the worktree is then brought back to its branch tip, so the next attempt starts clean."""
    if not s.worktree or not Path(s.worktree).is_dir():
        return
    ref = paths.wip_ref(s.name, runner.record.run_id, a.n)
    try:
        snap = wip.snapshot(Path(s.worktree), ref, f"streams run {runner.record.run_id}: {s.name} attempt {a.n}")
        if snap is None:
            return
        a.wip = snap.ref
        runner.notify(f"{s.name}: uncommitted work of attempt {a.n} saved as {snap.ref}")
        if discard:
            wip.discard(Path(s.worktree), snap)
    except StreamsError as exc:
        a.cause = f"{a.cause}; its uncommitted work could not be saved ({exc}), left in place"


def count_commits(runner: RunContext, s: StreamRecord, a: Attempt) -> None:
    """Work commits, files and lines a failed attempt added to the branch (``a.since`` to the tip;
    a verified one has them from its verification already)."""
    if not a.since or a.commits:
        return
    tip = git.resolve_commit(runner.ws.main_root, runner.cfg.branch_ref(s.name))
    if tip is None or tip == a.since:
        return
    rel = runner.cfg.stream(s.name).progress_path
    changes = git.range_changes(runner.ws.main_root, [tip], [a.since])
    a.commits = sum(1 for _, paths in changes if any(p != rel for _, p in paths))
    stat = git.diff_numstat(runner.ws.main_root, a.since, tip, leave_out=[rel])
    a.files, a.insertions, a.deletions = len(stat), sum(i for i, _, _ in stat), sum(d for _, d, _ in stat)


# --- between waves ----------------------------------------------------------------------------------


def land(runner: RunContext, wave: int, names: list[str]) -> list[tuple[str, FailureClass, str]]:
    """The wave's verified streams landed on the base by the merge queue. Returns the ejected ones
    (stream, class ``conflict`` or ``check_failed``, cause): the caller applies their policy."""
    r = runner.record
    verified = [n for n in names if r.streams[n].status is StreamStatus.VERIFIED]
    if not verified:
        return []
    runner.notify(f"wave {wave}: landing {', '.join(verified)} on {runner.cfg.base}")
    report = merging.merge(runner.ws, runner.cfg, verified, check=runner.cfg.run.check)
    landed: list[str] = []
    ejected: list[tuple[str, FailureClass, str]] = []
    for res in report.results:
        s = r.streams.get(res.stream)
        if s is None:
            continue
        if res.outcome in (merging.Outcome.LANDED, merging.Outcome.NOTHING):
            s.status = StreamStatus.LANDED
            s.cause = f"landed as {res.merged[:12]}" if res.merged else "nothing to land: its changes are on the base"
            landed.append(res.stream)
            continue
        klass = FailureClass.CHECK_FAILED if res.check_log else FailureClass.CONFLICT
        ejected.append((res.stream, klass, f"the merge queue {res.outcome} it: {res.reason}"))
    events.append(
        runner.ws.common_dir, "run.land", run=r.run_id, wave=wave, landed=landed, ejected=[e[0] for e in ejected]
    )
    return ejected


def _sync_existing(runner: RunContext, names: list[str]) -> dict[str, str]:
    """Streams of the wave whose worktree existed before this run (an earlier run's branch, a
    human's start) rebased onto the base as it is now, so they start on top of what landed.
    Returns the causes of those that could not be (a conflict halts for a human)."""
    if not names:
        return {}
    from coordinator.sync import sync_pass
    from coordinator.syncresult import Outcome

    report = sync_pass(runner.ws, runner.cfg, names)
    failed: dict[str, str] = {}
    for res in report.streams:
        why = res.detail or ", ".join(res.files)
        if res.outcome in (Outcome.HALTED, Outcome.FAILED, Outcome.DETACHED, Outcome.REWRITTEN):
            failed[res.name] = f"sync before its wave: {res.outcome}{': ' + why if why else ''}"
        elif res.outcome is Outcome.REBASED:
            runner.notify(f"{res.name}: rebased onto {runner.cfg.base} before its wave")
        elif res.outcome is Outcome.DIRTY:
            runner.notify(f"{res.name}: not rebased before its wave ({why}); it runs where it is")
    return failed


__all__ = ["RunContext"]
