"""sync: rebase the streams onto the base, once or on a timer; finish or abort a halted rebase.

The ``--json`` data is ``Synced`` (a pass), ``SyncPass`` (each pass of ``--watch``, one envelope per
line) or ``Aborted`` (``--abort``). Their tables document ``coordinator.sync``'s result types too,
until that module documents them itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import click

from coordinator import sync as syncing
from coordinator.loop import Loop, Tick
from streams.cli import base
from streams.cli.base import Reply, cli, info, json_option, table, wants_json, warn
from streams.cli.context import open_workspace, short
from streams.config import Config
from streams.kernel.errors import HaltedError, StreamsError, UsageError
from streams.state import Halt


@dataclass(frozen=True)
class Synced:
    """``streams sync --json`` (exit 4 on a halt, 1 on a failed stream: the data is there as well).

    ============================  ========================  =======================================
    field                         type                      meaning
    ============================  ========================  =======================================
    continued                     ContinueResult | null     --continue NAME: the rebase it finished
    continued.stream              str                       the stream
    continued.halt                Halt                      the halt it resolved
    continued.tip                 str                       the branch tip once the rebase finished
    report                        SyncReport                the pass
    report.upstream               str                       what the streams are rebased onto, for
                                                            people (e.g. ``origin/main``)
    report.upstream_ref           str                       its ref, e.g. ``refs/remotes/origin/main``
    report.upstream_tip           str                       its commit
    report.fetched                bool                      the pass fetched from the remote first
    report.streams                [StreamResult]            one per stream, in dependency order
    report.streams[].name         str                       the stream
    report.streams[].outcome      str                       up to date | rebased | dirty | halted |
                                                            not started | no worktree | detached |
                                                            failed | blocked (depends,
                                                            directly or through others, on a
                                                            halted stream: left alone) |
                                                            upstream rewritten (holds commits the
                                                            upstream dropped: left alone)
    report.streams[].old_tip      str | null                the branch tip before the pass
    report.streams[].new_tip      str | null                after it
    report.streams[].files        [str]                     the dirty or conflicting paths
    report.streams[].detail       str                       what happened, for people
    report.streams[].push         str | null                pushed | rejected | diverged | failed;
                                                            null: nothing to push, or no remote
    report.streams[].push_detail  str                       what the push did, for people
    report.halts                  [Halt]                    every halt pending among the streams
                                                            after the pass
    report.new_halts              [Halt]                    the conflicts this pass stopped on (one
                                                            per halted stream, dependency order)
    report.reconciled             [{stream, what, detail}]  what the pass found in git that
                                                            state.json did not say (what: resolved
                                                            | aborted | worktree gone | recovered |
                                                            found | fence lifted | rolled back |
                                                            left behind), and what it did
                                                            about it
    report.predicted              {stream: [str]} | null    paths a rebase of each stream would
                                                            conflict on (git merge-tree; with
                                                            --json only)
    report.time                   str                       when the pass ran (ISO 8601, UTC)
    report.halted                 bool                      a stream waits for a human (a halt, or
                                                            the upstream rewritten under it)
    report.failed                 [StreamResult]            the streams that failed to rebase or
                                                            to push
    ============================  ========================  =======================================
    """

    continued: syncing.ContinueResult | None
    report: syncing.SyncReport


@dataclass(frozen=True)
class SyncPass:
    """Each pass of ``streams sync --watch --json``: one envelope per line (ok false when a stream
    failed); a halt ends the command (exit 4) with the halting pass.

    =========  =======================  ===========================================================
    field      type                     meaning
    =========  =======================  ===========================================================
    iteration  int                      the pass, counting from 1
    continued  ContinueResult | null    as in ``Synced`` (the first pass only)
    report     SyncReport               as in ``Synced``
    =========  =======================  ===========================================================
    """

    iteration: int
    continued: syncing.ContinueResult | None
    report: syncing.SyncReport


@dataclass(frozen=True)
class Aborted:
    """``streams sync --abort NAME --json``.

    ====================  ===========  ============================================================
    field                 type         meaning
    ====================  ===========  ============================================================
    aborted               AbortResult  the abort
    aborted.stream        str          the stream
    aborted.halt          Halt | null  the halt it gave up (null: a rebase streams had not
                                       recorded)
    aborted.original_tip  str          where the branch is back at
    aborted.replaced_tip  str | null   a tip the abort moved away from (kept in the branch's
                                       reflog)
    aborted.worktree      str          the stream's worktree
    aborted.removed       [str]        untracked copies of committed files a killed rebase left,
                                       removed
    aborted.saved         [str]        refs (``refs/streams/saved/<stream>/<time>``) keeping
                                       commits made after the halt began, which the abort would
                                       otherwise have dropped
    ====================  ===========  ============================================================
    """

    aborted: syncing.AbortResult


# --- sync ----------------------------------------------------------------------------------------


def _interval(text: str, *, bounded: bool) -> float:
    """``--interval``: at least 0.1s, so an endless watch cannot spin; a run bounded by the hidden
    --iterations (tests) may go faster."""
    from streams.kernel.durations import MIN_INTERVAL, parse_interval

    try:
        return parse_interval(text, minimum=0.0 if bounded else MIN_INTERVAL)
    except StreamsError as exc:
        raise UsageError(exc.message) from None


def _arrow(r: syncing.StreamResult) -> str:
    if r.outcome == syncing.Outcome.REBASED:
        return f"{short(r.old_tip)} -> {short(r.new_tip)}"
    return short(r.new_tip or r.old_tip) if (r.new_tip or r.old_tip) else "-"


def _report_text(report: syncing.SyncReport) -> str:
    for note in report.reconciled:
        info(note.detail)
    fetched = " (fetched)" if report.fetched else ""
    lines = [f"upstream {report.upstream} at {short(report.upstream_tip)}{fetched}"]
    rows = []
    for r in report.streams:
        detail = r.detail if r.outcome not in (syncing.Outcome.HALTED,) else f"conflict in {', '.join(r.files) or '-'}"
        if r.outcome == syncing.Outcome.HALTED and not r.files:
            detail = "rebase in progress"
        if r.push:
            detail = f"{detail}; {r.push_detail}" if detail else r.push_detail
        if r.outcome == syncing.Outcome.REBASED and r.push is None:
            detail = ""
        rows.append([r.name, r.outcome, _arrow(r), detail])
    if rows:
        lines.append(table(rows, ["STREAM", "OUTCOME", "TIP", "DETAIL"]))
    if report.predicted:
        for name, files in report.predicted.items():
            if files:
                lines.append(f"predicted conflict: {name} in {', '.join(files)}")
    return "\n".join(lines)


def _pass_text(p: SyncPass) -> str:
    return f"-- {dt.datetime.now().strftime('%H:%M:%S')} pass {p.iteration}\n{_report_text(p.report)}"


def _abort_text(a: Aborted, config: Config) -> str:
    result = a.aborted
    return (
        f"{result.stream}: rebase aborted; {config.branch(result.stream)} is back at {short(result.original_tip)}"
        + (f" (moved from {short(result.replaced_tip)}, kept in the reflog)" if result.replaced_tip else "")
        + (
            f"; removed {len(result.removed)} untracked cop{'ies' if len(result.removed) != 1 else 'y'} of "
            f"committed files the interrupted rebase left: {', '.join(result.removed)}"
            if result.removed
            else ""
        )
        + (
            f"; commits made after the halt began are kept as {', '.join(result.saved)} (`git log {result.saved[0]}`)"
            if result.saved
            else ""
        )
    )


def _new_halt_line(h: Halt, report: syncing.SyncReport) -> str:
    what = f"conflicts in {', '.join(h.files)}" if h.files else "stopped"
    return (
        f"rebasing {h.stream} onto {h.upstream or report.upstream} ({short(h.onto)}) {what}. "
        f"The rebase is left in progress in {h.worktree}. Next: resolve the files there and `git add` them, "
        f"then `git rebase --continue` there or `streams sync --continue {h.stream}`; "
        f"or give up with `streams sync --abort {h.stream}` (back to {short(h.original_tip)})"
    )


def _halt_message(report: syncing.SyncReport) -> str:
    """Every halt, one per line: those of this pass with the full next steps, then the older ones."""
    new = {h.stream for h in report.new_halts}
    lines = [_new_halt_line(h, report) for h in report.new_halts]
    lines += [f"{h.stream} waits for a human: {syncing.halt_next(h)}" for h in report.halts if h.stream not in new]
    lines += [f"{r.name}: {r.detail}" for r in report.streams if r.outcome == syncing.Outcome.REWRITTEN]
    if len(lines) == 1:
        return f"sync halted: {lines[0]}"
    waiting = f"{len(lines)} streams wait for a human"
    if 0 < len(report.new_halts) < len(lines):
        waiting += f" ({len(report.new_halts)} halted in this pass)"
    return f"sync halted: {waiting}, one per line:\n" + "\n".join(f"  {line}" for line in lines)


def _judge(report: syncing.SyncReport) -> StreamsError | None:
    if report.halted:
        return HaltedError(_halt_message(report))
    if report.failed:
        parts = [f"{r.name}: {r.push_detail if r.push else r.detail}" for r in report.failed]
        return syncing.SyncError(
            f"sync: {len(parts)} stream{'s' if len(parts) != 1 else ''} not synced: " + "; ".join(parts)
        )
    return None


def _signature(report: syncing.SyncReport) -> tuple[object, ...]:
    return tuple((r.name, r.outcome, r.new_tip, r.push, r.files) for r in report.streams)


@cli.command("sync")
@click.argument("names", nargs=-1)
@click.option("--watch", is_flag=True, help="Sync again every --interval until a stream halts (Ctrl-C stops).")
@click.option(
    "--interval",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="Time between passes with --watch, e.g. 30s, 5m (a bare number is seconds).",
)
@click.option(
    "--continue", "continue_name", metavar="NAME", help="Finish NAME's halted rebase (re-checks scope), then sync."
)
@click.option(
    "--abort", "abort_name", metavar="NAME", help="Abort NAME's halted rebase: its branch goes back to where it was."
)
@click.option("--iterations", type=click.IntRange(min=1), hidden=True, help="Stop --watch after N passes (tests).")
@json_option
def sync_cmd(
    names: tuple[str, ...],
    watch: bool,
    interval: str,
    continue_name: str | None,
    abort_name: str | None,
    iterations: int | None,
) -> Reply[Synced] | Reply[SyncPass] | Reply[Aborted] | None:
    """Rebase streams onto the base branch (fetching first when `remote` is set) and push them.

    Per stream, in dependency order: nothing when it already contains the upstream; skipped
    when its worktree has uncommitted changes; else `git rebase` in its worktree. A conflict
    leaves the rebase in progress and records the halt; the streams that depend on a halted
    one are left alone (blocked), every other stream is still rebased. Any halt exits 4 with
    the next steps, one halt per line. With
    `remote` set, moved stream branches are pushed with --force-with-lease, never forced over
    commits someone else pushed. --json also shows predicted conflicts (git merge-tree).
    """
    if continue_name is not None and abort_name is not None:
        raise UsageError("--continue and --abort cannot be used together")
    for flag, value in (("--continue", continue_name), ("--abort", abort_name)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} needs the name of a halted stream, e.g. `streams sync {flag} api`")
    if abort_name is not None and watch:
        raise UsageError("--abort cannot be combined with --watch")
    seconds = _interval(interval, bounded=iterations is not None)
    if iterations is not None and not watch:
        raise UsageError("--iterations needs --watch")

    ws, config = open_workspace()
    if abort_name is not None:
        aborted = Aborted(syncing.abort_halt(ws, config, abort_name, on_wait=info))
        return Reply(aborted, lambda a: _abort_text(a, config))
    continued = None
    if continue_name is not None:
        continued = syncing.continue_halt(ws, config, continue_name, on_wait=info)
        if not wants_json():
            info(f"{continued.stream}: rebase finished at {short(continued.tip)} (its scope re-checked)")
    if not watch:
        report = syncing.sync_pass(ws, config, names, predict=wants_json(), on_wait=info)
        return Reply(Synced(continued, report), lambda synced: _report_text(synced.report), _judge(report))
    return _watch(names, seconds, iterations, continued)


def _watch(
    names: tuple[str, ...], seconds: float, iterations: int | None, continued: syncing.ContinueResult | None
) -> Reply[SyncPass] | None:
    """Repeat passes on the loop; each one re-discovers the repository and re-reads streams.yaml, keeps nothing.

    Each pass is streamed (with --json every pass; as text when something changed); a halt ends the
    command with the halting pass as its reply.
    """
    last: tuple[object, ...] | None = None
    last_warning: str | None = None
    halted: list[Reply[SyncPass]] = []
    loop = Loop(seconds, iterations=iterations)

    def one_pass(tick: Tick) -> None:
        nonlocal continued, last, last_warning
        try:
            ws, config = open_workspace()
            report = syncing.sync_pass(ws, config, names, predict=wants_json(), on_wait=info)
        except StreamsError as exc:  # a broken streams.yaml, a failed fetch, a busy lock: try again later
            if exc.message != last_warning:
                warn(f"{exc.message} (trying again in {seconds:g} s)")
            last_warning = exc.message
            return
        last_warning = None
        this = SyncPass(tick.n, continued, report)
        continued = None
        error = _judge(report)
        if report.halted and error is not None:
            halted.append(Reply(this, lambda p: _report_text(p.report), error))
            loop.stop()
            return
        if wants_json() or _signature(report) != last:
            base.stream(Reply(this, _pass_text, error))
        last = _signature(report)

    loop.run(one_pass)
    return halted[0] if halted else None
