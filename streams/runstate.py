"""A run's files: ``<common>/streams/runs/<run-id>/`` (DESIGN "Where things live").

``plan.json`` (frozen, with its digest), ``runner.json`` (the runner's lease: pid, process start
time, host, heartbeat), ``state.json`` (atomic), ``joblog.tsv`` (one row per attempt, appended
with one write; submit, start and end in epoch seconds, as GNU parallel's joblog has them), ``logs/<stream>/<attempt>.log`` and ``briefs/<stream>.md``. ``runs/latest`` names
the newest run. One runner per repository: it holds ``runs/runner.flock`` (released by the kernel
when it dies, however it dies) and a second one is refused, exit 3, naming the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streams.kernel import paths
from streams.kernel.atomic import write_atomic, write_json_atomic
from streams.kernel.errors import BusyError, StreamsError
from streams.kernel.procs import holder_name, same_process, start_time
from streams.runclass import RunStatus, StreamStatus
from streams.workspace import Workspace

RUNNER_LOCK = "runner.flock"
LATEST = "latest"
HEARTBEAT_EVERY = 5.0

JOBLOG_COLUMNS = (
    "run",
    "wave",
    "stream",
    "attempt",
    "pool",
    "command",
    "submit",
    "start",
    "end",
    "exit",
    "signal",
    "class",
    "cause",
    "commits",
    "files",
    "insertions",
    "deletions",
    "check_passed",
    "check_failed",
    "claimed",
    "verified",
    "queue_wait",
    "run_time",
    "wip",
    "approval_wait",
    "merge_latency",
)


class NoRunError(StreamsError):
    code = "no_run"


def new_run_id(now: float | None = None) -> str:
    """``20261202-041503-a1b2``: sorts by time; the suffix keeps two runs of one second apart."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


@dataclass
class Attempt:
    """One launch of a stream's agent (a row of joblog.tsv)."""

    n: int
    command: str
    fallback: bool = False
    pid: int = 0
    start_time: str | None = None  # the process's start (ticks since boot): with pid, names it
    submit: float = 0.0  # when its stream became ready for this attempt
    started: float = 0.0
    ended: float | None = None
    exit: int | None = None
    signal: int | None = None
    klass: str | None = None  # None: verified (or still running)
    cause: str = ""
    since: str = ""  # the stream's tip when the run first launched it (verification counts from here)
    tip_at_start: str = ""  # the branch tip when this attempt started (a dead runner's agent: new commits?)
    wip: str | None = None  # the ref its uncommitted work was saved under
    log: str = ""
    commits: int = 0
    files: int = 0
    insertions: int = 0
    deletions: int = 0
    check_passed: int | None = None
    check_failed: int | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def check_log(self) -> Path:
        """Where ``run.check``'s output goes for this attempt: beside its log."""
        return Path(self.log).with_suffix(".check.log")


@dataclass
class StreamRecord:
    name: str
    wave: int
    pool: str | None = None
    status: StreamStatus = StreamStatus.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    klass: str | None = None  # the class of its last attempt that failed
    cause: str = ""
    blocked_by: str | None = None  # skipped: the stream whose failure it waits on
    retries_used: int = 0
    next_at: float | None = None  # retry_wait: when it may start again
    since: str = ""  # its branch tip when the run first launched it (verification counts from here)
    worktree: str = ""
    fingerprint: str = ""  # its inputs: task, command, owned patterns, the base at its wave's start
    tip: str = ""  # its branch tip when it was verified

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


@dataclass
class RunRecord:
    run_id: str
    plan_digest: str
    names: list[str]
    waves: list[list[str]]
    status: RunStatus = RunStatus.RUNNING
    wave: int = 0  # the wave running now (1-based; 0 before the first)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    halt_reason: str = ""
    phase: str = "running"  # of the current wave: running | gate | landing | done
    paused_by: str = ""  # who paused it, and when (``streams pause``)
    merge: bool = True
    gate: str = "manual"  # run.gate (or --gate) when the run began: manual | auto-if-clean | none
    jobs: int = 0  # -j (or run.max_parallel) when the run began; a resume keeps it unless given its own
    streams: dict[str, StreamRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        streams = {}
        for name, s in data.get("streams", {}).items():
            attempts = [Attempt(**a) for a in s.pop("attempts", [])]
            s["status"] = StreamStatus(s["status"])
            streams[name] = StreamRecord(**s, attempts=attempts)
        rest = {k: v for k, v in data.items() if k != "streams"}
        rest["status"] = RunStatus(rest["status"])
        return cls(**rest, streams=streams)


class RunDir:
    """The files of one run."""

    def __init__(self, ws: Workspace, run_id: str) -> None:
        self.ws = ws
        self.run_id = run_id
        self.path = Path(paths.run_dir(ws.common_dir, run_id))

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def joblog(self) -> Path:
        return self.path / "joblog.tsv"

    @property
    def runner_file(self) -> Path:
        return self.path / "runner.json"

    def brief(self, name: str) -> Path:
        return Path(paths.brief_file(self.path, name))

    def log(self, name: str, attempt: int) -> Path:
        return Path(paths.attempt_log(self.path, name, attempt))

    def create(self, plan: dict[str, Any], digest: str, first: RunRecord | None = None) -> None:
        """The run's directory with its frozen plan, the joblog's header and its ``first`` state;
        only then does ``runs/latest`` name it, so a runner killed on the way leaves no run that
        ``streams resume`` would find without a state to resume."""
        self.path.mkdir(parents=True, exist_ok=False)
        write_json_atomic(self.path / "plan.json", {"digest": digest, "plan": plan})
        write_atomic(self.joblog, ("\t".join(JOBLOG_COLUMNS) + "\n").encode())
        if first is not None:
            self.save(first)
        write_atomic(Path(paths.runs_dir(self.ws.common_dir)) / LATEST, (self.run_id + "\n").encode())

    def save(self, record: RunRecord) -> None:
        write_json_atomic(self.state_file, record.to_json())

    def load(self) -> RunRecord:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return RunRecord.from_json(data)
        except FileNotFoundError:
            raise NoRunError(f"run {self.run_id} has no state.json (it never started)") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StreamsError(
                f"{self.state_file}: cannot be read ({exc}); the run's files are damaged", code="state"
            ) from None

    def append_job(self, record: RunRecord, s: StreamRecord, a: Attempt) -> None:
        """One joblog row for attempt ``a``: a single ``write`` on an ``O_APPEND`` file."""
        run_time = (a.ended or a.started) - a.started if a.started else 0.0
        values: dict[str, object] = {
            "run": record.run_id,
            "wave": s.wave,
            "stream": s.name,
            "attempt": a.n,
            "pool": s.pool or "",
            "command": a.command,
            "submit": f"{a.submit:.3f}" if a.submit else "",
            "start": f"{a.started:.3f}" if a.started else "",
            "end": f"{a.ended:.3f}" if a.ended else "",
            "exit": "" if a.exit is None else a.exit,
            "signal": "" if a.signal is None else a.signal,
            "class": a.klass or "verified",
            "cause": a.cause,
            "commits": a.commits,
            "files": a.files,
            "insertions": a.insertions,
            "deletions": a.deletions,
            "check_passed": "" if a.check_passed is None else a.check_passed,
            "check_failed": "" if a.check_failed is None else a.check_failed,
            "claimed": int(a.exit == 0),
            "verified": int(a.exit == 0 and a.klass is None),
            "queue_wait": f"{max(0.0, a.started - a.submit):.3f}" if a.started and a.submit else "",
            "run_time": f"{run_time:.3f}",
            "wip": a.wip or "",
            "approval_wait": "",  # filled in when its wave passes its gate and lands (fill_jobs)
            "merge_latency": "",
        }
        cells = [_cell(values[c]) for c in JOBLOG_COLUMNS]
        fd = os.open(self.joblog, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, ("\t".join(cells) + "\n").encode())
        finally:
            os.close(fd)

    def fill_jobs(self, wave: int, values: dict[tuple[str, int], dict[str, str]]) -> None:
        """Set columns of wave ``wave``'s rows, known only once it passed its gate and landed
        (``approval_wait``, ``merge_latency``): the joblog rewritten whole, atomically. Only the
        runner writes it, and no agent of that wave runs any more."""
        lines = self.joblog.read_text(encoding="utf-8").splitlines()
        head = lines[0].split("\t")
        out = [lines[0]]
        for line in lines[1:]:
            row = dict(zip(head, line.split("\t"), strict=False))
            if row.get("wave") == str(wave):
                row.update(values.get((row.get("stream", ""), int(row.get("attempt") or 0)), {}))
            out.append("\t".join(_cell(row.get(c, "")) for c in head))
        write_atomic(self.joblog, ("\n".join(out) + "\n").encode())


def _cell(value: object) -> str:
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def read_joblog(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=False)) for line in lines[1:] if line]


def latest_run(ws: Workspace) -> str | None:
    """The id of the newest run of this repository, or None."""
    try:
        text = (Path(paths.runs_dir(ws.common_dir)) / LATEST).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


# --- the runner's lease ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerInfo:
    run_id: str
    pid: int
    start_time: str | None
    holder: str
    started: float
    heartbeat: float

    @property
    def alive(self) -> bool:
        return same_process(self.pid, self.start_time)


def read_runner(rd: RunDir) -> RunnerInfo | None:
    try:
        data = json.loads(rd.runner_file.read_text(encoding="utf-8"))
        return RunnerInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_heartbeat(rd: RunDir, started: float) -> None:
    info = RunnerInfo(rd.run_id, os.getpid(), start_time(os.getpid()), holder_name(), started, time.time())
    write_json_atomic(rd.runner_file, asdict(info))


@contextlib.contextmanager
def runner_lease(ws: Workspace) -> Iterator[None]:
    """Be the one runner of this repository, or raise ``BusyError`` (exit 3) naming the one that is."""
    import fcntl

    lock = Path(paths.runs_dir(ws.common_dir)) / RUNNER_LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BusyError(_busy_message(ws)) from None
        yield
    finally:
        os.close(fd)


def _busy_message(ws: Workspace) -> str:
    run_id = latest_run(ws)
    info = read_runner(RunDir(ws, run_id)) if run_id else None
    if info is None:
        return "another `streams run` is running in this repository; wait for it, or stop it with Ctrl-C"
    ago = max(0.0, time.time() - info.heartbeat)
    return (
        f"run {info.run_id} is running (pid {info.pid}, {info.holder}, heartbeat {ago:.0f} s ago); "
        "one runner per repository: wait for it, or stop it (Ctrl-C in its terminal, or `kill "
        f"{info.pid}`)"
    )


def read_latest(ws: Workspace) -> tuple[RunRecord, RunnerInfo | None] | None:
    """The newest run's record and its runner's lease (None when no run is recorded or its state
    cannot be read: the dashboard then shows no run)."""
    run_id = latest_run(ws)
    if run_id is None:
        return None
    rd = RunDir(ws, run_id)
    try:
        record = rd.load()
    except StreamsError:
        return None
    return record, read_runner(rd)


def agent_alive(a: Attempt) -> bool:
    """Whether the attempt's agent is still running: its pid alive with the same start time."""
    return a.ended is None and a.pid > 0 and same_process(a.pid, a.start_time)


def verified_of_wave(ws: Workspace, wave: int) -> tuple[str, list[str]]:
    """(the latest run's id, its streams of ``wave`` that are verified and not yet landed):
    what ``streams merge --wave N`` lands."""
    latest = read_latest(ws)
    if latest is None:
        raise NoRunError("no run of `streams run` is recorded here; name the streams to merge instead")
    record, _ = latest
    if not 1 <= wave <= len(record.waves):
        raise StreamsError(
            f"run {record.run_id} has {len(record.waves)} wave{'s' if len(record.waves) != 1 else ''}; "
            f"--wave {wave} is not one of them",
            code="usage",
        )
    names = [n for n in record.waves[wave - 1] if record.streams[n].status is StreamStatus.VERIFIED]
    return record.run_id, names


def fingerprint(task: str, command: str, owns: tuple[str, ...], base_key: str) -> str:
    """What a stream's work is a function of: its task, its command, what it owns, and the content
    of the base its wave started from (``git.tree_key`` without streams.yaml, so a config change
    elsewhere does not count). The same fingerprint verified before need not run again."""
    import hashlib

    doc = json.dumps([task, command, list(owns), base_key], separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Earlier:
    """How a stream ended in an earlier run."""

    run_id: str
    status: StreamStatus
    fingerprint: str
    tip: str


def earlier_outcomes(ws: Workspace, *, but: str | None = None) -> dict[str, Earlier]:
    """Per stream, its newest verified or landed outcome in the runs recorded here (``but`` that one)."""
    found: dict[str, Earlier] = {}
    root = Path(paths.runs_dir(ws.common_dir))
    try:
        ids = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != but)
    except OSError:
        return found
    for run_id in ids:  # oldest first: a newer run's outcome replaces an older one's
        try:
            record = RunDir(ws, run_id).load()
        except StreamsError:
            continue
        for name, s in record.streams.items():
            if s.status in (StreamStatus.VERIFIED, StreamStatus.LANDED) and s.fingerprint:
                found[name] = Earlier(run_id, s.status, s.fingerprint, s.tip)
    return found
