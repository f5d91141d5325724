"""progress and sync."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from coordinator import sync as syncing
from streams import git
from streams.cli.base import cli, current_run, emit, envelope, info, json_option, table, wants_json, warn
from streams.cli.context import open_workspace, short, shown, which_stream
from streams.config import Config, progress_path
from streams.kernel.errors import HaltedError, StreamsError, UsageError
from streams.progress import (
    Progress,
    ProgressError,
    Update,
    check_status,
    parse,
    parse_completion,
    read_progress,
    update_progress,
)
from streams.workspace import Workspace

# --- progress ------------------------------------------------------------------------------------


def _stream_worktree(ws: Workspace, config: Config, name: str) -> Path | None:
    if ws.current_stream() == name:
        return ws.toplevel
    return syncing.locate(ws, config, [name])[name].worktree


def _progress_text(p: Progress, commit: str | None, where: str) -> None:
    agent = f", agent {p.agent}" if p.agent else ""
    click.echo(f"{p.stream}: {p.status}, {p.completion}%{agent} (updated {p.updated or '-'}){where}")
    if commit:
        click.echo(f"committed {short(commit)}")
    click.echo(f"  done:    {'; '.join(p.completed) or '-'}")
    click.echo(f"  current: {p.current or '-'}")
    click.echo(f"  blocked: {'; '.join(p.blocked) or '-'}")
    click.echo(f"  next:    {'; '.join(p.next) or '-'}")


@cli.command("progress")
@click.option("--stream", "stream_name", metavar="NAME", help="The stream (default: the worktree you are in).")
@click.option("--status", metavar="S", help="pending, in_progress, blocked, completed, failed or paused.")
@click.option("--completion", metavar="N", help="Percent done, a whole number from 0 to 100.")
@click.option(
    "--done", multiple=True, metavar="TEXT", help="A finished task (repeatable); it leaves current/next/blocked."
)
@click.option("--current", metavar="TEXT", help='The task being worked on ("" clears it).')
@click.option("--blocked", multiple=True, metavar="TEXT", help="Something blocking the stream (repeatable).")
@click.option("--next", "next_", multiple=True, metavar="TEXT", help="A next step (repeatable).")
@click.option("--clear-blocked", is_flag=True, help="Empty Blocked Items before adding --blocked ones.")
@click.option("--clear-next", is_flag=True, help="Empty Next Steps before adding --next ones.")
@click.option("--agent", metavar="NAME", help="Who works on the stream.")
@click.option("--message", "-m", metavar="TEXT", help="The commit message's subject line.")
@json_option
def progress_cmd(
    stream_name: str | None,
    status: str | None,
    completion: str | None,
    done: tuple[str, ...],
    current: str | None,
    blocked: tuple[str, ...],
    next_: tuple[str, ...],
    clear_blocked: bool,
    clear_next: bool,
    agent: str | None,
    message: str | None,
) -> None:
    """Show or update a stream's progress file, committing only that file.

    With no option, prints the stream's progress. Otherwise rewrites .streams/stream-NAME.md
    atomically and commits it alone on the stream's branch: whatever you have staged stays
    staged and out of the commit, and unstaged edits are untouched.
    """
    update = Update(
        status=check_status(status) if status is not None else None,
        completion=parse_completion(completion) if completion is not None else None,
        done=done,
        current=current,
        blocked=blocked,
        next=next_,
        agent=agent,
        clear_blocked=clear_blocked,
        clear_next=clear_next,
    )
    ws, config = open_workspace(check_tracked=False)
    name = which_stream(ws, config, stream_name)
    config.stream(name)  # also the current worktree's: progress files belong to configured streams
    worktree = _stream_worktree(ws, config, name)

    if update.is_empty() and message is None:
        p, where = _current_progress(ws, config, name, worktree)
        emit(
            {"stream": name, "path": where, "progress": p, "commit": None, "changed": False},
            lambda: _progress_text(p, None, f" [{shown(Path(where)) if worktree else where}]"),
        )
        return
    if worktree is None:
        raise StreamsError(
            f"stream {name!r} has no worktree; `streams start {name}` makes one, then update its progress there",
            code="no_worktree",
        )
    result = update_progress(ws.state_dir, worktree, name, config.branch(name), update, message=message)
    emit(
        {
            "stream": name,
            "path": result.path,
            "branch": result.branch,
            "progress": result.progress,
            "commit": result.commit,
            "changed": result.commit is not None,
        },
        lambda: _progress_text(result.progress, result.commit, "" if result.commit else " (unchanged)"),
    )


def _current_progress(ws: Workspace, config: Config, name: str, worktree: Path | None) -> tuple[Progress, str]:
    if worktree is not None:
        p = read_progress(worktree, name)
        path = worktree / progress_path(name)
        if p is None:
            raise ProgressError(
                f"{path} does not exist; `streams progress --status in_progress` (or any option) writes it"
            )
        return p, str(path)
    ref = f"refs/heads/{config.branch(name)}"
    res = git.run("cat-file", "blob", f"{ref}:{progress_path(name)}", cwd=ws.main_root, check=False)
    if res.returncode != 0:
        raise StreamsError(f"stream {name!r} is not started and has no progress file (`streams start {name}`)")
    display = f"{config.branch(name)}:{progress_path(name)}"
    return parse(res.stdout.decode("utf-8", "replace"), display=display), display


# --- sync ----------------------------------------------------------------------------------------


def _interval(text: str) -> float:
    from streams.kernel.durations import parse_interval

    try:
        return parse_interval(text)
    except StreamsError as exc:
        raise UsageError(exc.message) from None


def _arrow(r: syncing.StreamResult) -> str:
    if r.outcome == syncing.REBASED:
        return f"{short(r.old_tip)} -> {short(r.new_tip)}"
    return short(r.new_tip or r.old_tip) if (r.new_tip or r.old_tip) else "-"


def _report_text(report: syncing.SyncReport) -> None:
    for note in report.reconciled:
        info(note.detail)
    fetched = " (fetched)" if report.fetched else ""
    click.echo(f"upstream {report.upstream} at {short(report.upstream_tip)}{fetched}")
    rows = []
    for r in report.streams:
        detail = r.detail if r.outcome not in (syncing.HALTED,) else f"conflict in {', '.join(r.files) or '-'}"
        if r.outcome == syncing.HALTED and not r.files:
            detail = "rebase in progress"
        if r.push:
            detail = f"{detail}; {r.push_detail}" if detail else r.push_detail
        if r.outcome == syncing.REBASED and r.push is None:
            detail = ""
        rows.append([r.name, r.outcome, _arrow(r), detail])
    if rows:
        click.echo(table(rows, ["STREAM", "OUTCOME", "TIP", "DETAIL"]))
    if report.predicted:
        for name, files in report.predicted.items():
            if files:
                click.echo(f"predicted conflict: {name} in {', '.join(files)}")


def _halt_message(report: syncing.SyncReport) -> str:
    h = report.new_halt
    if h is not None:
        what = f"conflicts in {', '.join(h.files)}" if h.files else "stopped"
        return (
            f"sync halted: rebasing {h.stream} onto {h.upstream or report.upstream} ({short(h.onto)}) {what}. "
            f"The rebase is left in progress in {h.worktree}. Next: resolve the files there and `git add` them, "
            f"then `git rebase --continue` there or `streams sync --continue {h.stream}`; "
            f"or give up with `streams sync --abort {h.stream}` (back to {short(h.original_tip)})"
        )
    parts = [f"{h.stream} ({syncing._halt_next(h)})" for h in report.halts]
    return (
        f"sync halted: {len(report.halts)} {'streams wait' if len(report.halts) != 1 else 'stream waits'} for a human: "
        + "; ".join(parts)
    )


def _fail_with(data: Any, error: StreamsError) -> NoReturn:
    """Exit with ``error`` while still giving ``--json`` readers the report."""
    if wants_json():
        click.echo(envelope(current_run().command, False, data, error))
    click.echo(f"streams: error: {error.message}", err=True)
    raise click.exceptions.Exit(error.exit_code)


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
) -> None:
    """Rebase streams onto the base branch (fetching first when `remote` is set) and push them.

    Per stream, in dependency order: nothing when it already contains the upstream; skipped
    when its worktree has uncommitted changes; else `git rebase` in its worktree. A conflict
    leaves the rebase in progress, records the halt and exits 4 with the next steps. With
    `remote` set, moved stream branches are pushed with --force-with-lease, never forced over
    commits someone else pushed. --json also shows predicted conflicts (git merge-tree).
    """
    if continue_name and abort_name:
        raise UsageError("--continue and --abort cannot be used together")
    if abort_name and watch:
        raise UsageError("--abort cannot be combined with --watch")
    seconds = _interval(interval)
    if iterations is not None and not watch:
        raise UsageError("--iterations needs --watch")

    ws, config = open_workspace()
    if abort_name:
        result = syncing.abort_halt(ws, config, abort_name, on_wait=info)
        emit(
            {"aborted": result},
            lambda: click.echo(
                f"{result.stream}: rebase aborted; {config.branch(result.stream)} is back at {short(result.original_tip)}"
                + (f" (moved from {short(result.replaced_tip)}, kept in the reflog)" if result.replaced_tip else "")
                + (
                    f"; removed {len(result.removed)} untracked cop{'ies' if len(result.removed) != 1 else 'y'} of "
                    f"committed files the interrupted rebase left: {', '.join(result.removed)}"
                    if result.removed
                    else ""
                )
            ),
        )
        return
    continued = None
    if continue_name:
        continued = syncing.continue_halt(ws, config, continue_name, on_wait=info)
        if not wants_json():
            scope = "" if continued.scope_checked else " (scope not re-checked: streams.scope is not available)"
            info(f"{continued.stream}: rebase finished at {short(continued.tip)}{scope}")
    if not watch:
        report = syncing.sync_pass(ws, config, names, predict=wants_json(), on_wait=info)
        data = {"continued": continued, "report": report}
        error = _judge(report)
        if error is not None:
            if not wants_json():
                _report_text(report)
            _fail_with(data, error)
        emit(data, lambda: _report_text(report))
        return
    _watch(names, seconds, iterations, continued)


def _watch(names: tuple[str, ...], seconds: float, iterations: int | None, continued: object) -> None:
    """Repeat passes; each one re-discovers the repository and re-reads streams.yaml, keeps nothing."""
    last: tuple[object, ...] | None = None
    last_warning: str | None = None
    n = 0
    while True:
        n += 1
        try:
            ws, config = open_workspace()
            report = syncing.sync_pass(ws, config, names, predict=wants_json(), on_wait=info)
        except StreamsError as exc:  # a broken streams.yaml, a failed fetch, a busy lock: try again later
            if exc.message != last_warning:
                warn(f"{exc.message} (trying again in {seconds:g} s)")
            last_warning = exc.message
        else:
            last_warning = None
            data = {"iteration": n, "continued": continued, "report": report}
            continued = None
            error = _judge(report)
            if report.halted and error is not None:
                if not wants_json():
                    _report_text(report)
                _fail_with(data, error)
            if wants_json():
                click.echo(envelope(current_run().command, error is None, data, error))
            elif _signature(report) != last:
                click.echo(f"-- {dt.datetime.now().strftime('%H:%M:%S')} pass {n}")
                _report_text(report)
                if error is not None:
                    warn(error.message)
            last = _signature(report)
        if iterations is not None and n >= iterations:
            return
        time.sleep(seconds)
