"""``streams run`` and ``streams resume`` from end to end: the plan's waves one after another
(``coordinator.runner`` runs one wave), the landing between them, and what stops a run for a human
(a pause, an abort, Ctrl-C, a gate) with its checkpoint.

A run's phase is written before each step (``running`` its wave, ``landing`` it, ``done``), so a
resume after any stop, a runner killed with ``kill -9`` included, takes up the wave where it was.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import ClassVar

from coordinator import gates, report, runctl, runwave, supervise
from coordinator.gates import GateState
from coordinator.runner import TICK, Notify, Runner, RunOptions
from streams import git
from streams.config import Config
from streams.kernel import events
from streams.kernel.errors import EXIT_FAILURE, EXIT_HALTED, EXIT_INTERRUPTED, EXIT_OK, StreamsError, UsageError
from streams.runclass import FailureClass, RunStatus, StreamStatus
from streams.runconfig import MAX_POOL, FailurePolicy, Gate
from streams.runstate import (
    NoRunError,
    RunDir,
    RunRecord,
    StreamRecord,
    latest_run,
    new_run_id,
    runner_lease,
    write_heartbeat,
)
from streams.workspace import Workspace


@dataclass(frozen=True)
class WaveSpec:
    number: int
    streams: tuple[str, ...]
    mode: str


@dataclass(frozen=True)
class StreamOutcome:
    """One stream in ``streams run --json``'s ``streams``.

    ==========  ============  ====================================================================
    field       type          meaning
    ==========  ============  ====================================================================
    name        str           the stream
    wave        int           its wave (1-based)
    status      str           verified | landed | failed | blocked | skipped | interrupted | pending
    failure     str | null    its failure class (failed, timeout, stall, …); null when it succeeded
    cause       str           one line: why it ended so
    attempts    int           how many times its agent was launched
    blocked_by  str | null    skipped: the stream whose failure it waited on
    commits     int           its commits in this run (all attempts)
    log         str | null    its last attempt's log
    ==========  ============  ====================================================================
    """

    name: str
    wave: int
    status: str
    failure: str | None
    cause: str
    attempts: int
    blocked_by: str | None
    commits: int
    log: str | None


@dataclass(frozen=True)
class RunResult:
    """``streams run --json``'s ``data``.

    ==========  ===============  ===============================================================
    field       type             meaning
    ==========  ===============  ===============================================================
    run_id      str              the run (its files: ``<common>/streams/runs/<run_id>/``)
    status      str              completed | completed_with_failures | halted | blocked |
                                 interrupted
    waves       int              how many waves the plan has
    streams     [StreamOutcome]  one per planned stream, in plan order
    halt        str              why the run stopped starting agents ("" when it did not)
    run_dir     str              the run's directory
    exit_code   int              0 all verified; 1 finished with failures; 4 a stream is blocked;
                                 130 interrupted
    ==========  ===============  ===============================================================
    """

    run_id: str
    status: str
    waves: int
    streams: tuple[StreamOutcome, ...]
    halt: str
    run_dir: str

    json_properties: ClassVar[tuple[str, ...]] = ("exit_code",)

    @property
    def exit_code(self) -> int:
        if self.status == RunStatus.INTERRUPTED:
            return EXIT_INTERRUPTED
        if self.status in (RunStatus.PAUSED, RunStatus.AWAITING_APPROVAL):
            return EXIT_HALTED
        if any(s.status == StreamStatus.BLOCKED for s in self.streams):
            return EXIT_HALTED
        if self.status == RunStatus.COMPLETED:
            return EXIT_OK
        return EXIT_FAILURE


# --- the run -----------------------------------------------------------------------------------------


def run(ws: Workspace, cfg: Config, opts: RunOptions, notify: Notify | None = None) -> RunResult:
    """Run the plan of ``opts.names`` (every stream when empty) to its end, or to a stop."""
    say = notify or (lambda _line: None)
    jobs = _jobs(cfg, opts)
    cfg.select(list(opts.names))
    merge = opts.merge if opts.merge is not None else cfg.run.merge
    plan = runwave.make_plan(cfg, opts.names, merge=merge)
    missing = [n for w in plan.waves for n in w.streams if not cfg.stream(n).command]
    if missing:
        raise StreamsError(
            f"no `command:` for {', '.join(missing)} in {cfg.path.name}: say which agent runs each stream "
            "(e.g. command: ./agents/run.sh), or leave those streams out of `streams run NAME…`",
            code="config",
        )
    with runner_lease(ws):
        run_id = opts.run_id or new_run_id()
        rd = RunDir(ws, run_id)
        names = [n for w in plan.waves for n in w.streams]
        record = RunRecord(run_id, plan.digest, names, [list(w.streams) for w in plan.waves], merge=plan.merge)
        record.gate, record.jobs = str(opts.gate or cfg.run.gate), jobs
        for w in plan.waves:
            for n in w.streams:
                record.streams[n] = StreamRecord(n, w.number, pool=cfg.stream(n).run.pool)
        rd.create(plan.to_json(), plan.digest, record)
        runner = _runner(ws, cfg, opts, rd, record, say, jobs)
        events.append(ws.common_dir, "run.start", run=run_id, streams=names, waves=len(plan.waves), plan=plan.digest)
        say(f"run {run_id}: {len(names)} streams in {len(plan.waves)} waves, -j {jobs} (files: {rd.path})")
        specs = [WaveSpec(w.number, w.streams, str(w.mode)) for w in plan.waves]
        return _drive(runner, specs)


def resume(ws: Workspace, cfg: Config, opts: RunOptions, notify: Notify | None = None) -> RunResult:
    """Take the latest run up again where it stopped (paused, interrupted, its runner killed, at a
    gate): reconcile every unfinished stream with git and the processes first."""
    say = notify or (lambda _line: None)
    jobs = _jobs(cfg, opts)
    if latest_run(ws) is None:  # before the lease: a mistaken resume writes nothing
        raise NoRunError("no run of `streams run` is recorded in this repository; start one with `streams run`")
    with runner_lease(ws):
        run_id = latest_run(ws)
        if run_id is None:
            raise NoRunError("no run of `streams run` is recorded in this repository; start one with `streams run`")
        rd = RunDir(ws, run_id)
        record = rd.load()
        if record.status not in runctl.RESUMABLE:
            raise StreamsError(
                f"run {run_id} is {record.status}: there is nothing to resume (`streams run` starts a new run)",
                code="error",
            )
        if (rd.path / runctl.ABORT_FILE).exists():
            raise StreamsError(f"run {run_id} was aborted; `streams run` starts a new run", code="error")
        if opts.jobs is None and record.jobs:
            jobs = record.jobs  # the run's own -j
        record.jobs = jobs
        runctl.clear_pause(rd)
        adopted, verify, requeued = runctl.reconcile(ws, cfg, record)
        record.status, record.paused_by, record.halt_reason = RunStatus.RUNNING, "", ""
        runner = _runner(ws, cfg, opts, rd, record, say, jobs)
        runner.agents.update(adopted)
        for name in verify:
            s = record.streams[name]
            runner.verifying[name] = runner.verifier.submit(runwave.verify, runner.ctx, s, s.attempts[-1])
        events.append(ws.common_dir, "run.resume", run=run_id, adopted=list(adopted), verify=verify, requeued=requeued)
        say(
            f"resuming run {run_id} at wave {record.wave} ({record.phase}): {len(adopted)} agent(s) adopted, "
            f"{len(verify)} to verify, {len(requeued)} re-queued"
        )
        plan = json_plan(rd)
        return _drive(runner, plan, start=max(1, record.wave))


def json_plan(rd: RunDir) -> list[WaveSpec]:
    """The frozen plan's waves (``plan.json``)."""
    import json

    data = json.loads((rd.path / "plan.json").read_text(encoding="utf-8"))["plan"]
    return [WaveSpec(int(w["number"]), tuple(w["streams"]), str(w["mode"])) for w in data["waves"]]


def _jobs(cfg: Config, opts: RunOptions) -> int:
    jobs = opts.jobs if opts.jobs is not None else cfg.run.max_parallel
    if not 1 <= jobs <= MAX_POOL:
        raise UsageError(f"-j {jobs}: the pool holds 1 to {MAX_POOL} agents")
    return jobs


def _runner(
    ws: Workspace, cfg: Config, opts: RunOptions, rd: RunDir, record: RunRecord, say: Notify, jobs: int
) -> Runner:
    runner = Runner(
        runwave.RunContext(ws, cfg, rd, record, say),
        opts,
        jobs,
        opts.grace if opts.grace is not None else cfg.run.grace,
        opts.halt or cfg.run.halt,
        record.merge,
    )
    write_heartbeat(rd, record.started)
    return runner


def _drive(runner: Runner, specs: list[WaveSpec], start: int = 1) -> RunResult:
    try:
        with _interrupts(runner):
            _waves(runner, specs, start)
    finally:
        runner.verifier.shutdown(wait=True)
    return _result(runner)


def _waves(runner: Runner, specs: list[WaveSpec], start: int) -> None:
    r = runner.record
    for w in specs:
        if w.number < start:
            continue
        if w.number > r.wave:
            r.wave, r.phase = w.number, "running"
        if _stopping(runner):
            break
        if r.status is not RunStatus.RUNNING:
            runner.skip_queued(list(w.streams), f"run halted: {r.halt_reason}")
            continue
        while r.phase in ("running", "gate"):
            fresh = r.phase == "running"  # a report written now, else the one the gate was shown
            if r.phase == "running":
                runner.notify(f"wave {w.number} ({w.mode}): {', '.join(w.streams)}")
                runner.run_wave(w.number, list(w.streams), w.mode == "sequential")
                if _stopping(runner) or r.status is not RunStatus.RUNNING:
                    break  # a halt lands nothing more: the run ends here
                r.phase = "gate"
                runner.save()
            state = _gate(runner, w, fresh)
            if state == "rerun":
                r.phase = "running"
            elif state in (GateState.AWAITING, GateState.REJECTED):
                runner.gated = str(state)
                break
            else:
                r.phase = "landing" if runner.merge else "done"
            runner.save()
        if _stopping(runner) or runner.gated:
            break
        if r.status is not RunStatus.RUNNING:
            continue  # halted: this wave lands nothing, the later ones are skipped
        if r.phase == "landing":
            _land(runner, w)
            r.phase = "done"
            runner.save()
    _end(runner)


def _gate(runner: Runner, w: WaveSpec, fresh: bool) -> str:
    """The wave's report, written; change requests for its streams taken (``rerun``); else where
    its gate stands (``run.gate``): open, approved, awaiting or rejected."""
    r, ws, cfg, rd = runner.record, runner.ws, runner.cfg, runner.rd
    requests = [q for q in gates.pending_requests(rd) if q.stream in w.streams]
    if requests:
        for q in requests:
            gates.consume(rd, q)
            s = r.streams[q.stream]
            s.status, s.klass, s.blocked_by, s.next_at = StreamStatus.PENDING, None, None, None
            s.cause = f"changes requested by {q.who}: {q.note}"
            runner.notify(f"{q.stream}: runs again: {s.cause}")
        return "rerun"
    rep = None if fresh else report.load_wave_report(rd, w.number)  # what the approver read
    if rep is None:
        rep = report.write_wave_report(ws, cfg, rd, r, w.number)
    base = git.resolve_commit(ws.main_root, cfg.base_ref()) or ""
    held = any(
        s.status is StreamStatus.BLOCKED
        or (
            s.status is StreamStatus.FAILED
            and (cfg.stream(s.name).run.on_failure or cfg.run.on_failure) is FailurePolicy.CRITICAL
        )
        for s in (r.streams[n] for n in w.streams)
    )
    res = gates.gate(rd, w.number, Gate(r.gate), r.plan_digest, rep.digest, base, rep.clean, held)
    events.append(ws.common_dir, "run.gate", run=r.run_id, wave=w.number, state=str(res.state), why=res.why)
    if res.state is not GateState.OPEN:
        runner.notify(f"wave {w.number}: report {'clean' if rep.clean else 'NOT clean'}; gate {res.state}: {res.why}")
    if res.state is GateState.REJECTED:
        r.halt_reason = f"wave {w.number} rejected: {res.why}"
    return str(res.state)


def _stopping(runner: Runner) -> bool:
    return runner.interrupted or runner.aborting or runner.pausing is not None


def _land(runner: Runner, w: WaveSpec) -> None:
    r = runner.record
    failed = runwave.land(runner.ctx, w.number, list(w.streams))
    for name, klass, cause in failed:
        s = r.streams[name]
        runner.fail(s, runner.cfg.stream(name), klass, cause)
        if s.last is not None:
            s.last.klass, s.last.cause = str(klass), cause
    _fill_joblog(runner, w, time.time())


def _fill_joblog(runner: Runner, w: WaveSpec, landed_at: float) -> None:
    """The wave's rows get their approval wait (the wave settled → a human's decision) and merge
    latency (each landed attempt's end → the landing)."""
    r = runner.record
    attempts = [a for n in w.streams for a in r.streams[n].attempts if a.ended]
    settled = max((a.ended or 0.0 for a in attempts), default=landed_at)
    decision = gates.decision_of(runner.rd, w.number)
    wait = 0.0
    if decision is not None and not decision.by_policy:  # to the approval's event (to the millisecond)
        decided = [
            float(e["ts"])
            for e in events.read(runner.ws.common_dir)
            if e.get("event") == "gate.approve" and e.get("run") == r.run_id and e.get("wave") == w.number
        ]
        wait = max(0.0, decided[-1] - settled) if decided else 0.0
    values: dict[tuple[str, int], dict[str, str]] = {}
    for n in w.streams:
        s = r.streams[n]
        for a in s.attempts:
            cells = {"approval_wait": f"{wait:.3f}" if a.klass is None and a.ended else ""}
            if s.status is StreamStatus.LANDED and a is s.last and a.ended:
                cells["merge_latency"] = f"{max(0.0, landed_at - a.ended):.3f}"
            values[(n, a.n)] = cells
    with contextlib.suppress(OSError):
        runner.rd.fill_jobs(w.number, values)


def _end(runner: Runner) -> None:
    """The run's state once its loop is over: finished, or stopped for a human (checkpointed)."""
    r = runner.record
    if runner.gated == GateState.AWAITING:
        r.status = RunStatus.AWAITING_APPROVAL
    elif runner.gated == GateState.REJECTED:
        r.status = RunStatus.HALTED
    elif runner.aborting:
        for s in r.streams.values():
            if not s.status.settled:
                s.status, s.cause = StreamStatus.INTERRUPTED, "the run was aborted"
        r.status = RunStatus.ABORTED
    elif runner.pausing is not None and not runner.interrupted:
        r.status = RunStatus.PAUSED
        request = runctl.read_request(runner.rd)
        r.paused_by = f"{request.who} at {request.when}" if request is not None else ""
    else:
        r.status = _final_status(runner)
    if r.status not in (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.AWAITING_APPROVAL):
        r.ended = time.time()
    runner.save()
    runctl.write_checkpoint(runner.rd, r)
    events.append(runner.ws.common_dir, "run.end", run=r.run_id, status=str(r.status), counts=runner.counts())


def _final_status(runner: Runner) -> RunStatus:
    r = runner.record
    statuses = [s.status for s in r.streams.values()]
    if runner.interrupted:
        return RunStatus.INTERRUPTED
    if r.status is RunStatus.HALTING:  # --halt now interrupts the running ones: still a halt
        return RunStatus.HALTED
    if StreamStatus.INTERRUPTED in statuses:
        return RunStatus.INTERRUPTED
    if StreamStatus.BLOCKED in statuses:
        return RunStatus.BLOCKED
    if all(s in (StreamStatus.VERIFIED, StreamStatus.LANDED) for s in statuses):
        return RunStatus.COMPLETED
    return RunStatus.COMPLETED_WITH_FAILURES


def _result(runner: Runner) -> RunResult:
    r = runner.record
    outcomes = []
    for name in r.names:
        s = r.streams[name]
        last = s.last
        outcomes.append(
            StreamOutcome(
                name,
                s.wave,
                str(s.status),
                s.klass if s.status not in (StreamStatus.VERIFIED, StreamStatus.LANDED) else None,
                s.cause,
                len(s.attempts),
                s.blocked_by,
                sum(a.commits for a in s.attempts),
                last.log if last else None,
            )
        )
    return RunResult(r.run_id, str(r.status), len(r.waves), tuple(outcomes), r.halt_reason, str(runner.rd.path))


@contextlib.contextmanager
def _interrupts(runner: Runner) -> Iterator[None]:
    """Ctrl-C (and TERM, HUP): no new starts, the running agents' groups stopped, their work
    snapshotted, the state checkpointed; the CLI then exits 130."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not runner.interrupted:
            runner.interrupted = True
            runner.notify(f"{signal.Signals(signum).name}: stopping the running agents (no new starts)…")

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        if runner.agents:  # an exception on the way out: no agent is left running
            now = time.time()
            for agent in runner.agents.values():
                supervise.stop(agent, FailureClass.INTERRUPTED, 0.0, now)
            deadline = time.time() + 10
            while runner.agents and time.time() < deadline:
                for name, agent in list(runner.agents.items()):
                    if supervise.step(agent, time.time(), 0.0):
                        del runner.agents[name]
                time.sleep(TICK)
        for s, h in before.items():
            signal.signal(s, h)


__all__ = ["RunOptions", "RunResult", "StreamOutcome", "WaveSpec", "resume", "run"]
