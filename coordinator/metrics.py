"""``streams metrics``: where a run's time went, from its files (DESIGN "``streams metrics``").

The figures come from ``runs/<id>/joblog.tsv`` (one row per attempt: submit, start, end, class,
commits), the run's ``state.json`` (a class the merge queue gave a stream after its row was
written: ``conflict``), the run's events in ``events.jsonl`` (``run.gate``, ``run.land``,
``run.pause``, ``run.resume``) and its approvals (``approvals/wave-N.json``, field ``when``).
Nothing here runs git. Times are seconds; a share or a rate is a fraction (0.25 is 25 %); a
figure with nothing to divide by is null.

The definitions (``streams metrics --help`` says them too):

- *run time*: an attempt's end - start; Σ run time sums every attempt, retries included.
- *wall*: the run's first start to its last end (its end, or its last event while it waits);
  *busy wall* is wall less the time it waited for humans.
- *slots*: min(pool, widest wave); pool is the run's ``max_parallel`` (or the most attempts ever
  seen running at once, when that is more: a ``-j`` wider than the config).
- *throughput*: verified streams per hour and work commits per hour of busy wall.
- *first-attempt success*: streams verified by their first attempt ÷ streams that ran;
  *eventual success*: streams verified by any attempt ÷ streams that ran (a retried stream counts
  once here and once per attempt in ``attempts``).
- *parallel efficiency*: Σ run time ÷ (busy wall x slots); 1.0 means every slot busy all along.
- *speed-up*: Σ run time ÷ busy wall: how much faster than the same attempts one after another.
- *barrier idle*: per wave, the slot-seconds left idle from the wave's first attempt end to its
  last end (the wave waiting on its stragglers): ∫ (slots - attempts running) dt.
- *critical path*: Σ over waves of the longest stream (its first start to its last end);
  *critical-path ratio*: critical path ÷ busy wall (1.0: the run took no longer than its chain).
- *human wait*: gate waits (a ``run.gate`` awaiting event to the wave's ``gate.approve`` or
  ``gate.reject`` event, else the approval's ``when``, else the next ``run.resume``) plus paused time (``run.pause`` to the next ``run.resume``); its *share* is
  human wait ÷ wall.
- *rates*: retries (attempts after a stream's first), timeouts, stalls, evidence mismatches,
  scope violations and conflicts, each ÷ attempts.
- *approval wait* of an attempt: its wave's gate wait (verified attempts only); *merge latency*:
  its end to its wave's ``run.land`` event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.runclass import FailureClass, StreamStatus
from streams.runstate import RunDir, RunRecord

HOUR = 3600.0


@dataclass(frozen=True)
class Span:
    """One attempt (``attempts[]``): a joblog row, as the timeline and the trace draw it.

    =============  ============  ==================================================================
    field          type          meaning
    =============  ============  ==================================================================
    stream         str           the stream
    wave           int           its wave
    attempt        int           1 for the first launch, 2 for the first retry, …
    pool           str           its sub-pool ("" for the run's pool)
    submit         float         when it became ready to start (epoch seconds)
    start          float         when its agent launched (epoch seconds)
    end            float         when it ended (epoch seconds)
    run_time       float         end - start (seconds)
    queue_wait     float         start - submit (seconds)
    klass          str           verified, or its failure class (failed, timeout, stall, conflict …)
    commits        int           work commits it made
    approval_wait  float | null  its wave's gate wait, for a verified attempt (seconds)
    merge_latency  float | null  its end to its wave's landing, when it landed (seconds)
    =============  ============  ==================================================================
    """

    stream: str
    wave: int
    attempt: int
    pool: str
    submit: float
    start: float
    end: float
    run_time: float
    queue_wait: float
    klass: str
    commits: int
    approval_wait: float | None = None
    merge_latency: float | None = None


@dataclass(frozen=True)
class Figures:
    """The figures of a set of attempts (a run, a wave, a pool): ``figures``.

    =====================  ============  ==========================================================
    field                  type          meaning
    =====================  ============  ==========================================================
    attempts               int           attempts (a retried stream counts once per attempt)
    streams                int           streams that ran at least once
    verified               int           streams verified (or landed) in the end
    commits                int           work commits of every attempt
    run_time               float         Σ run time of the attempts (seconds)
    wall                   float         first start to last end (seconds; busy wall for a run)
    verified_per_hour      float | null  verified streams per hour of wall
    commits_per_hour       float | null  work commits per hour of wall
    first_attempt_success  float | null  streams verified by attempt 1 ÷ streams
    eventual_success       float | null  streams verified by any attempt ÷ streams
    retry_rate             float | null  attempts after a stream's first ÷ attempts
    timeout_rate           float | null  attempts of class timeout ÷ attempts
    stall_rate             float | null  attempts of class stall ÷ attempts
    mismatch_rate          float | null  attempts of class evidence_mismatch ÷ attempts
    scope_violation_rate   float | null  attempts of class scope_violation ÷ attempts
    conflict_rate          float | null  attempts of class conflict ÷ attempts
    =====================  ============  ==========================================================
    """

    attempts: int
    streams: int
    verified: int
    commits: int
    run_time: float
    wall: float
    verified_per_hour: float | None
    commits_per_hour: float | None
    first_attempt_success: float | None
    eventual_success: float | None
    retry_rate: float | None
    timeout_rate: float | None
    stall_rate: float | None
    mismatch_rate: float | None
    scope_violation_rate: float | None
    conflict_rate: float | None


@dataclass(frozen=True)
class WaveMetrics:
    """One wave (``waves[]``).

    ===================  ============  ============================================================
    field                type          meaning
    ===================  ============  ============================================================
    wave                 int           its number (1-based)
    streams              [str]         its streams
    slots                int           min(pool, streams in the wave)
    start                float | null  its first attempt's start (epoch seconds; null: never ran)
    end                  float | null  its last attempt's end
    first_end            float | null  its first attempt's end (where the barrier starts)
    barrier_idle         float         idle slot-seconds from first_end to end
    critical             float         its longest stream: first start to last end (seconds)
    parallel_efficiency  float | null  Σ run time ÷ (wall x slots)
    speedup              float | null  Σ run time ÷ wall
    gate_wait            float         seconds its gate waited for a human
    figures              Figures       its attempts' figures
    ===================  ============  ============================================================
    """

    wave: int
    streams: tuple[str, ...]
    slots: int
    start: float | None
    end: float | None
    first_end: float | None
    barrier_idle: float
    critical: float
    parallel_efficiency: float | None
    speedup: float | None
    gate_wait: float
    figures: Figures


@dataclass(frozen=True)
class PoolMetrics:
    """One sub-pool (``pools[]``).

    =======  =======  ====================================================
    field    type     meaning
    =======  =======  ====================================================
    pool     str      its name ("" for the run's pool)
    figures  Figures  its attempts' figures
    =======  =======  ====================================================
    """

    pool: str
    figures: Figures


@dataclass(frozen=True)
class Mark:
    """A moment of a run (``marks[]``): a gate's state or a wave's landing.

    =====  =====  ===============================================================
    field  type   meaning
    =====  =====  ===============================================================
    kind   str    start | gate | approve | reject | land | pause | resume | end
    wave   int    the wave (0 for start, pause, resume and end)
    ts     float  when (epoch seconds)
    what   str    the gate's state, who decided, the streams landed, who paused, the
                  run's status at its end
    =====  =====  ===============================================================
    """

    kind: str
    wave: int
    ts: float
    what: str


@dataclass(frozen=True)
class RunMetrics:
    """One run's metrics (``runs[]``).

    ===================  ==============  ============================================================
    field                type            meaning
    ===================  ==============  ============================================================
    run_id               str             the run
    status               str             its status (running, completed, awaiting_approval …)
    pool                 int             its pool: max_parallel, or the peak seen when wider
    widest_wave          int             streams in its widest wave
    slots                int             min(pool, widest_wave)
    started              float           its first start (epoch seconds)
    ended                float           its last end, or its last event while it waits
    wall                 float           ended - started (seconds)
    busy_wall            float           wall less human wait (seconds)
    human_wait           float           gate waits plus paused time (seconds)
    human_wait_share     float | null    human wait ÷ wall
    gate_wait            float           seconds at gates waiting for an approval
    paused               float           seconds paused (``streams pause`` to resume)
    barrier_idle         float           Σ over waves of idle slot-seconds at the barrier
    critical_path        float           Σ over waves of the longest stream (seconds)
    critical_path_ratio  float | null    critical path ÷ busy wall
    parallel_efficiency  float | null    Σ run time ÷ (busy wall x slots)
    speedup              float | null    Σ run time ÷ busy wall (against one after another)
    figures              Figures         the whole run's figures
    waves                [WaveMetrics]   per wave
    pools                [PoolMetrics]   per sub-pool
    attempts             [Span]          every attempt, in start order
    marks                [Mark]          its start and end, gates, decisions, landings, pauses and resumes
    ===================  ==============  ============================================================
    """

    run_id: str
    status: str
    pool: int
    widest_wave: int
    slots: int
    started: float
    ended: float
    wall: float
    busy_wall: float
    human_wait: float
    human_wait_share: float | None
    gate_wait: float
    paused: float
    barrier_idle: float
    critical_path: float
    critical_path_ratio: float | None
    parallel_efficiency: float | None
    speedup: float | None
    figures: Figures
    waves: tuple[WaveMetrics, ...]
    pools: tuple[PoolMetrics, ...]
    attempts: tuple[Span, ...]
    marks: tuple[Mark, ...]


# --- reading ----------------------------------------------------------------------------------------


def _num(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def spans_of(record: RunRecord, rows: Sequence[dict[str, str]]) -> list[Span]:
    """The attempts that ran (a start and an end), from the joblog; a class the state gave an
    attempt after its row was written (the merge queue's ``conflict``) wins."""
    found: list[Span] = []
    for row in rows:
        start, end = _num(row.get("start")), _num(row.get("end"))
        if not start or not end or row.get("run", record.run_id) != record.run_id:
            continue
        name, n = row.get("stream", ""), int(_num(row.get("attempt")))
        klass = row.get("class") or "verified"
        s = record.streams.get(name)
        later = next((a for a in s.attempts if a.n == n), None) if s else None
        if later is not None and later.klass and later.ended:
            klass = later.klass
        submit = _num(row.get("submit")) or start
        found.append(
            Span(
                name, int(_num(row.get("wave"))), n, row.get("pool", ""), submit, start, end,
                max(0.0, end - start), max(0.0, start - submit), klass, int(_num(row.get("commits"))),
            )
        )  # fmt: skip
    return sorted(found, key=lambda sp: (sp.start, sp.stream, sp.attempt))


def _iso(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def _approved_at(rd: RunDir, wave: int) -> float | None:
    from coordinator import gates
    from streams.kernel.errors import StreamsError

    try:
        decision = gates.decision_of(rd, wave)
    except StreamsError:
        return None
    return _iso(decision.when) if decision is not None else None


# --- the figures ------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def figures(spans: Sequence[Span], wall: float, verified_names: Iterable[str]) -> Figures:
    """The figures of ``spans`` over ``wall`` seconds; ``verified_names``: the streams verified in the end."""
    names = {sp.stream for sp in spans}
    first = {sp.stream for sp in spans if sp.attempt == min(x.attempt for x in spans if x.stream == sp.stream)
             and sp.klass == "verified"}  # fmt: skip
    good = names & set(verified_names)
    n = len(spans)

    def rate(klass: FailureClass) -> float | None:
        return _ratio(sum(sp.klass == klass for sp in spans), n)

    commits = sum(sp.commits for sp in spans)
    return Figures(
        attempts=n,
        streams=len(names),
        verified=len(good),
        commits=commits,
        run_time=sum(sp.run_time for sp in spans),
        wall=wall,
        verified_per_hour=_ratio(len(good) * HOUR, wall),
        commits_per_hour=_ratio(commits * HOUR, wall),
        first_attempt_success=_ratio(len(first), len(names)),
        eventual_success=_ratio(len(good), len(names)),
        retry_rate=_ratio(n - len(names), n),
        timeout_rate=rate(FailureClass.TIMEOUT),
        stall_rate=rate(FailureClass.STALL),
        mismatch_rate=rate(FailureClass.EVIDENCE_MISMATCH),
        scope_violation_rate=rate(FailureClass.SCOPE_VIOLATION),
        conflict_rate=rate(FailureClass.CONFLICT),
    )


def peak(spans: Sequence[Span]) -> int:
    """The most attempts running at one moment."""
    moments = sorted([(sp.start, 1) for sp in spans] + [(sp.end, -1) for sp in spans])
    running = top = 0
    for _, delta in moments:
        running += delta
        top = max(top, running)
    return top


def idle_after(spans: Sequence[Span], slots: int, since: float, until: float) -> float:
    """Idle slot-seconds between ``since`` and ``until``: ∫ (slots - attempts running) dt."""
    if until <= since:
        return 0.0
    busy = sum(max(0.0, min(sp.end, until) - max(sp.start, since)) for sp in spans)
    return max(0.0, slots * (until - since) - busy)


def _longest_stream(spans: Sequence[Span]) -> float:
    by: dict[str, tuple[float, float]] = {}
    for sp in spans:
        lo, hi = by.get(sp.stream, (sp.start, sp.end))
        by[sp.stream] = (min(lo, sp.start), max(hi, sp.end))
    return max((hi - lo for lo, hi in by.values()), default=0.0)


def _wave(number: int, names: Sequence[str], spans: Sequence[Span], pool: int, gate_wait: float,
          verified: set[str]) -> WaveMetrics:  # fmt: skip
    mine = [sp for sp in spans if sp.wave == number]
    slots = max(1, min(pool, len(names)))
    if not mine:
        return WaveMetrics(number, tuple(names), slots, None, None, None, 0.0, 0.0, None, None, gate_wait,
                           figures([], 0.0, verified))  # fmt: skip
    start, end = min(sp.start for sp in mine), max(sp.end for sp in mine)
    first_end = min(sp.end for sp in mine)
    wall = end - start
    total = sum(sp.run_time for sp in mine)
    return WaveMetrics(
        wave=number,
        streams=tuple(names),
        slots=slots,
        start=start,
        end=end,
        first_end=first_end,
        barrier_idle=idle_after(mine, slots, first_end, end),
        critical=_longest_stream(mine),
        parallel_efficiency=_ratio(total, wall * slots),
        speedup=_ratio(total, wall),
        gate_wait=gate_wait,
        figures=figures(mine, wall, verified),
    )


def _marks(run_id: str, evs: Iterable[dict[str, Any]]) -> list[Mark]:
    found: list[Mark] = []
    for ev in evs:
        if ev.get("run") != run_id:
            continue
        kind, ts = str(ev.get("event", "")), float(ev.get("ts") or 0.0)
        if kind == "run.gate":
            found.append(Mark("gate", int(ev.get("wave") or 0), ts, str(ev.get("state", ""))))
        elif kind == "run.land":
            found.append(Mark("land", int(ev.get("wave") or 0), ts, ", ".join(ev.get("landed") or []) or "nothing"))
        elif kind in ("gate.approve", "gate.reject"):
            found.append(Mark(kind.removeprefix("gate."), int(ev.get("wave") or 0), ts, str(ev.get("who", ""))))
        elif kind in ("run.pause", "run.resume"):
            found.append(Mark(kind.removeprefix("run."), 0, ts, str(ev.get("by", ""))))
        elif kind in ("run.start", "run.end"):
            found.append(Mark(kind.removeprefix("run."), 0, ts, str(ev.get("status", ""))))
    return sorted(found, key=lambda m: m.ts)


def _waits(rd: RunDir, marks: Sequence[Mark], now: float) -> tuple[dict[int, float], float]:
    """Per wave, the seconds its gate waited for a human; and the seconds the run was paused."""
    gate: dict[int, float] = {}
    paused = 0.0
    for i, m in enumerate(marks):
        later = [x for x in marks[i + 1 :] if x.kind == "resume"]
        if m.kind == "gate" and m.what == "awaiting" and m.wave not in gate:
            decided = [x.ts for x in marks[i + 1 :] if x.kind in ("approve", "reject") and x.wave == m.wave]
            until = decided[0] if decided else _approved_at(rd, m.wave) or (later[0].ts if later else now)
            gate[m.wave] = max(0.0, until - m.ts)
        elif m.kind == "pause":
            paused += max(0.0, (later[0].ts if later else now) - m.ts)
    return gate, paused


def compute(
    rd: RunDir,
    record: RunRecord,
    rows: Sequence[dict[str, str]],
    events: Iterable[dict[str, Any]],
    *,
    pool: int = 8,
    now: float | None = None,
) -> RunMetrics:
    """The metrics of ``record``'s run from its joblog ``rows`` and ``events`` (those of other
    runs are ignored); ``pool``: its ``max_parallel``."""
    marks = _marks(record.run_id, events)
    spans = spans_of(record, rows)
    verified = {n for n, s in record.streams.items() if s.status in (StreamStatus.VERIFIED, StreamStatus.LANDED)}
    verified |= {sp.stream for sp in spans if sp.klass == "verified" and sp.stream not in record.streams}
    widest = max((len(w) for w in record.waves), default=1)
    pool = max(pool, peak(spans))
    slots = max(1, min(pool, widest))
    started = min([sp.start for sp in spans] or [record.started])
    ended = max([sp.end for sp in spans] + [m.ts for m in marks if m.kind != "start"] + [started])
    if record.ended:
        ended = max(ended, record.ended) if spans else record.ended
    gate, paused = _waits(rd, marks, now if now is not None else time.time())
    landed = {m.wave: m.ts for m in marks if m.kind == "land"}
    spans = [_with_waits(sp, gate, landed) for sp in spans]
    waves = tuple(_wave(i, names, spans, pool, gate.get(i, 0.0), verified) for i, names in enumerate(record.waves, 1))
    wall = ended - started
    human = sum(gate.values()) + paused
    busy = max(0.0, wall - human)
    total = sum(sp.run_time for sp in spans)
    critical = sum(w.critical for w in waves)
    pools = sorted({sp.pool for sp in spans})
    return RunMetrics(
        run_id=record.run_id,
        status=str(record.status),
        pool=pool,
        widest_wave=widest,
        slots=slots,
        started=started,
        ended=ended,
        wall=wall,
        busy_wall=busy,
        human_wait=human,
        human_wait_share=_ratio(human, wall),
        gate_wait=sum(gate.values()),
        paused=paused,
        barrier_idle=sum(w.barrier_idle for w in waves),
        critical_path=critical,
        critical_path_ratio=_ratio(critical, busy),
        parallel_efficiency=_ratio(total, busy * slots),
        speedup=_ratio(total, busy),
        figures=figures(spans, busy, verified),
        waves=waves,
        pools=tuple(PoolMetrics(p, _pool_figures([sp for sp in spans if sp.pool == p], verified)) for p in pools),
        attempts=tuple(spans),
        marks=tuple(marks),
    )


def _with_waits(sp: Span, gate: dict[int, float], landed: dict[int, float]) -> Span:
    if sp.klass != "verified":
        return sp
    from dataclasses import replace

    land = landed.get(sp.wave)
    return replace(
        sp, approval_wait=gate.get(sp.wave, 0.0), merge_latency=max(0.0, land - sp.end) if land is not None else None
    )


def _pool_figures(spans: Sequence[Span], verified: set[str]) -> Figures:
    wall = max(sp.end for sp in spans) - min(sp.start for sp in spans) if spans else 0.0
    return figures(spans, wall, verified)
