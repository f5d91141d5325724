"""lock, unlock, locks: leases on shared files.

A lease has one JSON shape everywhere: ``streams.kernel.locks.LeaseView``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import click

from streams.cli.base import Reply, cli, info, json_option, warn
from streams.cli.context import current_stream, cwd, open_workspace, which_stream
from streams.cli.lockview import Leases, leases_text
from streams.kernel import locks, paths
from streams.kernel.durations import format_duration, parse_duration
from streams.kernel.errors import printable
from streams.scope import require_shared
from streams.workspace import Workspace


def _paths(ws: Workspace, raws: tuple[str, ...]) -> list[str]:
    here = cwd()
    return [paths.repo_path(raw, cwd=here, roots=[str(ws.toplevel), str(ws.main_root)], strict=True) for raw in raws]


@dataclass(frozen=True)
class TakenLease(locks.LeaseView):
    """A lease ``lock`` holds now: the lease shape (``LeaseView``), and how it got it (``action``)."""

    action: locks.LockAction


@dataclass(frozen=True)
class Locked:
    """``streams lock --json``.

    ===============  =================  ===========================================================
    field            type               meaning
    ===============  =================  ===========================================================
    stream           str                the stream the leases are for
    leases           [LeaseView]        one per path: the lease it holds now, plus ``action``
    leases[].action  str                take | renew | break | steal (``LockAction``)
    previous         {path: LeaseView}  what a renew, break or steal replaced, by path
    until_rebase     bool               taken during a rebase in this worktree: released when it ends
    ===============  =================  ===========================================================
    """

    stream: str
    leases: list[TakenLease]
    previous: dict[str, locks.LeaseView]
    until_rebase: bool = False


@dataclass(frozen=True)
class Unlocked:
    """``streams unlock --json``.

    ========  ===========  ========================================================================
    field     type         meaning
    ========  ===========  ========================================================================
    stream    str | null   the stream unlocking (null: --force outside a stream's worktree)
    released  [LeaseView]  the leases removed, as they were
    ========  ===========  ========================================================================
    """

    stream: str | None
    released: list[locks.LeaseView]


_VERB = {
    locks.LockAction.TAKE: "locked",
    locks.LockAction.RENEW: "renewed",
    locks.LockAction.BREAK: "locked",
    locks.LockAction.STEAL: "stole",
}


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
) -> Reply[Locked]:
    """Take the lock (a lease) on shared files, so this stream may commit changes to them.

    Only files listed under `shared:` in streams.yaml take locks. Several paths are taken all or
    none. Locking a path the stream already holds renews the lease: same lease id, new expiry.
    An expired lease of another stream is taken over. A live one fails with exit 3, naming the
    holder and the expiry, unless --wait (retry until it frees) or --force (steal it).
    """
    ttl_s = parse_duration(ttl, option="--ttl", minimum=1.0)
    wait_s = parse_duration(wait_for, option="--wait", allow_zero=True) if wait_for is not None else 0.0
    ws, config = open_workspace()
    stream = which_stream(ws, config, stream_name)
    rel = _paths(ws, paths)
    require_shared(config, rel)
    for path in rel:
        if not (ws.toplevel / path).exists() and not (ws.main_root / path).exists():
            warn(f"{path} does not exist (yet); locking it anyway, so that this stream may create it")
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
    during_rebase = stream == ws.current_stream() and locks.remember_for_rebase(ws.git_dir, taken)
    now = time.time()
    return Reply(
        Locked(
            stream,
            [TakenLease(**dataclasses.asdict(t.lease.view(now)), action=t.action) for t in taken],
            {t.path: t.previous.view(now) for t in taken if t.previous is not None},
            during_rebase,
        ),
        _lock_text,
    )


def _lock_text(done: Locked) -> str:
    now = time.time()
    lines = []
    for lease in done.leases:
        line = (
            f"{_VERB[lease.action]} {printable(lease.path)} for {done.stream} until {locks.clock(lease.expires_at, now)} "
            f"({format_duration(lease.seconds_left)})"
        )
        previous = done.previous.get(lease.path)
        if lease.action == locks.LockAction.STEAL and previous is not None:
            line += f" from {previous.stream} (its lease would have run until {locks.clock(previous.expires_at, now)})"
        elif lease.action == locks.LockAction.BREAK and previous is not None:
            line += f"; took over the expired lease of {previous.stream or 'nobody (damaged file)'}"
        if lease.until_commit:
            line += "; released by your next commit of it"
        if done.until_rebase:
            line += "; released when the rebase here finishes"
        lines.append(line)
    return "\n".join(lines)


@cli.command("unlock")
@click.argument("paths", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Remove the lease even if another stream holds it.")
@click.option("--stream", "stream_name", default=None, help="Unlock as this stream (default: the current worktree's).")
@json_option
def unlock_cmd(paths: tuple[str, ...], force: bool, stream_name: str | None) -> Reply[Unlocked]:
    """Release the locks on shared files.

    Only the holding stream may unlock (from its worktree, or with --stream), unless --force.
    All paths are checked before any is released.
    """
    ws, config = open_workspace(check_tracked=False)
    stream = current_stream(ws, config, stream_name) if force else which_stream(ws, config, stream_name)
    rel = _paths(ws, paths)
    released = locks.release(ws.common_dir, rel, stream=stream, force=force)
    now = time.time()
    return Reply(Unlocked(stream, [lease.view(now) for lease in released]), _unlock_text)


def _unlock_text(done: Unlocked) -> str:
    return "\n".join(
        f"unlocked {printable(lease.path)}{'' if lease.stream == done.stream else f' (held by {lease.stream})'}"
        for lease in done.released
    )


@cli.command("locks")
@json_option
def locks_cmd() -> Reply[Leases]:
    """List every lease on shared files: holder, reason and time left (expired ones say so)."""
    ws, _config = open_workspace(check_tracked=False)
    now = time.time()
    return Reply(Leases([lease.view(now) for lease in locks.list_leases(ws.common_dir)]), leases_text)
