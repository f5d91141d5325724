"""merge: the merge queue, landing finished streams on the base (``coordinator.merge``)."""

from __future__ import annotations

import click

from coordinator import merge as merging
from coordinator import resolve as resolving
from streams import runstate
from streams.cli.base import Reply, cli, info, json_option, table
from streams.cli.context import open_workspace, short
from streams.kernel.errors import StreamsError, UsageError


@cli.command("merge")
@click.argument("names", nargs=-1)
@click.option(
    "--strategy",
    default="squash",
    show_default=True,
    type=click.Choice(["squash", "rebase", "merge"]),
    help="How a stream lands: squash = one commit listing the stream and its work commits; rebase = its "
    "work commits one by one; merge = those under a merge commit. Progress-only commits never land.",
)
@click.option(
    "--check",
    "check",
    metavar="CMD",
    help="A shell command that must pass on each candidate (run in the integration worktree).",
)
@click.option(
    "--wave",
    type=int,
    metavar="N",
    help="Land the verified streams of wave N of the latest `streams run` (instead of naming them).",
)
@click.option("--dry-run", is_flag=True, help="Build and check each candidate; land nothing.")
@click.option("--keep", is_flag=True, help="Keep each landed stream's worktree and branch.")
@click.option(
    "--shared-only",
    is_flag=True,
    help="Land only the named streams' commits that change nothing but shared files, now (the streams go on).",
)
@click.option("--push", is_flag=True, help="Push each landing to `remote` (with a lease) and confirm it there.")
@click.option(
    "--continue", "continue_", is_flag=True, help="Land the conflict you resolved in the integration worktree."
)
@click.option("--abort", is_flag=True, help="Drop the conflict waiting in the integration worktree.")
@click.option("--undo", is_flag=True, help="Move the base back before the last landing, if nothing came after it.")
@json_option
def merge_cmd(
    names: tuple[str, ...],
    strategy: str,
    check: str | None,
    wave: int | None,
    dry_run: bool,
    keep: bool,
    shared_only: bool,
    push: bool,
    continue_: bool,
    abort: bool,
    undo: bool,
) -> Reply[merging.MergeReport] | Reply[merging.Undone] | Reply[resolving.Dropped]:
    """Land finished streams on the base branch, verified, in dependency order.

    Each stream (default: every stream with work not on the base; dependencies first, then the
    oldest work) must have a clean worktree and pass `streams verify`. Its candidate is built on
    the base's current tip without touching your checkout, its progress file left out, and --check
    runs on it in the integration worktree. The base then moves by compare-and-swap; a worktree
    that has the base checked out is brought along, and if your uncommitted edits are in the way
    the base moves back and the files are named. A stream that conflicts or fails is ejected (exit
    4) and its dependents skipped; the others land. The first conflict is left in the integration
    worktree: resolve it there, `git add`, then `--continue` (it lands squashed), or `--abort`. A landed stream's tip is kept under
    refs/streams/landed/, its leases released, its worktree and branch removed (unless --keep).
    """
    if sum((continue_, abort, undo)) > 1:
        raise UsageError("--continue, --abort and --undo go one at a time")
    if (continue_ or abort or undo) and (names or wave is not None or dry_run or strategy != "squash" or shared_only):
        raise UsageError("--continue, --abort and --undo take no stream names, --dry-run or --strategy")
    if (abort or undo) and (keep or check or push):
        raise UsageError("--abort and --undo take no other options")
    if undo:
        ws, config = open_workspace()
        return Reply(merging.undo(ws, config, on_wait=info), _undo_text)
    if abort:
        ws, config = open_workspace()
        return Reply(resolving.merge_abort(ws, config, on_wait=info), _abort_text)
    if continue_:
        ws, config = open_workspace()
        report = resolving.merge_continue(ws, config, check=check, keep=keep, push=push, on_wait=info)
        return Reply(report, _report_text, _judge(report))
    if wave is not None:
        if names:
            raise UsageError("--wave N lands that wave's verified streams: name streams or give --wave, not both")
        ws, config = open_workspace()
        run_id, of_wave = runstate.verified_of_wave(ws, wave)
        names = tuple(of_wave)
        if not names:
            raise StreamsError(f"wave {wave} of run {run_id} has no verified stream waiting to land", code="error")
    else:
        ws, config = open_workspace(names=names)
    report = merging.merge(
        ws,
        config,
        names,
        strategy=strategy,
        check=check,
        dry_run=dry_run,
        keep=keep,
        push=push,
        shared_only=shared_only,
        on_wait=info,
    )
    return Reply(report, _report_text, _judge(report))


def _judge(report: merging.MergeReport) -> StreamsError | None:
    bad = [r for r in report.results if r.outcome in (merging.Outcome.EJECTED, merging.Outcome.ROLLED_BACK)]
    if not bad:
        return None
    return StreamsError(
        f"merge: {len(bad)} stream{'s' if len(bad) != 1 else ''} did not land: "
        + "; ".join(f"{r.stream}: {r.outcome}" for r in bad),
        code="merge_stopped",
    )


def _report_text(report: merging.MergeReport) -> str:
    lines = [f"finished a landing a killed merge left: {name}" for name in report.finished]
    if not report.results:
        return "\n".join([*lines, "nothing to merge"])
    rows = []
    for r in report.results:
        detail = r.reason
        if r.files:
            shown = ", ".join(r.files[:8]) + (f" and {len(r.files) - 8} more" if len(r.files) > 8 else "")
            detail = f"{detail}: {shown}" if detail else shown
        if r.outcome == merging.Outcome.LANDED:
            detail = f"{len(r.commits)} commit{'s' if len(r.commits) != 1 else ''}" + (
                f"; tip kept as {r.landed_ref}" if r.landed_ref else ""
            )
        rows.append((r.stream, str(r.outcome), short(r.merged) if r.merged else "-", detail))
    return "\n".join([*lines, table(rows, ("STREAM", "OUTCOME", "COMMIT", "DETAIL"))])


def _undo_text(done: merging.Undone) -> str:
    text = f"undid the landing of {done.stream}: the base is back at {short(done.base_before)} ({short(done.merged)} is off it)"
    if done.branch:
        text += f"; branch {done.branch} restored from its landed ref"
    return text


def _abort_text(done: resolving.Dropped) -> str:
    return (
        f"dropped the resolution of {done.stream}'s conflict; {done.worktree} is back at the base, its branch untouched"
    )
