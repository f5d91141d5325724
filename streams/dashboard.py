"""The dashboard's model: one frozen ``StreamStatus`` per stream, a ``Summary``, a ``Snapshot``.
No git, no printing: ``streams.status`` fills it in, ``streams.cli.status`` renders it as a table,
a live view or JSON.

JSON (``streams status --json``; ``data`` of the common envelope)

===========================  ================  ==================================================
field                        type              meaning
===========================  ================  ==================================================
base                         str               the integration branch (``base:`` in streams.yaml)
base_ref                     str               what ahead/behind/changed are measured against:
                                               ``refs/remotes/<remote>/<base>`` (as last
                                               fetched) when ``remote:`` is set, else
                                               ``refs/heads/<base>`` — what sync rebases onto
base_tip                     str | null        its commit
time                         str               when the snapshot was taken (ISO 8601, UTC)
summary.total                int               rows (configured streams, plus unconfigured
                                               stream worktrees)
summary.started              int               rows with a worktree (state ``started``)
summary.not_started          int               state ``not started`` or ``branch only``
summary.active               int               started, not halted, and progress ``in_progress``
                                               or an agent running
summary.completed            int               progress status ``completed``
summary.blocked              int               progress status ``blocked``
summary.failed               int               progress status ``failed``
summary.halted               int               halted by sync on a conflict (state.json)
summary.locks_held           int               live leases on shared files, all streams
summary.out_of_scope         int               uncommitted out-of-scope paths, all streams
summary.predicted_conflicts  int               streams whose rebase is predicted to conflict
summary.errors               int               rows with at least one error
summary.hooks                {hook: str}       each scope hook's state: installed | outdated |
                                               foreign | missing (``streams hooks status``)
summary.hooks_path           str | null        ``core.hooksPath`` when set: git then runs none of
                                               streams' hooks
summary.hooks_ok             bool              every hook installed and current, and run by git
streams[].name               str               stream name
streams[].state              str               ``started`` | ``not started`` | ``branch only``
                                               (branch, no worktree) | ``missing`` (worktree
                                               registered, directory gone) | ``unconfigured``
                                               (a stream worktree not in streams.yaml)
streams[].branch             str               e.g. ``streams/api``
streams[].worktree           str | null        worktree path (configured path when not started)
streams[].head               str | null        tip of the stream's branch
streams[].status             str | null        progress status: pending | in_progress | blocked
                                               | completed | failed | paused (null: unreadable)
streams[].completion         int | null        0-100 from the progress file
streams[].current_task       str               "Current Task" of the progress file
streams[].blocked_items      [str]             "Blocked Items" of the progress file
streams[].progress_updated   str               ``updated:`` of the progress file
streams[].ahead              int | null        commits on the branch with work not on
                                               ``base_ref``: progress-only commits and commits
                                               whose patch is on it left out; what ``streams
                                               stop`` counts (``worktrees.unmerged_commits``)
streams[].behind             int | null        commits on ``base_ref`` not on the branch
streams[].dirty              [str]             uncommitted paths (staged, unstaged, untracked;
                                               both sides of a staged rename)
streams[].committed_out_of_scope [{path, reason}]  paths its commits since the merge base
                                               changed outside its scope (``streams verify``
                                               would refuse them; shared paths pass)
streams[].out_of_scope       [{path, reason}]  uncommitted paths the stream may not commit,
                                               with why (``streams.scope.check_paths``)
streams[].locks              [LeaseView]       live leases the stream holds (``LeaseView``'s
                                               fields: the lease shape of ``streams locks``)
streams[].halted             bool              sync halted this stream on a conflict
streams[].halt               Halt | null       the recorded halt: the shape of ``sync --json``'s
                                               ``report.halts[]`` (``streams.state.Halt``)
streams[].operation          str | null        rebase | merge | cherry-pick | revert in progress
                                               in the worktree
streams[].conflicted         [str]             unmerged paths in the worktree now
streams[].predicted_conflicts [str]            paths a rebase onto the base would conflict on
streams[].changed            [str]             paths changed since the merge base, committed or
                                               not (its own progress file left out)
streams[].overlaps           {stream: [str]}   other streams that changed the same paths
streams[].last_commit        str | null        author date of the branch tip (ISO 8601, UTC; a
                                               rebase by sync keeps it)
streams[].last_commit_age    float | null      seconds since then
streams[].agent_pid          int | null        pid of its agent's last attempt in the latest run
                                               (the runner's records: ``runs/<id>/state.json``)
streams[].agent_running      bool              that process is alive (same pid, same start time)
streams[].run                object | null     the stream in the latest run of ``streams run``
streams[].run.run_id         str               that run
streams[].run.wave           int               the stream's wave in it
streams[].run.status         str               pending | queued | running | retry_wait | verified
                                               | landed | failed | blocked | skipped | interrupted
streams[].run.attempt        int               attempts so far
streams[].run.failure        str | null        the class of its last failure (null: none)
streams[].run.cause          str               one line: why it stands so
streams[].errors             [str]             what could not be read for this row
streams[].landed             str | null        the commit ``streams merge`` landed it as (state
                                               ``landed``: its branch and worktree are gone)
streams[].active             bool              started, not halted, and progress ``in_progress``
                                               or an agent running (what summary.active counts)
run                          object | null     the latest run of ``streams run`` (null: none)
run.run_id                   str               its id (``<common>/streams/runs/<run_id>/``)
run.status                   str               running | halting | interrupted | completed |
                                               completed_with_failures | halted | blocked (a run
                                               whose runner is gone shows interrupted)
run.wave                     int               the wave running (or last run)
run.waves                    int               waves in its plan
run.runner_alive             bool              its runner process is alive
run.paused_by                str               who paused it and when ("" when not paused)
run.running                  int               its streams whose agent is running now
run.queued                   int               its streams waiting to start (pending, queued,
                                               retry_wait)
run.verified                 int               its streams verified or landed
run.failed                   int               its streams failed, blocked or interrupted
run.elapsed                  float             seconds since it began (to its end once ended)
run.remaining                float | null      expected seconds left: each running stream's
                                               median attempt time less its time so far, plus
                                               the median for each waiting one, ÷ the streams
                                               running (at least 1); null before any attempt
                                               ended or once the run is not running
warnings                     [str]             what could not be read for the whole snapshot
===========================  ================  ==================================================

``streams status --json --watch`` prints one such envelope per line (NDJSON): the first snapshot,
then one each time a refresh finds anything changed but the clock (``steady``: ``time``,
``streams[].last_commit_age``, ``streams[].locks[].seconds_left``, ``run.elapsed`` and
``run.remaining`` alone do not make a line; they are as of the line's ``time``). It ends on
SIGINT or SIGTERM with exit 130 ("streams: interrupted" on stderr, never half a line), and with
exit 0 once its stdout is closed (a reader such as ``head -1`` went away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from streams.kernel.locks import LeaseView
from streams.places import PlaceState
from streams.progress import ProgressStatus
from streams.state import Halt

# The row states by their short names (the dashboard's cells and watchers use them).
STARTED = PlaceState.STARTED
NOT_STARTED = PlaceState.NOT_STARTED
BRANCH_ONLY = PlaceState.BRANCH_ONLY
MISSING = PlaceState.MISSING
UNCONFIGURED = PlaceState.UNCONFIGURED
LANDED = PlaceState.LANDED


@dataclass(frozen=True)
class ScopeIssue:
    path: str
    reason: str


@dataclass(frozen=True)
class RunCell:
    """A stream in the latest run (``streams[].run``)."""

    run_id: str
    wave: int
    status: str
    attempt: int
    failure: str | None
    cause: str


@dataclass(frozen=True)
class RunView:
    """The latest run (``run``). A run whose runner is gone while it says running shows
    ``interrupted``."""

    run_id: str
    status: str
    wave: int
    waves: int
    runner_alive: bool
    paused_by: str = ""
    running: int = 0
    queued: int = 0
    verified: int = 0
    failed: int = 0
    elapsed: float = 0.0
    remaining: float | None = None


@dataclass(frozen=True)
class StreamStatus:
    name: str
    state: PlaceState
    branch: str
    worktree: str | None
    head: str | None = None
    status: ProgressStatus | None = None
    completion: int | None = None
    current_task: str = ""
    blocked_items: tuple[str, ...] = ()
    progress_updated: str = ""
    ahead: int | None = None
    behind: int | None = None
    dirty: tuple[str, ...] = ()
    out_of_scope: tuple[ScopeIssue, ...] = ()
    committed_out_of_scope: tuple[ScopeIssue, ...] = ()
    locks: tuple[LeaseView, ...] = ()
    halted: bool = False
    halt: Halt | None = None
    operation: str | None = None
    conflicted: tuple[str, ...] = ()
    predicted_conflicts: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    overlaps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    last_commit: str | None = None
    last_commit_age: float | None = None
    agent_pid: int | None = None
    agent_running: bool = False
    errors: tuple[str, ...] = ()
    landed: str | None = None
    run: RunCell | None = None

    json_properties: ClassVar[tuple[str, ...]] = ("active",)  # derived facts the JSON carries too

    @property
    def active(self) -> bool:
        return self.state == STARTED and not self.halted and (self.status == "in_progress" or self.agent_running)


@dataclass(frozen=True)
class Summary:
    total: int
    started: int
    not_started: int
    active: int
    completed: int
    blocked: int
    failed: int
    halted: int
    locks_held: int
    out_of_scope: int
    predicted_conflicts: int
    errors: int
    hooks: dict[str, str] = field(default_factory=dict)
    hooks_path: str | None = None

    json_properties: ClassVar[tuple[str, ...]] = ("hooks_ok",)  # derived facts the JSON carries too

    @property
    def hooks_ok(self) -> bool:
        """Every scope hook installed and current, and git runs them (no ``core.hooksPath``)."""
        return self.hooks_path is None and all(state == "installed" for state in self.hooks.values())


@dataclass(frozen=True)
class Snapshot:
    base: str
    base_ref: str
    base_tip: str | None
    time: str
    summary: Summary
    streams: tuple[StreamStatus, ...]
    warnings: tuple[str, ...] = ()
    run: RunView | None = None


def summarize(
    rows: Sequence[StreamStatus], locks_held: int, hooks: dict[str, str] | None = None, hooks_path: str | None = None
) -> Summary:
    return Summary(
        total=len(rows),
        started=sum(r.state == STARTED for r in rows),
        not_started=sum(r.state in (NOT_STARTED, BRANCH_ONLY) for r in rows),
        active=sum(r.active for r in rows),
        completed=sum(r.status == "completed" for r in rows),
        blocked=sum(r.status == "blocked" for r in rows),
        failed=sum(r.status == "failed" for r in rows),
        halted=sum(r.halted for r in rows),
        locks_held=locks_held,
        out_of_scope=sum(len(r.out_of_scope) for r in rows),
        predicted_conflicts=sum(bool(r.predicted_conflicts) for r in rows),
        errors=sum(bool(r.errors) for r in rows),
        hooks=dict(hooks or {}),
        hooks_path=hooks_path,
    )


def steady(snap: Snapshot) -> Snapshot:
    """``snap`` without what changes with the clock alone (the snapshot's time, commit ages, the
    seconds a lease has left, a run's elapsed and remaining time): two snapshots whose ``steady``
    forms are equal say the same thing, and a watch that prints changes prints neither twice."""
    rows = tuple(
        replace(r, last_commit_age=None, locks=tuple(replace(lk, seconds_left=0.0) for lk in r.locks))
        for r in snap.streams
    )
    run = replace(snap.run, elapsed=0.0, remaining=None) if snap.run is not None else None
    return replace(snap, time="", streams=rows, run=run)
