"""init, start, stop, list.

Each command's ``--json`` ``data`` is documented beside its result type (``tests/test_json_docs.py``
keeps the tables true).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from streams.cli.base import Reply, cli, info, json_option, table
from streams.cli.context import open_workspace, short, shown, workspace
from streams.initfile import check_starter, starter_config
from streams.kernel.errors import StreamsError
from streams.workspace import write_atomic
from streams.worktrees import StartResult, StopOutcome, StopResult, StreamState, compared_base, start, stop, survey


@dataclass(frozen=True)
class Initialised:
    """``streams init --json``.

    =======  ======  ==============================================================================
    field    type    meaning
    =======  ======  ==============================================================================
    path     str     the streams.yaml written
    streams  [str]   the example streams in it
    =======  ======  ==============================================================================
    """

    path: Path
    streams: list[str]


@dataclass(frozen=True)
class Started:
    """``streams start --json``.

    =======  =============  =======================================================================
    field    type           meaning
    =======  =============  =======================================================================
    streams  [StartResult]  one per stream named (all when none were)
    =======  =============  =======================================================================
    """

    streams: list[StartResult]


@dataclass(frozen=True)
class Stopped:
    """``streams stop --json``.

    =======  ============  ========================================================================
    field    type          meaning
    =======  ============  ========================================================================
    streams  [StopResult]  one per stream named
    =======  ============  ========================================================================
    """

    streams: list[StopResult]


@dataclass(frozen=True)
class Listing:
    """``streams list --json``.

    =======  =============  =======================================================================
    field    type           meaning
    =======  =============  =======================================================================
    base     str            the base branch
    streams  [StreamState]  every configured stream, then stream worktrees no longer configured
    =======  =============  =======================================================================
    """

    base: str
    streams: list[StreamState]


@cli.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing streams.yaml.")
@json_option
def init_cmd(force: bool) -> Reply[Initialised]:
    """Write a commented starter streams.yaml at the repository root.

    The base branch is the current branch; each top-level source folder gets an example stream
    that owns it. Edit the file to say who owns what, commit it on the base branch (only the
    committed file is in force), then run `streams start`.
    """
    ws = workspace()
    path = ws.config_path
    if path.is_dir() or path.is_symlink():
        raise StreamsError(f"{path} is a directory or a symbolic link; move it away first", code="exists")
    if path.exists() and not force:
        raise StreamsError(f"{path} already exists; edit it, or pass --force to overwrite it", code="exists")
    text, streams = starter_config(ws.main_root)
    check_starter(ws.main_root, text)  # never write a config that `streams start` would refuse
    write_atomic(path, text.encode())
    return Reply(Initialised(path, streams), _init_text)


def _init_text(done: Initialised) -> str:
    n = len(done.streams)
    return (
        f"wrote {shown(done.path)} with {n} example stream{'s' if n != 1 else ''}"
        f"{': ' + ', '.join(done.streams) if done.streams else ''}; edit it, commit it, then run `streams start`"
    )


@cli.command("start")
@click.argument("names", nargs=-1)
@json_option
def start_cmd(names: tuple[str, ...]) -> Reply[Started]:
    """Start streams: a branch from the base and a worktree each (all streams when none named).

    Each stream gets branch <branch_prefix>NAME (an existing one is reused) and a worktree at
    <worktree_root>/NAME with its progress file committed. Re-running is safe.
    """
    from streams import hooks_install

    hooks_install.require_hooks_run(workspace())  # refused before anything is read, cached or made
    ws, config = open_workspace(names=names)
    return Reply(Started(start(ws, config, list(names), on_wait=info)), _start_text)


def _start_text(started: Started) -> str:
    if not started.streams:
        return "no streams configured; add some to streams.yaml"
    rows = [[r.name, r.branch, shown(r.path), r.outcome] for r in started.streams]
    return table(rows, ["STREAM", "BRANCH", "PATH", ""])


@cli.command("stop")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--force", is_flag=True, help="Stop even with uncommitted changes (saved to a ref first) or unmerged commits."
)
@click.option("--delete-branch", is_flag=True, help="Also delete the stream's branch (its tip is printed).")
@json_option
def stop_cmd(names: tuple[str, ...], force: bool, delete_branch: bool) -> Reply[Stopped]:
    """Remove streams' worktrees, keeping their branches unless --delete-branch.

    Refuses when a worktree has uncommitted changes or the branch has commits that are not on the
    base, unless --force. The tip left behind is always printed, so no commit is silently lost.
    """
    ws, config = open_workspace(check_tracked=False)  # stop checks the names: a removed stream can still be stopped
    results = stop(ws, config, list(names), force=force, delete_branch=delete_branch, on_wait=info)
    base = compared_base(ws, config)[1]  # what the commits not on the base are counted against
    return Reply(Stopped(results), lambda stopped: _stop_text(stopped, base))


def _stop_text(stopped: Stopped, base: str) -> str:
    lines = []
    for r in stopped.streams:
        if r.outcome == StopOutcome.NOT_STARTED:
            head = f"{r.name}: not started"
        else:
            head = f"{r.name}: worktree {shown(r.path) if r.path else ''} removed"
        if r.saved_ref:
            lines.append(
                f"{r.name}: uncommitted work saved as {r.saved_ref} ({short(r.saved_commit)}); "
                f"restore with `git checkout {short(r.saved_commit)} -- .` in a worktree of {r.branch}"
            )
        if r.kept_in:
            lines.append(f"{r.name}: ignored files kept in {shown(Path(r.kept_in))}: {', '.join(r.kept_ignored)}")
        if r.ignored_dirs:
            lines.append(f"{r.name}: ignored directories removed with the worktree: {', '.join(r.ignored_dirs)}")
        if r.leftovers_in:
            lines.append(
                f"{r.name}: the worktree was half removed (its .git gone: a killed `git worktree remove`); "
                f"what was left of it is kept in {shown(Path(r.leftovers_in))}"
            )
        if r.tip is None:
            lines.append(f"{head}; no branch {r.branch}")
        elif r.branch_deleted:
            lines.append(
                f"{head}; deleted branch {r.branch} (was {short(r.tip)}; `git branch {r.branch} {r.tip}` restores it)"
            )
        else:
            extra = f", {r.unmerged} commit{'s' if r.unmerged != 1 else ''} not on {base}" if r.unmerged else ""
            lines.append(f"{head}; branch {r.branch} kept at {short(r.tip)}{extra}")
    return "\n".join(lines)


@cli.command("list")
@json_option
def list_cmd() -> Reply[Listing]:
    """List configured streams, started or not, with branch and worktree path."""
    ws, config = open_workspace()
    return Reply(Listing(config.base, survey(ws, config)), _list_text)


def _list_text(listing: Listing) -> str:
    if not listing.streams:
        return "no streams configured; add some to streams.yaml"
    rows = [[s.name, s.branch, s.state, short(s.head), shown(s.path)] for s in listing.streams]
    return table(rows, ["STREAM", "BRANCH", "STATE", "HEAD", "PATH"])
