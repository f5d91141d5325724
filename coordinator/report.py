"""The wave report (DESIGN "Coordination", Wave report): what each stream of a wave did, computed
from git and the run's records, beside what its agent claims.

``write_wave_report`` writes ``runs/<id>/reports/wave-N.json`` and ``wave-N.md`` (atomically); the
JSON's ``digest`` is the sha256 of the canonical JSON of the report without the digest (sorted
keys, no spaces), so a gate can tell the report it approved from one changed since, and
``load_wave_report`` refuses a file whose digest does not match (``ReportDamagedError``).
``delivered`` reads the reports of earlier waves back for the next wave's briefs.

Per stream, from git: the branch tip, the work commits since the stream's ``since`` (the record's:
where the run first launched it), the files changed with their +/- lines, the paths outside its
scope (``streams.scope.verify`` over ``since..tip``), the conflicts a rebase onto the base would
hit (``streams.predict``), how far it is behind the base, the leases it holds. Beside them the
claim: its progress file as committed at the tip (never the worktree's copy). The evidence flags
(``streams.runclass.EvidenceFlag``) set the two against each other:

- ``claimed_done_no_commits``: the progress file says completed, no work commit, no "No change
  needed: <why>" item;
- ``commits_but_claimed_failed``: work commits, and the progress file says failed;
- ``placeholder_text``: a line the stream's diff adds holds ``TODO``, ``FIXME``, ``placeholder``,
  ``lorem ipsum`` or ``NotImplementedError`` (the progress file left out; the lines are listed);
- ``dirty_worktree``: the verification found uncommitted leftovers, or the worktree is dirty now;
- ``behind_base``: the base has commits the branch lacks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coordinator.reporttext import render_markdown
from coordinator.supervise import log_tail
from coordinator.wavereport import (
    AgentClaim,
    AttemptSummary,
    CheckOutcome,
    FileChange,
    ReportDamagedError,
    StreamReport,
    WaveGap,
    WaveReport,
    digest_of,
    from_json,
)
from streams import brief, git, places, predict, progress, scope
from streams.config import Config
from streams.kernel import locks
from streams.kernel.atomic import write_atomic
from streams.kernel.errors import StreamsError
from streams.progress import Progress
from streams.runclass import EvidenceFlag, FailureClass, StreamStatus, no_change_reason
from streams.runstate import Attempt, RunDir, RunRecord, StreamRecord
from streams.workspace import Workspace

__all__ = [
    "ReportDamagedError",
    "WaveReport",
    "build_wave_report",
    "delivered",
    "load_wave_report",
    "report_path",
    "write_wave_report",
    "written_waves",
]

REPORTS = "reports"
TAIL_LINES = 20  # lines of a failed attempt's log kept in the report
SHOWN_PLACEHOLDERS = 20
# TODO and FIXME as markers are upper case ("a todo list" is prose); the others in any case
PLACEHOLDER = re.compile(r"\bTODO\b|\bFIXME\b|(?i:placeholder|lorem ipsum)|NotImplementedError")
DONE = (StreamStatus.VERIFIED, StreamStatus.LANDED)


# --- computing it -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    ws: Workspace
    cfg: Config
    base_tip: str | None
    conflicts: Mapping[str, Sequence[str]]
    leases: Mapping[str, tuple[str, ...]]


def write_wave_report(ws: Workspace, cfg: Config, rd: RunDir, record: RunRecord, wave: int) -> WaveReport:
    """Compute wave ``wave``'s report from git and ``record``, and write it as ``reports/wave-N.json``
    and ``.md`` (each atomically; the JSON last, so a JSON present has its Markdown)."""
    report = build_wave_report(ws, cfg, record, wave)
    folder = rd.path / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"wave-{wave}.md", render_markdown(report).encode())
    write_atomic(folder / f"wave-{wave}.json", (json.dumps(report.to_json(), indent=2) + "\n").encode())
    return report


def build_wave_report(ws: Workspace, cfg: Config, record: RunRecord, wave: int) -> WaveReport:
    """Wave ``wave``'s report (written nowhere)."""
    if not 1 <= wave <= len(record.waves):
        raise StreamsError(
            f"run {record.run_id} has {len(record.waves)} wave(s); wave {wave} is not one of them", code="usage"
        )
    names = [n for n in record.waves[wave - 1] if n in record.streams]
    base_tip = git.resolve_commit(ws.main_root, cfg.base_ref())
    ctx = _Context(ws, cfg, base_tip, _conflicts(ws, cfg, names, base_tip), _leases(ws))
    streams = tuple(_stream_report(ctx, record.streams[n]) for n in names)
    totals: dict[str, int] = {}
    for s in streams:
        totals[s.status] = totals.get(s.status, 0) + 1
    failures = sum(
        1 for s in record.streams.values() if s.wave <= wave and s.status is StreamStatus.FAILED
    )  # as the runner counts them for --halt: blocked is a question, not a failure
    report = WaveReport(
        run_id=record.run_id,
        wave=wave,
        base=cfg.base,
        base_sha=base_tip,
        written=round(time.time(), 3),
        streams=streams,
        totals=totals,
        gaps=tuple(_gap(record.streams[s.name]) for s in streams if not s.verified),
        failures=failures,
    )
    return replace(report, digest=digest_of(report.to_json()))


def _conflicts(ws: Workspace, cfg: Config, names: Sequence[str], base_tip: str | None) -> dict[str, list[str]]:
    if base_tip is None or not names:
        return {}
    try:
        return predict.conflicts_with(ws, cfg, names, base_tip, places.locate(ws, cfg, names))
    except StreamsError:
        return {}  # a prediction is an early warning: a report is written without it


def _leases(ws: Workspace) -> dict[str, tuple[str, ...]]:
    now = time.time()
    held: dict[str, list[str]] = {}
    for lease in locks.list_leases(ws.common_dir):
        if lease.live(now) and lease.stream:
            held.setdefault(lease.stream, []).append(lease.path)
    return {name: tuple(sorted(paths)) for name, paths in held.items()}


@dataclass(frozen=True)
class _Work:
    """What git shows of a stream's work since its ``since``."""

    commits: int
    files: tuple[FileChange, ...]
    insertions: int
    deletions: int
    out_of_scope: tuple[str, ...]
    placeholders: tuple[str, ...]


def _work(ctx: _Context, s: StreamRecord, tip: str | None) -> _Work:
    """The stream's work from git, ``since..tip``; when git cannot show it (no branch, or a branch
    moved off ``since`` by a landing), the counts its attempts recorded."""
    since = s.since or (s.attempts[0].since if s.attempts else "")
    root = ctx.ws.main_root
    if not since or tip is None or not git.is_ancestor(root, since, tip):
        recorded = [a for a in s.attempts if a.commits]
        return _Work(
            commits=sum(a.commits for a in recorded),
            files=(),
            insertions=sum(a.insertions for a in recorded),
            deletions=sum(a.deletions for a in recorded),
            out_of_scope=(),
            placeholders=(),
        )
    rel = ctx.cfg.stream(s.name).progress_path
    changes = git.range_changes(root, [tip], [since])
    work = sum(1 for _, paths in changes if any(p != rel for _, p in paths))
    numstat = git.diff_numstat(root, since, tip, leave_out=[rel])
    verdict = scope.verify(ctx.ws, ctx.cfg, f"{since}..{tip}", stream=s.name)
    added = git.added_lines(root, since, tip, leave_out=[rel])
    marked = [f"{path}: {line.strip()[:120]}" for path, line in added if PLACEHOLDER.search(line)]
    return _Work(
        commits=work,
        files=tuple(FileChange(p, i, d) for i, d, p in numstat),
        insertions=sum(i for i, _, _ in numstat),
        deletions=sum(d for _, d, _ in numstat),
        out_of_scope=tuple(dict.fromkeys(v.path for v in verdict.violations)),
        placeholders=tuple(marked[:SHOWN_PLACEHOLDERS]),
    )


def _claim(ctx: _Context, name: str, tip: str | None) -> AgentClaim:
    """The progress file as committed at ``tip`` (not as it may lie in the worktree)."""
    rel = ctx.cfg.stream(name).progress_path
    data = git.read_blob(ctx.ws.main_root, tip, rel) if tip else None
    parsed: Progress | None = None
    if data is not None:
        try:
            parsed = progress.parse(data.decode("utf-8", "replace"), display=f"{tip}:{rel}")
        except StreamsError:
            parsed = None  # a file that does not parse claims nothing
    if parsed is None:
        return AgentClaim(None, None)
    return AgentClaim(str(parsed.status), parsed.completion, tuple(parsed.completed), no_change_reason(parsed))


def _stream_report(ctx: _Context, s: StreamRecord) -> StreamReport:
    root = ctx.ws.main_root
    tip = git.resolve_commit(root, ctx.cfg.branch_ref(s.name))
    work = _work(ctx, s, tip)
    claim = _claim(ctx, s.name, tip)
    behind = git.divergence(root, ctx.base_tip, tip).behind if tip and ctx.base_tip else 0
    last = s.last
    return StreamReport(
        name=s.name,
        wave=s.wave,
        status=str(s.status),
        klass=s.klass,
        cause=s.cause,
        blocked_by=s.blocked_by,
        claim=claim,
        attempts=tuple(_attempt(a) for a in s.attempts),
        wall_time=round(sum(_run_time(a) for a in s.attempts), 3),
        since=s.since,
        tip=tip,
        commits=work.commits,
        files=work.files,
        insertions=work.insertions,
        deletions=work.deletions,
        out_of_scope=work.out_of_scope,
        conflicts=tuple(ctx.conflicts.get(s.name, ())),
        behind=behind,
        leases=ctx.leases.get(s.name, ()),
        flags=_flags(s, claim, work, behind),
        placeholders=work.placeholders,
        check=_check(ctx.cfg, last),
        log_tail="" if s.status in DONE or last is None else _tail(last),
    )


def _run_time(a: Attempt) -> float:
    return max(0.0, a.ended - a.started) if a.started and a.ended else 0.0


def _attempt(a: Attempt) -> AttemptSummary:
    return AttemptSummary(a.n, a.klass, a.cause, a.exit, round(_run_time(a), 3), a.wip)


def _flags(s: StreamRecord, claim: AgentClaim, work: _Work, behind: int) -> tuple[str, ...]:
    """The evidence flags, in ``EvidenceFlag``'s order: the last attempt's (its verification set
    them) and what git shows now."""
    found = {EvidenceFlag(f) for f in (s.last.flags if s.last else []) if f in set(EvidenceFlag)}
    if claim.status == "completed" and not work.commits and claim.no_change is None:
        found.add(EvidenceFlag.CLAIMED_DONE_NO_COMMITS)
    if claim.status == "failed" and work.commits:
        found.add(EvidenceFlag.COMMITS_BUT_CLAIMED_FAILED)
    if work.placeholders:
        found.add(EvidenceFlag.PLACEHOLDER_TEXT)
    if _dirty(s):
        found.add(EvidenceFlag.DIRTY_WORKTREE)
    if behind:
        found.add(EvidenceFlag.BEHIND_BASE)
    return tuple(str(f) for f in EvidenceFlag if f in found)


def _dirty(s: StreamRecord) -> bool:
    """The last attempt left uncommitted work (saved under a WIP ref), or the worktree is dirty now."""
    if s.last is not None and s.last.wip:
        return True
    worktree = Path(s.worktree) if s.worktree else None
    if worktree is None or not worktree.is_dir():
        return False
    try:
        return bool(git.is_dirty(worktree))
    except StreamsError:
        return False


def _check_log(a: Attempt) -> Path | None:
    return a.check_log if a.log else None


def _check(cfg: Config, last: Attempt | None) -> CheckOutcome:
    log = _check_log(last) if last is not None else None
    if last is None or log is None or not log.is_file():
        return CheckOutcome(cfg.run.check, False, None, None, None)
    passed = last.klass != FailureClass.CHECK_FAILED
    return CheckOutcome(cfg.run.check, True, passed, last.check_passed, last.check_failed)


def _tail(a: Attempt) -> str:
    """The last lines of the check's log when the check failed, else of the agent's log."""
    log = _check_log(a) if a.klass == FailureClass.CHECK_FAILED else None
    if log is None or not log.is_file():
        log = Path(a.log) if a.log else None
    if log is None:
        return ""
    lines = log_tail(log).rstrip("\n").splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def _gap(s: StreamRecord) -> WaveGap:
    if not s.status.settled:
        why = "not finished when the report was written"
    elif s.status is StreamStatus.SKIPPED and s.blocked_by:
        why = f"skipped: {s.blocked_by} failed" + (f" ({s.cause})" if s.cause else "")
    else:
        why = (f"{s.klass}: " if s.klass else "") + (s.cause or str(s.status))
    return WaveGap(s.name, str(s.status), why)


# --- reading it back ----------------------------------------------------------------------------------


def report_path(rd: RunDir, wave: int) -> Path:
    return rd.path / REPORTS / f"wave-{wave}.json"


def written_waves(rd: RunDir) -> list[int]:
    """The waves of the run that have a written report, in order."""
    found = []
    for path in (rd.path / REPORTS).glob("wave-*.json"):
        number = path.stem.removeprefix("wave-")
        if number.isdigit():
            found.append(int(number))
    return sorted(found)


def verified_report_data(rd: RunDir, wave: int) -> dict[str, Any] | None:
    """Wave ``wave``'s written report as JSON, its digest checked against its content; None when
    none is written; ``ReportDamagedError`` when it cannot be read or was changed after it was written."""
    path = report_path(rd, wave)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReportDamagedError(f"{path}: cannot be read ({exc}); write it again") from None
    if not isinstance(data, dict) or digest_of(data) != data.get("digest"):
        raise ReportDamagedError(f"{path}: its digest does not match its content: it was changed after it was written")
    return data


def load_wave_report(rd: RunDir, wave: int) -> WaveReport | None:
    """Wave ``wave``'s written report, or None when none is written; ``ReportDamagedError`` when its
    digest does not match its content, or it cannot be read as a report."""
    data = verified_report_data(rd, wave)
    if data is None:
        return None
    path = report_path(rd, wave)
    try:
        return from_json(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise ReportDamagedError(f"{path}: not a wave report ({exc})") from None


# --- what the next wave's briefs carry ----------------------------------------------------------------

SHOWN_FILES = 50  # files named per delivered stream


def delivered(rd: RunDir, record: RunRecord, before_wave: int) -> tuple[brief.Delivered, ...]:
    """What the verified streams of the waves before ``before_wave`` delivered, from their written
    reports (a wave without one is left out; a damaged one raises ``ReportDamagedError``)."""
    out: list[brief.Delivered] = []
    for wave in range(1, min(before_wave, len(record.waves) + 1)):
        report = load_wave_report(rd, wave)
        if report is None:
            continue
        for s in report.streams:
            if not s.verified:
                continue
            out.append(
                brief.Delivered(
                    stream=s.name,
                    wave=wave,
                    commits=s.commits,
                    files=tuple(f.path for f in s.files[:SHOWN_FILES]),
                    note=_note(record, s),
                )
            )
    return tuple(out)


def _note(record: RunRecord, s: StreamReport) -> str:
    now = record.streams.get(s.name)
    landed = now is not None and now.status is StreamStatus.LANDED
    parts = ["landed on the base" if landed else "verified on its branch, not landed"]
    if s.flags:
        parts.append("flagged: " + ", ".join(s.flags))
    if len(s.files) > SHOWN_FILES:
        parts.append(f"{len(s.files) - SHOWN_FILES} more files not named")
    return "; ".join(parts)
