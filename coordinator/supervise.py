"""One agent process: launched per the agent contract, watched, stopped by process group.

The agent runs ``sh -c COMMAND`` in its worktree, in a new session (its own process group), stdin
from /dev/null, stdout and stderr to its attempt's log. Its pid and process start time are
recorded: a reused pid is never ours. Stopping is TERM to the whole group, ``grace``, then KILL; an
agent that exits leaving children in its group has them stopped the same way, so no process of the
group is left behind. Nothing here blocks: the runner calls ``step`` on every tick.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.kernel import procs
from streams.kernel.procs import group_members, start_time
from streams.kernel.reffiles import read_ref
from streams.runclass import FailureClass

LOG_TAIL_BYTES = 4000
RATE_LIMIT_MARKERS = ("rate limited", "rate-limited", "rate limit exceeded")


ADOPTED_EXIT = -(2**16)  # "exited, status unknown": an adopted agent is not our child


class LaunchError(Exception):
    """The agent could not be started (no worktree, no shell): class ``launch_error``."""


@dataclass
class Agent:
    """A running attempt's process group and what the runner has seen of it."""

    proc: subprocess.Popen[bytes] | None  # None: adopted from a runner that died (not our child)
    pgid: int
    start_time: str | None
    log: Path
    worktree: Path
    git_dir: str  # the worktree's own git dir (its HEAD), to read the branch tip without a process
    common_dir: str
    branch_ref: str
    progress_file: Path
    started: float
    last_activity: float
    stop_reason: FailureClass | None = None  # why we signalled it: timeout, stall, interrupted
    kill_at: float | None = None  # when KILL follows the TERM
    exited: int | None = None  # the leader's returncode, once it is reaped
    seen: tuple[str | None, float, int] = ("", 0.0, 0)
    draining_since: float | None = None  # the leader is gone, members of its group are not
    signals: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else self.pgid

    @property
    def adopted(self) -> bool:
        return self.proc is None


def launch(
    command: str,
    worktree: Path,
    env: Mapping[str, str],
    log: Path,
    *,
    git_dir: str,
    common_dir: str,
    branch_ref: str,
    progress_file: Path,
) -> Agent:
    """Start ``command`` per the agent contract. Raises ``LaunchError`` when it cannot start."""
    if not worktree.is_dir():
        raise LaunchError(f"the worktree {worktree} is missing")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=worktree,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start /bin/sh: {exc.strerror or exc}") from None
    now = time.time()
    agent = Agent(
        proc,
        proc.pid,
        start_time(proc.pid),
        log,
        worktree,
        git_dir,
        common_dir,
        branch_ref,
        progress_file,
        now,
        now,
    )
    agent.seen = _activity(agent)
    return agent


def adopt(
    pid: int,
    started_at: str | None,
    worktree: Path,
    log: Path,
    *,
    git_dir: str,
    common_dir: str,
    branch_ref: str,
    progress_file: Path,
    started: float,
) -> Agent:
    """Supervise again an agent a runner that died left running (its pid leads its own group)."""
    now = time.time()
    agent = Agent(None, pid, started_at, log, worktree, git_dir, common_dir, branch_ref, progress_file, started, now)
    agent.seen = _activity(agent)
    return agent


def _activity(agent: Agent) -> tuple[str | None, float, int]:
    """What counts as a sign of life: the branch tip, the progress file's mtime, the log's size."""
    tip = read_ref(agent.common_dir, agent.branch_ref)
    try:
        mtime = agent.progress_file.stat().st_mtime
    except OSError:
        mtime = 0.0
    try:
        size = agent.log.stat().st_size
    except OSError:
        size = 0
    return tip, mtime, size


def observe(agent: Agent, now: float) -> None:
    """Note any new commit, progress write or log output since the last look."""
    seen = _activity(agent)
    if seen != agent.seen:
        agent.seen = seen
        agent.last_activity = now


def signal_group(agent: Agent, sig: int) -> None:
    """``sig`` to the agent's process group, if any member of it is still alive."""
    if procs.signal_group(agent.pgid, sig):
        agent.signals.append(sig)


def stop(agent: Agent, why: FailureClass, grace: float, now: float) -> None:
    """TERM the group now and KILL it after ``grace`` (``step`` sends the KILL)."""
    if agent.stop_reason is None:
        agent.stop_reason = why
    if agent.kill_at is None:
        signal_group(agent, signal.SIGTERM)
        agent.kill_at = now + grace


def step(agent: Agent, now: float, grace: float) -> bool:
    """Reap the leader, stop what is left of its group, KILL after the grace. True once the leader
    has exited and no process of its group is left."""
    if agent.exited is None:
        if agent.proc is None:  # adopted: no exit status to read, only whether it still runs
            code = None if procs.same_process(agent.pgid, agent.start_time) else ADOPTED_EXIT
        else:
            code = agent.proc.poll()
        if code is None:
            if agent.kill_at is not None and now >= agent.kill_at:
                signal_group(agent, signal.SIGKILL)
                agent.kill_at = now + 3600  # sent once
            return False
        agent.exited = code
    members = group_members(agent.pgid)
    if not members:
        return True
    if agent.draining_since is None:  # children outlived the agent: they go too
        agent.draining_since = now
        if agent.kill_at is None:
            signal_group(agent, signal.SIGTERM)
            agent.kill_at = now + grace
    elif agent.kill_at is not None and now >= agent.kill_at:
        signal_group(agent, signal.SIGKILL)
        agent.kill_at = now + 1.0  # again a second later, for one that forked meanwhile
    return False


def log_tail(log: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]
    return text


def classify(agent: Agent) -> tuple[FailureClass | None, str, int | None, int | None]:
    """(class, cause, exit, signal) of an exited agent; class None means "claims done" (exit 0),
    which only verification can confirm."""
    code = agent.exited
    assert code is not None
    sig = -code if code < 0 and code != ADOPTED_EXIT else None
    exit_code = code if code >= 0 else None
    if agent.stop_reason is not None:
        return agent.stop_reason, _stopped_cause(agent), exit_code, sig
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        return FailureClass.CRASH, f"killed by {name}, which streams did not send", None, sig
    if code == 0:
        return None, "exit 0 (claims done)", 0, None
    if code == 3:
        return FailureClass.BLOCKED, "exit 3: blocked, needs a human (see its progress file's Blocked Items)", 3, None
    if code == 75:
        limited = rate_limited(agent.log)
        why = "exit 75: rate limited" if limited else "exit 75: temporary failure"
        return FailureClass.TEMPFAIL, why, 75, None
    if code in (126, 127):
        tail = log_tail(agent.log, 400).strip().splitlines()
        said = f" ({tail[-1][:160]})" if tail else ""
        return FailureClass.LAUNCH_ERROR, f"exit {code}: the command could not be run{said}", code, None
    return FailureClass.FAILED, f"exit {code}", code, None


def _stopped_cause(agent: Agent) -> str:
    how = "KILL after the grace" if signal.SIGKILL in agent.signals else "TERM"
    if agent.stop_reason is FailureClass.TIMEOUT:
        return f"wall-clock timeout: stopped by {how}"
    if agent.stop_reason is FailureClass.STALL:
        return f"no commit, progress write or log output for the stall timeout: stopped by {how}"
    return f"interrupted: stopped by {how}"


def rate_limited(log: Path) -> bool:
    tail = log_tail(log).lower()
    return any(m in tail for m in RATE_LIMIT_MARKERS)
