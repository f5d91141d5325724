"""merge: the merge queue, landing finished streams on the base (``coordinator.merge``)."""

from __future__ import annotations

import click

from coordinator import merge as merging
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
@click.option("--dry-run", is_flag=True, help="Build and check each candidate; land nothing.")
@click.option("--keep", is_flag=True, help="Keep each landed stream's worktree and branch.")
@click.option("--push", is_flag=True, help="Push each landing to `remote` (with a lease) and confirm it there.")
@click.option("--undo", is_flag=True, help="Move the base back before the last landing, if nothing came after it.")
@json_option
def merge_cmd(
    names: tuple[str, ...], strategy: str, check: str | None, dry_run: bool, keep: bool, push: bool, undo: bool
) -> Reply[merging.MergeReport] | Reply[merging.Undone]:
    """Land finished streams on the base branch, verified, in dependency order.

    Each stream (default: every stream with work not on the base; dependencies first, then the
    oldest work) must have a clean worktree and pass `streams verify`. Its candidate is built on
    the base's current tip without touching your checkout, its progress file left out, and --check
    runs on it in the integration worktree. The base then moves by compare-and-swap; a worktree
    that has the base checked out is brought along, and if your uncommitted edits are in the way
    the base moves back and the files are named. A stream that conflicts or fails is ejected (exit
    4) and its dependents skipped; the others land. A landed stream's tip is kept under
    refs/streams/landed/, its leases released, its worktree and branch removed (unless --keep).
    """
    if undo:
        if names or dry_run or keep or check or push:
            raise UsageError("--undo takes no stream names or other options")
        ws, config = open_workspace()
        done = merging.undo(ws, config, on_wait=info)
        return Reply(done, _undo_text)
    ws, config = open_workspace(names=names)
    report = merging.merge(
        ws, config, names, strategy=strategy, check=check, dry_run=dry_run, keep=keep, push=push, on_wait=info
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
