"""A wave report as a person reads it: ``reports/wave-N.md``, and what ``streams report`` prints.

A summary line (clean or not, and why), a table with one row per stream, then per stream that
needs a look (not verified, flagged, out of scope, conflicting) its details: the claim beside the
verdict, the flags spelled out, the files, the check, the log's tail; then the gaps and the totals.
"""

from __future__ import annotations

import time

from coordinator.wavereport import StreamReport, WaveReport
from streams.kernel.durations import format_duration

FLAG_TEXT = {
    "claimed_done_no_commits": "claimed done, but made no work commit and gave no reason",
    "commits_but_claimed_failed": "made work commits, but its progress file says it failed",
    "placeholder_text": "its diff adds placeholder text (TODO, FIXME, placeholder, lorem ipsum, NotImplementedError)",
    "dirty_worktree": "left uncommitted changes in its worktree",
    "behind_base": "its branch is behind the base",
}
SHOWN_FILES = 20


def render_markdown(report: WaveReport) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.written))
    base = f"{report.base} at {report.base_sha[:12]}" if report.base_sha else f"{report.base} (no commit)"
    lines = [
        f"# Wave {report.wave} of run {report.run_id}: {_verdict(report)}",
        "",
        f"Base {base}; written {when}; {report.digest}",
        "",
        "| stream | verdict | claim | attempts | time | commits | files | +/- | check | flags |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(s) for s in report.streams]
    for s in report.streams:
        if not s.verified or s.flags or s.out_of_scope or s.conflicts:
            lines += ["", *_details(s)]
    lines += ["", "## Gaps", ""]
    lines += [f"- {g.stream} ({g.status}): {g.why}" for g in report.gaps] or ["None: every stream is verified."]
    totals = ", ".join(f"{n} {status}" for status, n in sorted(report.totals.items())) or "no streams"
    lines += ["", "## Totals", "", f"{totals}; streams failed in the run so far: {report.failures}"]
    return "\n".join(lines) + "\n"


def _verdict(report: WaveReport) -> str:
    if report.clean:
        return "clean"
    why = []
    if report.gaps:
        why.append(f"{len(report.gaps)} not verified")
    flagged = sum(1 for s in report.streams if s.flags)
    if flagged:
        why.append(f"{flagged} flagged")
    astray = sum(1 for s in report.streams if s.out_of_scope)
    if astray:
        why.append(f"{astray} out of scope")
    return "NOT CLEAN (" + (", ".join(why) or "no streams") + ")"


def _claim(s: StreamReport) -> str:
    c = s.claim
    if c.status is None:
        return "no progress file"
    return f"{c.status} {c.completion}%" if c.completion is not None else c.status


def _check(s: StreamReport) -> str:
    c = s.check
    if not c.ran:
        return "-" if c.command is None else "not run"
    counts = []
    if c.passed_count is not None:
        counts.append(f"{c.passed_count} passed")
    if c.failed_count is not None:
        counts.append(f"{c.failed_count} failed")
    word = "passed" if c.passed else "FAILED"
    return f"{word} ({', '.join(counts)})" if counts else word


def _row(s: StreamReport) -> str:
    verdict = s.status + (f" ({s.klass})" if s.klass else "")
    cells = [
        s.name,
        verdict,
        _claim(s),
        str(len(s.attempts)),
        format_duration(s.wall_time) if s.wall_time >= 1 else f"{s.wall_time:.1f}s",
        str(s.commits),
        str(len(s.files)),
        f"+{s.insertions} -{s.deletions}",
        _check(s),
        ", ".join(s.flags) or "-",
    ]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _details(s: StreamReport) -> list[str]:
    lines = [f"## {s.name}", ""]
    lines.append(f"- verdict: {s.status}" + (f" ({s.klass})" if s.klass else "") + (f": {s.cause}" if s.cause else ""))
    if s.blocked_by:
        lines.append(f"- waits on: {s.blocked_by}")
    c = s.claim
    tasks = "; ".join(c.completed) or "none"
    lines.append(f"- claim: {_claim(s)}; completed tasks: {tasks}")
    for a in s.attempts:
        ended = a.klass or "verified"
        code = f", exit {a.exit}" if a.exit is not None else ""
        lines.append(
            f"- attempt {a.n}: {ended}{code}, {a.run_time:.1f}s: {a.cause}" + (f" (WIP {a.wip})" if a.wip else "")
        )
    lines += [f"- flag {f}: {FLAG_TEXT.get(f, f)}" for f in s.flags]
    lines += [f"  - {p}" for p in s.placeholders]
    if s.out_of_scope:
        lines.append("- outside its scope: " + ", ".join(s.out_of_scope))
    if s.conflicts:
        lines.append("- would conflict with the base on: " + ", ".join(s.conflicts))
    if s.leases:
        lines.append("- holds leases on: " + ", ".join(s.leases))
    if s.files:
        lines.append("- files:")
    for f in s.files[:SHOWN_FILES]:
        lines.append(f"  - {f.path} +{f.insertions} -{f.deletions}")
    if len(s.files) > SHOWN_FILES:
        lines.append(f"  - and {len(s.files) - SHOWN_FILES} more files")
    lines.append(f"- check: {_check(s)}" + (f" (`{s.check.command}`)" if s.check.command else ""))
    if s.log_tail:
        lines += ["", "```", s.log_tail, "```"]
    return lines
