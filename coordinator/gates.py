"""Approval gates and change requests (DESIGN "Coordination": approval gates).

After a wave's report the run may wait at a gate (``run.gate``): ``none`` opens it at once;
``auto-if-clean`` approves a clean wave by policy (never one with a blocked or critical stream);
``manual`` waits for a human's ``streams approve N`` or ``streams reject N --note``.

A decision is a small JSON file, ``runs/<id>/approvals/wave-N.json``, written once: the whole file
is written beside it, then published with ``os.link``, which fails when the name exists (create-only,
as ``O_EXCL``, and a reader never sees half a file). It records who decided (git user, OS user,
host), when, the note, and the plan, report and base hashes the decider saw. A decision whose
hashes no longer match is *stale*: the gate is open again, and a new decision for the wave is
allowed; the stale file is kept, renamed ``wave-N.stale-<time>.json``. A second decision while the
first is current is refused (``decided``). The check and the publication happen under
``approvals/.decide.flock``, so two deciders never both replace one stale decision.

A change request (``streams request-changes STREAM --note``) is ``runs/<id>/requests/<stream>-<n>.json``
(create-only, ``n`` the next free number); the runner takes it (renamed ``<stream>-<n>.taken.json``)
when it re-queues the stream, and every note ever given goes into the stream's brief.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from streams import git
from streams.kernel import events, mutex
from streams.kernel.atomic import create_exclusive
from streams.kernel.durations import iso_utc
from streams.kernel.errors import BusyError, StreamsError
from streams.kernel.procs import holder_name
from streams.runconfig import Gate
from streams.runstate import RunDir

APPROVALS = "approvals"
REQUESTS = "requests"
GUARD = ".decide.flock"
GUARD_WAIT = 10.0


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class GateState(StrEnum):
    OPEN = "open"  # no gate (run.gate: none)
    APPROVED = "approved"  # a current approval: the wave may land
    REJECTED = "rejected"  # a current rejection: the wave does not land
    AWAITING = "awaiting"  # a human must decide (no decision, or a stale one)


class DecidedError(StreamsError):
    code = "decided"


class AgentRefusedError(StreamsError):
    code = "agent_refused"


@dataclass(frozen=True)
class Who:
    """Who decided.

    ========  ====  ==================================================================
    field     type  meaning
    ========  ====  ==================================================================
    git_user  str   git's identity (``Name <email>``); ``streams run`` for a policy
    os_user   str   the operating-system user
    host      str   the machine
    ========  ====  ==================================================================
    """

    git_user: str
    os_user: str
    host: str

    def __str__(self) -> str:
        return f"{self.git_user} ({self.os_user}@{self.host})"


def who_now(cwd: Path) -> Who:
    """This process's user: git's author identity as a commit made here would record it."""
    user, _, host = holder_name().rpartition("@")
    try:
        ident, _ = git.idents(cwd)
        git_user = re.sub(r"\s+\d+\s+[+-]\d{4}$", "", ident.strip())
    except StreamsError:
        git_user = "unknown"
    return Who(git_user, user, host or socket.gethostname())


def runner_who() -> Who:
    """The runner, deciding by policy."""
    user, _, host = holder_name().rpartition("@")
    return Who("streams run", user, host)


@dataclass(frozen=True)
class Decision:
    """A decision at a wave's gate (``approvals/wave-N.json``).

    =============  ======  =====================================================================
    field          type    meaning
    =============  ======  =====================================================================
    wave           int     the wave decided (1-based)
    verdict        str     approved | rejected
    note           str     the decider's note ("" when none)
    who            Who     who decided
    when           str     when (ISO 8601 UTC)
    by_policy      bool    recorded by ``auto-if-clean``, not by a human
    plan_digest    str     the plan's digest the decider saw
    report_digest  str     the wave report's digest the decider saw
    base           str     the base branch's commit the decider saw
    =============  ======  =====================================================================
    """

    wave: int
    verdict: Verdict
    note: str
    who: Who
    when: str
    by_policy: bool
    plan_digest: str
    report_digest: str
    base: str

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, **asdict(self), "verdict": str(self.verdict)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        d = {k: v for k, v in data.items() if k != "version"}
        who = d.pop("who")
        if not isinstance(who, dict):
            raise TypeError("who is not an object")
        decision = cls(**{**d, "verdict": Verdict(d["verdict"])}, who=Who(**who))
        kinds = (
            (decision.wave, int),
            (decision.note, str),
            (decision.when, str),
            (decision.by_policy, bool),
            (decision.plan_digest, str),
            (decision.report_digest, str),
            (decision.base, str),
        )
        if not all(isinstance(v, t) for v, t in kinds):
            raise TypeError("a field of the wrong type")
        return decision


@dataclass(frozen=True)
class GateResult:
    """Where a wave's gate stands: ``state``, the decision behind it, and why, in one line."""

    state: GateState
    decision: Decision | None
    why: str


def approvals_dir(rd: RunDir) -> Path:
    return rd.path / APPROVALS


def decision_file(rd: RunDir, wave: int) -> Path:
    return approvals_dir(rd) / f"wave-{wave}.json"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StreamsError(f"{path}: cannot be read ({exc}); the run's files are damaged", code="state") from None
    if not isinstance(data, dict):
        raise StreamsError(f"{path}: not a JSON object; the run's files are damaged", code="state")
    return data


def decision_of(rd: RunDir, wave: int) -> Decision | None:
    """The decision recorded for ``wave`` (current or stale), or None."""
    path = decision_file(rd, wave)
    data = _read_json(path)
    if data is None:
        return None
    try:
        return Decision.from_json(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise StreamsError(f"{path}: not a decision ({exc}); the run's files are damaged", code="state") from None


def changed(decision: Decision, plan_digest: str, report_digest: str, base: str) -> str | None:
    """Which hash no longer matches what ``decision`` saw (one line), or None when it is current."""
    for name, saw, now in (
        ("plan", decision.plan_digest, plan_digest),
        ("report", decision.report_digest, report_digest),
        ("base", decision.base, base),
    ):
        if saw != now:
            return f"the {name} changed since it was {decision.verdict} ({saw[:12] or '-'} then, {now[:12] or '-'} now)"
    return None


def is_current(decision: Decision, plan_digest: str, report_digest: str, base: str) -> bool:
    return changed(decision, plan_digest, report_digest, base) is None


@contextlib.contextmanager
def _guard(directory: Path) -> Iterator[None]:
    busy = lambda: BusyError(f"{directory}: another decision is being written; try again")  # noqa: E731
    with mutex.held(directory / GUARD, timeout=GUARD_WAIT, busy=busy):
        yield


def _publish(path: Path, data: dict[str, Any]) -> bool:
    """Write ``path`` create-only, whole (``kernel.atomic.create_exclusive``). False when it exists."""
    return create_exclusive(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), sync=True)


def _move_aside(path: Path, stem: str) -> Path:
    """Rename ``path`` to ``<stem>.stale-<time>.json`` (create-only: never over another file)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 1000):
        aside = path.parent / f"{stem}.stale-{stamp}{'' if n == 1 else f'-{n}'}.json"
        try:
            os.link(path, aside)
        except FileExistsError:
            continue
        path.unlink()
        return aside
    raise StreamsError(f"{path.parent}: too many stale decisions named for {stamp}", code="state")


@dataclass(frozen=True)
class Recorded:
    """What ``record`` did: the decision written, and the stale one it replaced (or None)."""

    decision: Decision
    file: Path
    stale: Path | None
    why_stale: str | None


def _refusal(old: Decision, path: Path) -> DecidedError:
    by = " (by policy)" if old.by_policy else ""
    return DecidedError(
        f"wave {old.wave} was already {old.verdict} by {old.who} at {old.when}{by}; a decision is written once ({path})"
    )


def record(rd: RunDir, decision: Decision) -> Recorded:
    """Write ``decision`` create-only. Refused (``decided``) while the wave's decision is current
    for the hashes ``decision`` saw; a stale one is kept aside and the gate re-opened."""
    path = decision_file(rd, decision.wave)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _guard(path.parent):
        old = decision_of(rd, decision.wave)
        aside: Path | None = None
        why: str | None = None
        if old is not None:
            why = changed(old, decision.plan_digest, decision.report_digest, decision.base)
            if why is None:
                raise _refusal(old, path)
            aside = _move_aside(path, f"wave-{decision.wave}")
            events.append(rd.ws.common_dir, "gate.reopen", run=rd.run_id, wave=decision.wave, stale=aside.name, why=why)
        if not _publish(path, decision.to_json()):  # only past a writer that skipped the guard
            won = decision_of(rd, decision.wave)
            raise _refusal(won, path) if won is not None else DecidedError(f"{path}: written at the same moment")
    kind = "gate.approve" if decision.verdict is Verdict.APPROVED else "gate.reject"
    events.append(
        rd.ws.common_dir,
        kind,
        run=rd.run_id,
        wave=decision.wave,
        who=str(decision.who),
        note=decision.note,
        by_policy=decision.by_policy,
    )
    return Recorded(decision, path, aside, why)


def gate(
    rd: RunDir,
    wave: int,
    policy: Gate,
    plan_digest: str,
    report_digest: str,
    base: str,
    clean: bool,
    has_blocked_or_critical: bool,
) -> GateResult:
    """Where ``wave``'s gate stands under ``policy`` for the hashes the runner sees now; under
    ``auto-if-clean`` a clean wave with nothing blocked or critical is approved (recorded, by policy)."""
    if policy is Gate.NONE:
        return GateResult(GateState.OPEN, None, "run.gate is none: no gate")
    old = decision_of(rd, wave)
    stale = changed(old, plan_digest, report_digest, base) if old is not None else None
    if old is not None and stale is None:
        by = "by policy" if old.by_policy else f"by {old.who}"
        return GateResult(GateState(str(old.verdict)), old, f"wave {wave} {old.verdict} {by} at {old.when}")
    if policy is Gate.AUTO_IF_CLEAN and clean and not has_blocked_or_critical:
        decision = Decision(
            wave,
            Verdict.APPROVED,
            "auto-if-clean: every stream verified, nothing flagged",
            runner_who(),
            iso_utc(),
            True,
            plan_digest,
            report_digest,
            base,
        )
        try:
            done = record(rd, decision)
        except DecidedError:  # a human decided at this very moment: theirs stands
            return gate(rd, wave, Gate.MANUAL, plan_digest, report_digest, base, clean, has_blocked_or_critical)
        return GateResult(GateState.APPROVED, done.decision, f"wave {wave} approved by policy (auto-if-clean)")
    if stale is not None:
        why = f"the gate of wave {wave} re-opened: {stale}; `streams approve {wave}` decides again"
    elif has_blocked_or_critical:
        why = f"wave {wave} has a blocked or critical stream: a human decides (`streams approve {wave}`)"
    elif policy is Gate.AUTO_IF_CLEAN:
        why = f"wave {wave} is not clean (see `streams report --wave {wave}`): `streams approve {wave}` decides"
    else:
        why = f"wave {wave} waits for `streams approve {wave}` (or `streams reject {wave} --note …`)"
    return GateResult(GateState.AWAITING, None, why)


# --- change requests -----------------------------------------------------------------------------------

_REQUEST = re.compile(r"(?P<stream>.+)-(?P<n>[0-9]+)(?P<taken>\.taken)?\.json\Z")


@dataclass(frozen=True)
class ChangeRequest:
    """A human's request that a stream run again with a note (``requests/<stream>-<n>.json``).

    ======  ====  ========================================================================
    field   type  meaning
    ======  ====  ========================================================================
    stream  str   the stream to run again
    n       int   its number among that stream's requests (1, 2, …)
    note    str   what to change: it goes into the stream's brief
    who     Who   who asked
    when    str   when (ISO 8601 UTC)
    taken   bool  the runner has re-queued the stream for it
    ======  ====  ========================================================================
    """

    stream: str
    n: int
    note: str
    who: Who
    when: str
    taken: bool = False


def requests_dir(rd: RunDir) -> Path:
    return rd.path / REQUESTS


def _request_file(rd: RunDir, stream: str, n: int, *, taken: bool) -> Path:
    return requests_dir(rd) / f"{stream}-{n}{'.taken' if taken else ''}.json"


def _all_requests(rd: RunDir) -> list[ChangeRequest]:
    found: list[ChangeRequest] = []
    try:
        names = sorted(os.listdir(requests_dir(rd)))
    except FileNotFoundError:
        return []
    for name in names:
        m = _REQUEST.match(name)
        if m is None:
            continue
        path = requests_dir(rd) / name
        data = _read_json(path)
        if data is None:  # taken between the listing and the read: its .taken twin is listed
            continue
        try:
            req = ChangeRequest(
                m["stream"], int(m["n"]), str(data["note"]), Who(**data["who"]), str(data["when"]), bool(m["taken"])
            )
        except (TypeError, KeyError) as exc:
            raise StreamsError(
                f"{path}: not a change request ({exc}); the run's files are damaged", code="state"
            ) from None
        found.append(req)
    return sorted(found, key=lambda r: (r.stream, r.n))


def request_changes(rd: RunDir, stream: str, note: str, who: Who) -> ChangeRequest:
    """Record a change request for ``stream`` under the next free number (create-only)."""
    if not note.strip():
        raise StreamsError("request-changes needs a note: say what to change (--note TEXT)", code="usage")
    directory = requests_dir(rd)
    directory.mkdir(parents=True, exist_ok=True)
    with _guard(directory):
        n = max((r.n for r in _all_requests(rd) if r.stream == stream), default=0) + 1
        while True:
            req = ChangeRequest(stream, n, note, who, iso_utc())
            body = {"version": 1, "stream": stream, "n": n, "note": note, "who": asdict(who), "when": req.when}
            if not _request_file(rd, stream, n, taken=True).exists() and _publish(
                _request_file(rd, stream, n, taken=False), body
            ):
                break
            n += 1
    events.append(rd.ws.common_dir, "gate.request_changes", run=rd.run_id, stream=stream, n=n, who=str(who), note=note)
    return req


def pending_requests(rd: RunDir) -> list[ChangeRequest]:
    """The change requests the runner has not taken yet, by stream and number."""
    return [r for r in _all_requests(rd) if not r.taken]


def consume(rd: RunDir, request: ChangeRequest) -> ChangeRequest:
    """Mark ``request`` taken (renamed ``<stream>-<n>.taken.json``); taking it twice is harmless."""
    pending = _request_file(rd, request.stream, request.n, taken=False)
    taken = _request_file(rd, request.stream, request.n, taken=True)
    with _guard(requests_dir(rd)):
        if pending.exists():
            with contextlib.suppress(FileExistsError):
                os.link(pending, taken)
            pending.unlink()
        elif not taken.exists():
            raise StreamsError(f"{pending}: no such change request", code="state")
    return ChangeRequest(request.stream, request.n, request.note, request.who, request.when, True)


def notes_for(rd: RunDir, stream: str) -> tuple[str, ...]:
    """Every note ever given for ``stream`` (taken or not), oldest first: for its brief."""
    return tuple(r.note for r in _all_requests(rd) if r.stream == stream)
