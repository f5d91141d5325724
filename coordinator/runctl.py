"""A run's controls from outside the runner: ``streams pause [--now]`` and ``streams abort``
(requests in the run's directory that the runner polls, or, with no live runner, acted on at once),
the checkpoint a human returning days later reads (``checkpoint.md``), and the reconciliation
``streams resume`` does before it trusts ``state.json``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from coordinator import supervise
from coordinator.runwave import git_dir_of
from coordinator.supervise import Agent
from streams import git, runstate
from streams.config import Config
from streams.kernel import events, procs
from streams.kernel.atomic import write_atomic, write_json_atomic
from streams.kernel.durations import iso_utc
from streams.kernel.errors import StreamsError
from streams.kernel.reffiles import read_ref
from streams.runclass import RunStatus, StreamStatus
from streams.runstate import Attempt, NoRunError, RunDir, RunRecord, StreamRecord
from streams.workspace import Workspace

PAUSE_FILE = "pause.json"
ABORT_FILE = "abort.json"
CHECKPOINT_FILE = "checkpoint.md"
RESUMABLE = (
    RunStatus.RUNNING,
    RunStatus.HALTING,
    RunStatus.INTERRUPTED,
    RunStatus.PAUSED,
    RunStatus.AWAITING_APPROVAL,
)
OVER = (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_FAILURES, RunStatus.HALTED, RunStatus.ABORTED)


@dataclass(frozen=True)
class Request:
    kind: str  # pause | abort
    mode: str  # pause: soon | now
    who: str
    when: str


def read_request(rd: RunDir) -> Request | None:
    """An abort (it wins) or a pause waiting for the runner, or None."""
    for name, kind in ((ABORT_FILE, "abort"), (PAUSE_FILE, "pause")):
        try:
            data = json.loads((rd.path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return Request(kind, str(data.get("mode", "soon")), str(data.get("who", "?")), str(data.get("when", "")))
    return None


def clear_pause(rd: RunDir) -> None:
    """A resume takes the pause request down (kept beside as ``pause.done-<time>.json``)."""
    path = rd.path / PAUSE_FILE
    if path.exists():
        os.replace(path, rd.path / f"pause.done-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")


@dataclass(frozen=True)
class Controlled:
    """``streams pause --json`` / ``streams abort --json``'s ``data``.

    ===========  =====  ==========================================================================
    field        type   meaning
    ===========  =====  ==========================================================================
    run_id       str    the run
    action       str    pause | pause --now | abort
    runner_alive bool   a runner is running it: it acts on the request at its next look (0.25 s)
    status       str    the run's status now (``paused``/``aborted`` at once when no runner runs)
    stopped      [str]  streams whose agents this command stopped itself (no runner alive)
    next         str    what to do next
    ===========  =====  ==========================================================================
    """

    run_id: str
    action: str
    runner_alive: bool
    status: str
    stopped: tuple[str, ...]
    next: str


def _latest(ws: Workspace) -> tuple[RunDir, RunRecord, bool]:
    run_id = runstate.latest_run(ws)
    if run_id is None:
        raise NoRunError("no run of `streams run` is recorded in this repository; start one with `streams run`")
    rd = RunDir(ws, run_id)
    record = rd.load()
    info = runstate.read_runner(rd)
    return rd, record, bool(info is not None and info.alive)


def pause(ws: Workspace, cfg: Config, *, now: bool) -> Controlled:
    """Ask the runner to pause (``now``: stop its agents too); with no runner, pause the run's
    records at once (stopping any agent a dead runner left, when ``now``)."""
    rd, record, alive = _latest(ws)
    action = "pause --now" if now else "pause"
    if record.status in OVER:
        raise StreamsError(f"run {record.run_id} is {record.status}: there is nothing to pause", code="error")
    who = f"{procs.holder_name()} at {iso_utc()}"
    write_json_atomic(
        rd.path / PAUSE_FILE, {"mode": "now" if now else "soon", "who": procs.holder_name(), "when": iso_utc()}
    )
    stopped: tuple[str, ...] = ()
    if not alive:
        stopped = stop_orphans(ws, cfg, record) if now else ()
        record.status, record.paused_by = RunStatus.PAUSED, who
        rd.save(record)
        write_checkpoint(rd, record)
    events.append(ws.common_dir, "run.pause", run=record.run_id, now=now, by=procs.holder_name())
    status = str(record.status) if not alive else "running"
    nxt = (
        "`streams resume` goes on from where it stopped"
        if not alive
        else (
            "the runner stops starting agents; it exits 4 once its running agents have "
            + ("been stopped" if now else "finished")
            + "; then `streams resume`"
        )
    )
    return Controlled(record.run_id, action, alive, status, stopped, nxt)


def abort(ws: Workspace, cfg: Config) -> Controlled:
    """Stop the run for good: its runner stops every agent; with no runner, this command does."""
    rd, record, alive = _latest(ws)
    if record.status in OVER:
        raise StreamsError(f"run {record.run_id} is {record.status}: there is nothing to abort", code="error")
    write_json_atomic(rd.path / ABORT_FILE, {"who": procs.holder_name(), "when": iso_utc()})
    stopped: tuple[str, ...] = ()
    if not alive:
        stopped = stop_orphans(ws, cfg, record)
        for s in record.streams.values():
            if not s.status.settled or s.status is StreamStatus.INTERRUPTED:
                s.status, s.cause = StreamStatus.INTERRUPTED, "the run was aborted"
        record.status, record.ended = RunStatus.ABORTED, time.time()
        rd.save(record)
        write_checkpoint(rd, record)
    events.append(ws.common_dir, "run.abort", run=record.run_id, by=procs.holder_name())
    nxt = (
        "the runner stops every agent and ends the run" if alive else "the run is over; `streams run` starts a new one"
    )
    return Controlled(record.run_id, "abort", alive, "running" if alive else str(record.status), stopped, nxt)


def stop_orphans(ws: Workspace, cfg: Config, record: RunRecord, grace: float = 5.0) -> tuple[str, ...]:
    """TERM (then KILL after ``grace``) the process group of every agent a dead runner left running
    (one it started but died before recording too: found by its environment, recorded first)."""
    for name, agent in _unrecorded_agents(record).items():
        s = record.streams[name]
        if not s.status.settled and s.status is not StreamStatus.RUNNING:
            _record_unrecorded(ws, cfg, record, s, agent)
    live = [(s, a) for s in record.streams.values() if (a := s.last) is not None and runstate.agent_alive(a)]
    for _, a in live:
        procs.signal_group(a.pid, signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and any(procs.group_members(a.pid) for _, a in live):
        time.sleep(0.1)
    for _, a in live:
        procs.signal_group(a.pid, signal.SIGKILL)
    for s, a in live:
        a.ended, a.klass, a.cause = time.time(), "interrupted", "stopped: its runner was gone"
        s.status = StreamStatus.INTERRUPTED
    return tuple(s.name for s, _ in live)


# --- resume: git's truth before state.json's ------------------------------------------------------------


def reconcile(ws: Workspace, cfg: Config, record: RunRecord) -> tuple[dict[str, Agent], list[str], list[str]]:
    """Each unfinished stream of ``record`` against git and the processes: (agents still running,
    adopted; streams whose dead agent left new commits, to verify; streams re-queued).

    An attempt whose end was recorded but whose verdict was not (the runner died while verifying
    it) is judged again like a dead agent: its commits go to verification, never to a re-run. An
    agent the runner started but died before recording (found by its ``STREAMS_RUN_ID`` and
    ``STREAMS_STREAM``) is recorded and adopted; one that already exited is known by its commits.
    An attempt the joblog already calls verified (the runner died between writing that row and
    saving the state) is verified, not verified a second time."""
    adopted: dict[str, Agent] = {}
    verify: list[str] = []
    requeued: list[str] = []
    unrecorded = _unrecorded_agents(record)
    verified = _verified_rows(RunDir(ws, record.run_id))
    for s in record.streams.values():
        if not s.status.settled and s.status is not StreamStatus.RUNNING:
            _record_unrecorded(ws, cfg, record, s, unrecorded.get(s.name))
        a = s.last
        if s.status is StreamStatus.RUNNING and a is not None:
            if a.ended is None and runstate.agent_alive(a):
                adopted[s.name] = _adopt(ws, cfg, s)
                continue
            row = verified.get((s.name, str(a.n)))
            if row is not None:
                _verified_by_joblog(s, a, row)
                continue
            verdict = _judge_dead(ws, cfg, s, a)
            if verdict == "verify":
                verify.append(s.name)
            if verdict != "requeue":
                continue
        if s.status in (StreamStatus.RUNNING, StreamStatus.QUEUED, StreamStatus.RETRY_WAIT, StreamStatus.INTERRUPTED):
            s.status, s.next_at = StreamStatus.PENDING, None
            s.cause = "re-queued by resume (no retry spent)"
            requeued.append(s.name)
    return adopted, verify, requeued


def _verified_rows(rd: RunDir) -> dict[tuple[str, str], dict[str, str]]:
    """The joblog's verified rows: (stream, attempt) -> row."""
    try:
        rows = runstate.read_joblog(rd.joblog)
    except OSError:
        return {}
    return {(r.get("stream", ""), r.get("attempt", "")): r for r in rows if r.get("class") == "verified"}


def _verified_by_joblog(s: StreamRecord, a: Attempt, row: dict[str, str]) -> None:
    """Attempt ``a``'s verdict as its joblog row has it (written just before the state was to be)."""

    def num(key: str) -> int | None:
        try:
            return int(row.get(key, ""))
        except ValueError:
            return None

    try:
        a.ended = float(row.get("end", "")) or a.ended or time.time()
    except ValueError:
        a.ended = a.ended or time.time()
    a.klass, a.cause, a.exit = None, row.get("cause", ""), num("exit")
    a.commits, a.files = num("commits") or 0, num("files") or 0
    a.insertions, a.deletions = num("insertions") or 0, num("deletions") or 0
    a.check_passed, a.check_failed = num("check_passed"), num("check_failed")
    s.status, s.klass, s.cause = StreamStatus.VERIFIED, None, a.cause


def _judge_dead(ws: Workspace, cfg: Config, s: StreamRecord, a: Attempt) -> str:
    """A running stream whose agent is gone: ``verify`` (new commits), ``blocked`` (a git operation
    in progress in its worktree) or ``requeue``."""
    if a.ended is None:
        a.ended = time.time()
    op = git.worktree_operation(Path(s.worktree))[0] if s.worktree and Path(s.worktree).is_dir() else None
    if op:
        s.status, s.cause = StreamStatus.BLOCKED, f"a {op} is in progress in its worktree: a human finishes it"
        return "blocked"
    tip = read_ref(str(ws.common_dir), cfg.branch_ref(s.name))
    if tip is not None and tip != (a.tip_at_start or s.since):
        return "verify"
    a.klass, a.cause = "interrupted", "its runner died and it made no commit: re-queued"
    return "requeue"


def _unrecorded_agents(record: RunRecord) -> dict[str, tuple[int, dict[str, str]]]:
    """Live agents of this run that ``state.json`` does not name (the runner died between starting
    one and saving its pid): stream -> (pid, its ``STREAMS_*`` environment)."""
    known = {a.pid for s in record.streams.values() for a in s.attempts if a.ended is None}
    found: dict[str, tuple[int, dict[str, str]]] = {}
    for pid, env in procs.session_leaders_with_env({"STREAMS_RUN_ID": record.run_id}):
        name = env.get("STREAMS_STREAM", "")
        if pid not in known and name in record.streams:
            found.setdefault(name, (pid, env))
    return found


def _record_unrecorded(
    ws: Workspace, cfg: Config, record: RunRecord, s: StreamRecord, agent: tuple[int, dict[str, str]] | None
) -> None:
    """A stream waiting to start whose agent did start: alive (``agent``), its attempt is recorded
    as running, to be adopted; gone, a first attempt that left commits is recorded as ended, to be
    verified. Either way the stream is ``running`` after this."""
    now = time.time()
    if agent is not None:
        pid, env = agent
        try:
            n = int(env.get("STREAMS_ATTEMPT", ""))
        except ValueError:
            n = len(s.attempts) + 1
        started = procs.start_time(pid)
        if not procs.same_process(pid, started):
            return
        a = Attempt(n, cfg.stream(s.name).command or "", pid=pid, start_time=started, submit=now, started=now)
    elif not s.attempts and s.since and s.status is StreamStatus.QUEUED:
        tip = read_ref(str(ws.common_dir), cfg.branch_ref(s.name))
        if tip is None or tip == s.since:
            return
        a = Attempt(1, cfg.stream(s.name).command or "", submit=now, started=now, ended=now)
    else:
        return
    a.since, a.log = s.since, str(RunDir(ws, record.run_id).log(s.name, a.n))
    s.attempts.append(a)
    s.status, s.next_at, s.cause = StreamStatus.RUNNING, None, "its agent started before the runner recorded it"


def _adopt(ws: Workspace, cfg: Config, s: StreamRecord) -> Agent:
    a = s.last
    assert a is not None
    wt = Path(s.worktree)
    return supervise.adopt(
        a.pid,
        a.start_time,
        wt,
        Path(a.log),
        git_dir=git_dir_of(Path(s.worktree)),
        common_dir=str(ws.common_dir),
        branch_ref=cfg.branch_ref(s.name),
        progress_file=wt / cfg.stream(s.name).progress_path,
        started=a.started,
    )


# --- the checkpoint -------------------------------------------------------------------------------------


def write_checkpoint(rd: RunDir, record: RunRecord) -> Path:
    """``checkpoint.md``: where the run stands, in one file a human returning days later reads."""
    groups: dict[str, list[StreamRecord]] = {}
    for name in record.names:
        s = record.streams[name]
        groups.setdefault(_group(s.status), []).append(s)
    lines = [
        f"# Run {record.run_id}: {record.status}",
        "",
        f"Checkpoint written {iso_utc()}. Wave {record.wave} of {len(record.waves)} ({record.phase}).",
    ]
    if record.paused_by:
        lines.append(f"Paused by {record.paused_by}.")
    if record.halt_reason:
        lines.append(f"Halted: {record.halt_reason}.")
    for title in ("Completed", "Interrupted", "Blocked", "Failed", "Pending", "Skipped"):
        items = groups.get(title, [])
        if not items:
            continue
        lines += ["", f"## {title} ({len(items)})", ""]
        for s in items:
            detail = f" — {s.klass}" if s.klass and title != "Completed" else ""
            lines.append(f"- `{s.name}` (wave {s.wave}, {len(s.attempts)} attempt(s)){detail}: {s.cause or s.status}")
    lines += ["", "## Next", "", _next(record), ""]
    path = rd.path / CHECKPOINT_FILE
    write_atomic(path, "\n".join(lines).encode())
    return path


def _group(status: StreamStatus) -> str:
    if status in (StreamStatus.VERIFIED, StreamStatus.LANDED):
        return "Completed"
    if status is StreamStatus.INTERRUPTED:
        return "Interrupted"
    if status is StreamStatus.BLOCKED:
        return "Blocked"
    if status is StreamStatus.FAILED:
        return "Failed"
    if status is StreamStatus.SKIPPED:
        return "Skipped"
    return "Pending"


def _next(record: RunRecord) -> str:
    if record.status is RunStatus.AWAITING_APPROVAL:
        return f"Read `streams report --wave {record.wave}`, then `streams approve {record.wave}` and `streams resume`."
    if record.status in RESUMABLE:
        return "Run `streams resume` (in the repository's main worktree) to go on from here."
    return "The run is over; `streams run` starts a new one."
