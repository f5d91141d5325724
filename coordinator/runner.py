"""``streams run``: the plan's waves, each stream's agent launched in its worktree, supervised,
verified from git, retried, and landed between waves (DESIGN "Coordination").

One process, one loop, no threads: every ``TICK`` the runner reaps and watches its agents
(``coordinator.supervise``), starts queued streams while the pool (``-j``) and their sub-pools have
room, and writes every transition to ``state.json``, ``joblog.tsv`` and the event log. A wave ends
when every one of its streams has settled; then its verified streams land (``run.merge``), and the
next wave's worktrees are cut from the base as it is after that landing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from coordinator import runctl, runwave, supervise
from coordinator.supervise import Agent, LaunchError
from streams import graph
from streams.config import Config, Stream
from streams.kernel import events
from streams.kernel.errors import StreamsError
from streams.kernel.reffiles import read_ref
from streams.runclass import FALLBACK_AFTER, RETRIED, FailureClass, RunStatus, StreamStatus
from streams.runconfig import BACKOFF_CAP, MAX_POOL, FailurePolicy, Gate, HaltMode, HaltPolicy
from streams.runstate import Attempt, RunDir, RunRecord, StreamRecord, write_heartbeat
from streams.workspace import Workspace

TICK = 0.05  # how often the loop looks at its agents
VERIFIERS = 4  # attempts verified at once (each: git, and run.check when configured)
OBSERVE_EVERY = 0.5  # how often it looks for signs of life (branch tip, progress file, log size)
Notify = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """``streams run``'s flags; None means "streams.yaml's `run:` value" (a flag wins over a
    stream's own setting, which wins over the `run:` block)."""

    names: tuple[str, ...] = ()
    jobs: int | None = None
    timeout: float | None = None
    stall_timeout: float | None = None
    grace: float | None = None
    retries: int | None = None
    halt: HaltPolicy | None = None
    merge: bool | None = None
    gate: Gate | None = None
    run_id: str | None = None


@dataclass
class _Limits:
    timeout: float
    stall: float
    retries: int


@dataclass
class Runner:
    ctx: runwave.RunContext
    opts: RunOptions
    jobs: int
    grace: float
    halt: HaltPolicy
    merge: bool
    agents: dict[str, Agent] = field(default_factory=dict)
    verifying: dict[str, Future[tuple[FailureClass | None, str]]] = field(default_factory=dict)
    verifier: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(VERIFIERS, "streams-verify"))
    pool_paused: dict[str, float] = field(default_factory=dict)  # pool -> until (a rate limit)
    interrupted: bool = False  # Ctrl-C (or TERM, HUP) of the runner
    pausing: str | None = None  # `streams pause`: "soon" (no new starts) or "now" (stop the agents too)
    aborting: bool = False  # `streams abort`
    gated: str = ""  # the wave's gate stopped the run: awaiting | rejected
    failures: int = 0
    settled: int = 0
    rng: random.Random = field(default_factory=random.Random)
    _last_observe: float = 0.0
    _last_beat: float = 0.0
    _last_control: float = 0.0

    @property
    def stop_now(self) -> bool:
        """Stop the running agents (their attempts end ``interrupted``, no retry spent)."""
        return self.interrupted or self.aborting or self.pausing == "now"

    @property
    def no_starts(self) -> bool:
        return self.stop_now or self.pausing is not None

    @property
    def ws(self) -> Workspace:
        return self.ctx.ws

    @property
    def cfg(self) -> Config:
        return self.ctx.cfg

    @property
    def rd(self) -> RunDir:
        return self.ctx.rd

    @property
    def record(self) -> RunRecord:
        return self.ctx.record

    def notify(self, line: str) -> None:
        self.ctx.notify(line)

    # --- one wave ------------------------------------------------------------------------------

    def run_wave(self, number: int, names: list[str], sequential: bool) -> None:
        r = self.record
        r.wave = number
        events.append(self.ws.common_dir, "run.wave.start", run=r.run_id, wave=number, streams=names)
        ready, failed = runwave.prepare(self.ctx, names)
        for name, cause in failed:
            s = r.streams[name]
            a = Attempt(1, self.cfg.stream(name).command or "", submit=time.time())
            a.started = a.ended = time.time()
            s.attempts.append(a)
            self.settle(s, a, FailureClass.LAUNCH_ERROR, cause)
        self.save()
        ready += [n for n in names if r.streams[n].status in (StreamStatus.QUEUED, StreamStatus.RETRY_WAIT)]
        cap = 1 if sequential else self.jobs
        while True:
            now = time.time()
            self.poll_control(now)
            self.watch(now)
            if not self.no_starts and r.status is RunStatus.RUNNING:
                self.dispatch([n for n in names if n in ready], cap, now)
            idle = not self.agents and not self.verifying
            if idle and (self.no_starts or not any(not r.streams[n].status.settled for n in names)):
                break
            if r.status is RunStatus.HALTING:
                self.skip_queued(names, f"run halted: {r.halt_reason}")
            if self.interrupted or self.aborting:
                self.skip_queued(names, "run stopped before it started", StreamStatus.INTERRUPTED)
            self.beat(now)
            time.sleep(TICK)
        counts = self.counts(names)
        events.append(self.ws.common_dir, "run.wave.end", run=r.run_id, wave=number, counts=counts)
        self.save()

    def dispatch(self, names: list[str], cap: int, now: float) -> None:
        for name in names:
            if len(self.agents) >= cap:
                return
            s = self.record.streams[name]
            if s.status is StreamStatus.RETRY_WAIT and (s.next_at or 0) <= now:
                s.status = StreamStatus.QUEUED
            if s.status is not StreamStatus.QUEUED:
                continue
            if s.pool is not None:
                size = self.cfg.run.pool_size(s.pool) or MAX_POOL
                if sum(1 for a in self.agents if self.record.streams[a].pool == s.pool) >= size:
                    continue
                if self.pool_paused.get(s.pool, 0.0) > now:
                    continue
            self.launch(s, now)

    def launch(self, s: StreamRecord, now: float) -> None:
        st = self.cfg.stream(s.name)
        n = len(s.attempts) + 1
        use_fallback = bool(st.run.fallback) and any(a.klass in FALLBACK_AFTER for a in s.attempts)
        command = (st.run.fallback if use_fallback else st.command) or ""
        submit = s.next_at or now
        tip = read_ref(str(self.ws.common_dir), self.cfg.branch_ref(s.name)) or s.since
        attempt = Attempt(n, command, fallback=use_fallback, submit=submit, since=s.since, tip_at_start=tip)
        attempt.log = str(self.rd.log(s.name, n))
        s.attempts.append(attempt)
        s.next_at = None
        try:
            brief = runwave.write_brief(self.ctx, s, n)
            env = runwave.agent_env(self.ctx, s, n, brief)
            agent = supervise.launch(
                command,
                Path(s.worktree),
                env,
                Path(attempt.log),
                git_dir=runwave.git_dir_of(Path(s.worktree)),
                common_dir=str(self.ws.common_dir),
                branch_ref=self.cfg.branch_ref(s.name),
                progress_file=Path(s.worktree) / st.progress_path,
            )
        except (LaunchError, OSError, StreamsError) as exc:
            attempt.started = attempt.ended = time.time()
            self.settle(s, attempt, FailureClass.LAUNCH_ERROR, f"cannot launch: {exc}")
            return
        attempt.pid, attempt.start_time, attempt.started = agent.pid, agent.start_time, agent.started
        s.status = StreamStatus.RUNNING
        self.agents[s.name] = agent
        events.append(
            self.ws.common_dir,
            "run.attempt.start",
            run=self.record.run_id,
            stream=s.name,
            attempt=n,
            pid=agent.pid,
            command=command,
        )
        self.notify(f"{s.name}: attempt {n} started (pid {agent.pid}{', fallback' if use_fallback else ''})")
        self.save()

    # --- watching -------------------------------------------------------------------------------

    def watch(self, now: float) -> None:
        observe = now - self._last_observe >= OBSERVE_EVERY
        if observe:
            self._last_observe = now
        for name, agent in list(self.agents.items()):
            limits = self.limits(self.cfg.stream(name))
            if agent.exited is None and agent.stop_reason is None:
                if self.stop_now:
                    supervise.stop(agent, FailureClass.INTERRUPTED, self.grace, now)
                elif now - agent.started >= limits.timeout:
                    supervise.stop(agent, FailureClass.TIMEOUT, self.grace, now)
                elif observe:
                    supervise.observe(agent, now)
                    if now - agent.last_activity >= limits.stall:
                        supervise.stop(agent, FailureClass.STALL, self.grace, now)
            if supervise.step(agent, now, self.grace):
                del self.agents[name]
                self.finish(self.record.streams[name], agent)
        for name, future in list(self.verifying.items()):
            if future.done():
                del self.verifying[name]
                s = self.record.streams[name]
                try:
                    klass, cause = future.result()
                except (StreamsError, OSError) as exc:  # git could not answer: no verdict is no success
                    klass, cause = FailureClass.EVIDENCE_MISMATCH, f"its verification could not run: {exc}"
                self.settle(s, s.attempts[-1], klass, cause)

    def finish(self, s: StreamRecord, agent: Agent) -> None:
        """An agent's group is gone: its class, or (exit 0) its verification, which runs beside the
        loop (``run.check`` may take minutes) while the other agents are supervised."""
        a = s.attempts[-1]
        if agent.adopted and agent.stop_reason is None:  # a dead runner's agent: no exit status to read
            a.ended = time.time()
            self.judge_orphan(s, a)
            return
        klass, cause, a.exit, a.signal = supervise.classify(agent)
        a.ended = time.time()
        if klass is None:
            self.verifying[s.name] = self.verifier.submit(runwave.verify, self.ctx, s, a)
            return
        if klass is not FailureClass.BLOCKED:
            runwave.save_wip(self.ctx, s, a, discard=klass in RETRIED or klass in FALLBACK_AFTER)
        self.settle(s, a, klass, cause)

    def judge_orphan(self, s: StreamRecord, a: Attempt) -> None:
        """An attempt whose runner died: new commits go to verification (never straight to
        verified); with none it is re-queued, ``interrupted``, no retry spent."""
        tip = read_ref(str(self.ws.common_dir), self.cfg.branch_ref(s.name))
        if tip is not None and tip != (a.tip_at_start or s.since):
            self.verifying[s.name] = self.verifier.submit(runwave.verify, self.ctx, s, a)
            return
        a.klass, a.cause = str(FailureClass.INTERRUPTED), "its runner died and it made no commit: re-queued"
        self.rd.append_job(self.record, s, a)
        s.status, s.cause, s.next_at = StreamStatus.QUEUED, a.cause, time.time()
        self.notify(f"{s.name}: {a.cause}")

    def poll_control(self, now: float) -> None:
        """`streams pause` and `streams abort` leave a request in the run's directory."""
        if now - self._last_control < 0.25:
            return
        self._last_control = now
        request = runctl.read_request(self.rd)
        if request is None:
            return
        if request.kind == "abort" and not self.aborting:
            self.aborting = True
            self.notify(f"abort requested by {request.who}: stopping every agent")
        elif request.kind == "pause" and self.pausing != request.mode:
            self.pausing = request.mode
            how = "stopping the running agents" if request.mode == "now" else "running agents finish"
            self.notify(f"pause requested by {request.who}: no new starts, {how}")

    def settle(self, s: StreamRecord, a: Attempt, klass: FailureClass | None, cause: str) -> None:
        """Record how attempt ``a`` ended and decide what the stream does next."""
        now = time.time()
        a.klass, a.cause = (str(klass) if klass else None), cause
        runwave.count_commits(self.ctx, s, a)
        self.rd.append_job(self.record, s, a)
        events.append(
            self.ws.common_dir,
            "run.attempt.end",
            run=self.record.run_id,
            stream=s.name,
            attempt=a.n,
            outcome=a.klass or "verified",
            cause=cause,
        )
        st = self.cfg.stream(s.name)
        if klass is None:
            s.status, s.klass, s.cause = StreamStatus.VERIFIED, None, cause
            s.tip = read_ref(str(self.ws.common_dir), self.cfg.branch_ref(s.name)) or ""
            self.notify(f"{s.name}: verified ({cause})")
        elif klass is FailureClass.INTERRUPTED:
            s.status, s.klass, s.cause = StreamStatus.INTERRUPTED, str(klass), cause
            self.notify(f"{s.name}: interrupted ({cause})")
        elif self.may_retry(s, st, klass):
            s.retries_used += 1
            delay = self.backoff(s.retries_used)
            s.status, s.klass, s.cause, s.next_at = StreamStatus.RETRY_WAIT, str(klass), cause, now + delay
            if klass is FailureClass.TEMPFAIL and "rate limited" in cause:
                pool = s.pool or "default"
                self.pool_paused[pool] = max(self.pool_paused.get(pool, 0.0), now + delay)
                events.append(
                    self.ws.common_dir, "run.pool.pause", run=self.record.run_id, pool=pool, until=now + delay
                )
            events.append(
                self.ws.common_dir, "run.retry", run=self.record.run_id, stream=s.name, attempt=a.n + 1, delay=delay
            )
            self.notify(f"{s.name}: {klass}: {cause}; retry {s.retries_used} in {delay:.1f} s")
        else:
            self.fail(s, st, klass, cause)
        self.save()

    def may_retry(self, s: StreamRecord, st: Stream, klass: FailureClass) -> bool:
        if self.no_starts or self.record.status is not RunStatus.RUNNING:
            return False
        if s.retries_used >= self.limits(st).retries:
            return False
        return klass in RETRIED or (klass in FALLBACK_AFTER and bool(st.run.fallback))

    def backoff(self, n: int) -> float:
        base = self.cfg.run.backoff
        return min(BACKOFF_CAP, base * 2.0 ** (n - 1)) * self.rng.uniform(0.8, 1.2)

    def fail(self, s: StreamRecord, st: Stream, klass: FailureClass, cause: str) -> None:
        """A stream that will not be tried again: its failure policy, and the run's threshold."""
        blocked = klass is FailureClass.BLOCKED
        s.status = StreamStatus.BLOCKED if blocked else StreamStatus.FAILED
        s.klass, s.cause = str(klass), cause
        self.notify(f"{s.name}: {klass}: {cause}")
        policy = st.run.on_failure or self.cfg.run.on_failure
        if blocked or policy is not FailurePolicy.ISOLATED:
            self.skip_dependents(s.name)
        if blocked:
            return
        self.failures += 1
        if policy is FailurePolicy.CRITICAL:
            mode = self.halt.mode if self.halt.mode is not HaltMode.NEVER else HaltMode.SOON
            self.start_halt(f"critical stream {s.name} {klass}", mode)
        elif self.halt.reached(self.failures, self.finished_count()):
            self.start_halt(f"--halt {self.halt}: {self.failures} failed", self.halt.mode)

    def finished_count(self) -> int:
        return sum(1 for s in self.record.streams.values() if s.status.settled and s.status is not StreamStatus.SKIPPED)

    def skip_dependents(self, name: str) -> None:
        depends = {n: self.cfg.stream(n).depends for n in self.record.streams}
        for other, s in self.record.streams.items():
            if s.status in (StreamStatus.PENDING, StreamStatus.QUEUED) and graph.waits_for(other, depends, {name}):
                s.status, s.blocked_by = StreamStatus.SKIPPED, name
                s.cause = f"depends on {name}, which did not succeed"
                events.append(self.ws.common_dir, "run.skip", run=self.record.run_id, stream=other, blocked_by=name)
                self.notify(f"{other}: skipped (blocked by {name})")

    def start_halt(self, reason: str, mode: HaltMode) -> None:
        r = self.record
        if r.status is not RunStatus.RUNNING:
            return
        r.status, r.halt_reason = RunStatus.HALTING, reason
        events.append(self.ws.common_dir, "run.halt", run=r.run_id, reason=reason, mode=str(mode))
        self.notify(f"halting ({mode}): {reason}")
        if mode is HaltMode.NOW:
            now = time.time()
            for agent in self.agents.values():
                supervise.stop(agent, FailureClass.INTERRUPTED, self.grace, now)

    def skip_queued(self, names: list[str], why: str, status: StreamStatus = StreamStatus.SKIPPED) -> None:
        """Streams of ``names`` not started (or waiting to retry) that now will not be: ``status``."""
        for n in names:
            s = self.record.streams[n]
            if s.status in (StreamStatus.QUEUED, StreamStatus.RETRY_WAIT, StreamStatus.PENDING):
                s.status, s.cause, s.next_at = status, why, None
                if status is StreamStatus.SKIPPED:
                    events.append(self.ws.common_dir, "run.skip", run=self.record.run_id, stream=n, blocked_by=None)

    # --- bookkeeping ----------------------------------------------------------------------------

    def limits(self, st: Stream) -> _Limits:
        o, d = self.opts, self.cfg.run
        timeout = o.timeout or st.run.timeout or d.timeout
        stall = o.stall_timeout or st.run.stall_timeout or d.stall_timeout
        retries = o.retries if o.retries is not None else st.run.retries if st.run.retries is not None else d.retries
        return _Limits(timeout, stall, retries)

    def counts(self, names: list[str] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in names or list(self.record.streams):
            status = str(self.record.streams[n].status)
            out[status] = out.get(status, 0) + 1
        return out

    def save(self) -> None:
        self.rd.save(self.record)

    def beat(self, now: float) -> None:
        if now - self._last_beat >= 5.0:
            self._last_beat = now
            write_heartbeat(self.rd, self.record.started)


__all__ = ["RunOptions", "Runner"]
