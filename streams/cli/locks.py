"""lock, unlock, locks: leases on shared files."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import click

from streams.cli.base import cli, emit, info, json_option, table
from streams.cli.context import current_stream, cwd, open_workspace, which_stream
from streams.kernel import locks, paths
from streams.kernel.durations import format_duration, parse_duration
from streams.scope import require_shared
from streams.workspace import Workspace


def _paths(ws: Workspace, raws: tuple[str, ...]) -> list[str]:
    here = cwd()
    return [paths.repo_path(raw, cwd=here, roots=[str(ws.toplevel), str(ws.main_root)], strict=True) for raw in raws]


def _lease_data(lease: locks.Lease, now: float) -> dict[str, Any]:
    return dataclasses.asdict(lease.view(now))


_VERB = {"take": "locked", "renew": "renewed", "break": "locked", "steal": "stole"}


@cli.command("lock")
@click.argument("paths", nargs=-1, required=True)
@click.option("--ttl", default="30m", show_default=True, help="How long the lease lasts (90s, 30m, 2h, 1h30m).")
@click.option(
    "--wait", "wait_for", default=None, help="If another stream holds a path, retry for up to this long (e.g. 2m)."
)
@click.option("--reason", default="", help="Why you need the file (shown to others in `streams locks`).")
@click.option(
    "--until-commit", is_flag=True, help="Release the lease as soon as a commit of this stream changes the path."
)
@click.option("--force", is_flag=True, help="Steal a lease another stream holds (recorded in the event log).")
@click.option("--stream", "stream_name", default=None, help="Lock for this stream (default: the current worktree's).")
@json_option
def lock_cmd(
    paths: tuple[str, ...],
    ttl: str,
    wait_for: str | None,
    reason: str,
    until_commit: bool,
    force: bool,
    stream_name: str | None,
) -> None:
    """Take the lock (a lease) on shared files, so this stream may commit changes to them.

    Only files listed under `shared:` in streams.yaml take locks. Several paths are taken all or
    none. Locking a path the stream already holds renews the lease: same lease id, new expiry.
    An expired lease of another stream is taken over. A live one fails with exit 3, naming the
    holder and the expiry, unless --wait (retry until it frees) or --force (steal it).
    """
    ttl_s = parse_duration(ttl, option="--ttl")
    wait_s = parse_duration(wait_for, option="--wait", allow_zero=True) if wait_for is not None else 0.0
    ws, config = open_workspace(check_tracked=False)
    stream = which_stream(ws, config, stream_name)
    rel = _paths(ws, paths)
    require_shared(config, rel)
    taken = locks.acquire(
        ws.common_dir,
        stream,
        rel,
        ttl=ttl_s,
        reason=reason,
        until_commit=until_commit,
        force=force,
        wait=wait_s,
        on_wait=info,
    )
    now = time.time()

    def text() -> None:
        for t in taken:
            lease = t.lease
            line = (
                f"{_VERB[t.action]} {t.path} for {stream} until {locks.clock(lease.expires_at, now)} "
                f"({format_duration(lease.left(now))})"
            )
            if t.action == "steal" and t.previous is not None:
                line += f" from {t.previous.stream} (its lease would have run until {locks.clock(t.previous.expires_at, now)})"
            elif t.action == "break" and t.previous is not None:
                line += f"; took over the expired lease of {t.previous.stream or 'nobody (damaged file)'}"
            if lease.until_commit:
                line += "; released by your next commit of it"
            click.echo(line)

    emit(
        {
            "stream": stream,
            "leases": [{"action": t.action, **_lease_data(t.lease, now)} for t in taken],
            "previous": {t.path: _lease_data(t.previous, now) for t in taken if t.previous is not None},
        },
        text,
    )


@cli.command("unlock")
@click.argument("paths", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Remove the lease even if another stream holds it.")
@click.option("--stream", "stream_name", default=None, help="Unlock as this stream (default: the current worktree's).")
@json_option
def unlock_cmd(paths: tuple[str, ...], force: bool, stream_name: str | None) -> None:
    """Release the locks on shared files.

    Only the holding stream may unlock (from its worktree, or with --stream), unless --force.
    All paths are checked before any is released.
    """
    ws, config = open_workspace(check_tracked=False)
    stream = current_stream(ws, config, stream_name) if force else which_stream(ws, config, stream_name)
    rel = _paths(ws, paths)
    released = locks.release(ws.common_dir, rel, stream=stream, force=force)
    now = time.time()

    def text() -> None:
        for lease in released:
            whose = "" if lease.stream == stream else f" (held by {lease.stream})"
            click.echo(f"unlocked {lease.path}{whose}")

    emit({"stream": stream, "released": [_lease_data(lease, now) for lease in released]}, text)


@cli.command("locks")
@json_option
def locks_cmd() -> None:
    """List every lease on shared files: holder, reason and time left (expired ones say so)."""
    ws, _config = open_workspace(check_tracked=False)
    leases = locks.list_leases(ws.common_dir)
    now = time.time()

    def text() -> None:
        if not leases:
            click.echo("no locks held")
            return
        rows = []
        for lease in leases:
            if lease.live(now):
                left = format_duration(lease.left(now))
                until = locks.clock(lease.expires_at, now)
            else:
                left = f"expired {format_duration(-lease.left(now))} ago"
                until = locks.clock(lease.expires_at, now)
            reason = " ".join(filter(None, [lease.reason, "(until commit)" if lease.until_commit else ""]))
            rows.append([lease.path, lease.stream or "?", lease.holder, until, left, reason])
        click.echo(table(rows, ["PATH", "STREAM", "HOLDER", "UNTIL", "LEFT", "REASON"]))

    emit({"leases": [_lease_data(lease, now) for lease in leases]}, text)
