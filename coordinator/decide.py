"""A human at a gate: ``streams approve``, ``streams reject`` and ``streams request-changes`` on the
latest run (``coordinator.gates`` records; this module finds what the decider sees: the run, the
wave that waits, the plan's digest, the wave report's digest, the base's tip now).

Everything is checked before anything is written: a refused decision leaves the run's files as
they were. None of the three runs inside an agent (``STREAMS_AGENT=1``): a gate is a human's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from coordinator import gates
from coordinator.gates import AgentRefusedError, ChangeRequest, Decision, Verdict, Who
from coordinator.report import verified_report_data
from streams import git
from streams.config import Config
from streams.kernel.durations import iso_utc
from streams.kernel.errors import StreamsError, UnknownStreamError, UsageError
from streams.runclass import RunStatus
from streams.runstate import NoRunError, RunDir, RunRecord, latest_run
from streams.workspace import Workspace


class NotAwaitingError(StreamsError):
    code = "not_awaiting"


class NoReportError(StreamsError):
    code = "no_report"


@dataclass(frozen=True)
class Decided:
    """``streams approve --json`` and ``streams reject --json``: the decision recorded.

    ============  ===============  ==============================================================
    field         type             meaning
    ============  ===============  ==============================================================
    run_id        str              the run whose gate it is
    decision      Decision         what was written (``approvals/wave-N.json``)
    file          str              the decision's file
    stale         str | null       a stale decision it replaced, kept under this name (else null)
    stale_why     str | null       which hash had changed in that stale decision
    next          str              what happens next, in one line
    ============  ===============  ==============================================================
    """

    run_id: str
    decision: Decision
    file: str
    stale: str | None
    stale_why: str | None
    next: str


@dataclass(frozen=True)
class Requested:
    """``streams request-changes --json``: the change request recorded.

    =======  =============  ================================================================
    field    type           meaning
    =======  =============  ================================================================
    run_id   str            the run
    request  ChangeRequest  what was written (``requests/<stream>-<n>.json``)
    file     str            the request's file
    next     str            what happens next, in one line
    =======  =============  ================================================================
    """

    run_id: str
    request: ChangeRequest
    file: str
    next: str


def is_agent(value: str | None) -> bool:
    """Whether ``STREAMS_AGENT`` says this process runs inside an agent."""
    return (value or "").strip() not in ("", "0")


def refuse_agent(verb: str, agent: bool) -> None:
    """``verb`` (approve, reject, request-changes) is a human's: refused inside an agent."""
    if agent:
        doing = "request changes" if verb == "request-changes" else verb
        raise AgentRefusedError(f"{verb} is a human's decision; an agent may not {doing}")


def latest(ws: Workspace) -> tuple[RunDir, RunRecord]:
    run_id = latest_run(ws)
    if run_id is None:
        raise NoRunError("no run of `streams run` is recorded here; there is no gate to decide")
    rd = RunDir(ws, run_id)
    return rd, rd.load()


def plan_digest(rd: RunDir) -> str:
    """The digest of the run's frozen plan (``plan.json``)."""
    try:
        data = json.loads((rd.path / "plan.json").read_text(encoding="utf-8"))
        digest = data["digest"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StreamsError(
            f"{rd.path / 'plan.json'}: cannot be read ({exc}); the run's files are damaged", code="state"
        ) from None
    if not isinstance(digest, str):
        raise StreamsError(
            f"{rd.path / 'plan.json'}: its digest is not text; the run's files are damaged", code="state"
        )
    return digest


def report_digest(rd: RunDir, wave: int) -> str | None:
    """The digest of wave ``wave``'s report, checked against its content (a decision never binds to
    a report changed after it was written), or None when none is written."""
    data = verified_report_data(rd, wave)
    return None if data is None else str(data["digest"])


def base_tip(ws: Workspace, cfg: Config) -> str:
    """The base branch's commit now."""
    tip = git.resolve_commit(ws.main_root, cfg.base_ref())
    if tip is None:
        raise StreamsError(f"the base branch {cfg.base} does not exist", code="no_base")
    return str(tip)


def awaited_wave(record: RunRecord) -> int:
    """The wave the run waits on at its gate; refused when it waits on none."""
    if record.status is not RunStatus.AWAITING_APPROVAL or not 1 <= record.wave <= len(record.waves):
        raise NotAwaitingError(
            f"run {record.run_id} is {record.status}: no wave waits at a gate; name the wave (`streams approve N`)"
        )
    return record.wave


def _check_wave(record: RunRecord, wave: int) -> None:
    if not 1 <= wave <= len(record.waves):
        count = len(record.waves)
        raise UsageError(
            f"run {record.run_id} has {count} wave{'s' if count != 1 else ''}; wave {wave} is not one of them"
        )


def _merges(rd: RunDir) -> bool:
    try:
        plan = json.loads((rd.path / "plan.json").read_text(encoding="utf-8"))["plan"]
        return bool(plan.get("merge", True))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return True


def _next(rd: RunDir, record: RunRecord, wave: int, verdict: Verdict) -> str:
    if verdict is Verdict.REJECTED:
        return (
            f"wave {wave} will not land; `streams request-changes STREAM --note …` runs a stream of it again, "
            "then `streams resume` goes on"
        )
    lands = f"lands wave {wave} and " if _merges(rd) else ""
    if wave < len(record.waves):
        return f"`streams resume` {lands}starts wave {wave + 1}"
    return f"`streams resume` {lands}finishes the run"


def decide(
    ws: Workspace, cfg: Config, wave: int | None, verdict: Verdict, note: str, who: Who, *, agent: bool
) -> Decided:
    """Record ``verdict`` at the gate of ``wave`` (None: the wave the latest run waits on)."""
    refuse_agent("approve" if verdict is Verdict.APPROVED else "reject", agent)
    if verdict is Verdict.REJECTED and not note.strip():
        raise UsageError("reject needs a note: say why (--note TEXT)")
    rd, record = latest(ws)
    if wave is None:
        wave = awaited_wave(record)
    _check_wave(record, wave)
    report = report_digest(rd, wave)
    if report is None:
        raise NoReportError(f"no report of wave {wave} yet (run {record.run_id}); decide once the wave has settled")
    decision = Decision(wave, verdict, note, who, iso_utc(), False, plan_digest(rd), report, base_tip(ws, cfg))
    done = gates.record(rd, decision)
    return Decided(
        record.run_id,
        done.decision,
        str(done.file),
        str(done.stale) if done.stale else None,
        done.why_stale,
        _next(rd, record, wave, verdict),
    )


def ask_changes(ws: Workspace, stream: str, note: str, who: Who, *, agent: bool) -> Requested:
    """Record a change request for ``stream`` of the latest run."""
    refuse_agent("request-changes", agent)
    if not note.strip():
        raise UsageError("request-changes needs a note: say what to change (--note TEXT)")
    rd, record = latest(ws)
    if stream not in record.streams:
        raise UnknownStreamError(
            f"{stream} is not a stream of run {record.run_id} (its streams: {', '.join(record.names) or 'none'})"
        )
    req = gates.request_changes(rd, stream, note, who)
    wave = record.streams[stream].wave
    path = gates.requests_dir(rd) / f"{stream}-{req.n}.json"
    nxt = f"`streams resume` runs {stream} (wave {wave}) again, with your note in its brief"
    return Requested(record.run_id, req, str(path), nxt)
