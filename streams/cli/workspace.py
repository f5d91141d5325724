"""init, start, stop, list."""

from __future__ import annotations

import click

from streams.cli.base import cli, emit, info, json_option, table
from streams.cli.context import open_workspace, short, shown, workspace
from streams.initfile import starter_config
from streams.kernel.errors import StreamsError
from streams.workspace import write_atomic
from streams.worktrees import start, stop, survey


@cli.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing streams.yaml.")
@json_option
def init_cmd(force: bool) -> None:
    """Write a commented starter streams.yaml at the repository root.

    The base branch is the current branch; each top-level source folder gets an example stream
    that owns it. Edit the file to say who owns what, then run `streams start`.
    """
    ws = workspace()
    path = ws.config_path
    if path.is_dir() or path.is_symlink():
        raise StreamsError(f"{path} is a directory or a symbolic link; move it away first", code="exists")
    if path.exists() and not force:
        raise StreamsError(f"{path} already exists; edit it, or pass --force to overwrite it", code="exists")
    text, streams = starter_config(ws.main_root)
    write_atomic(path, text.encode())
    emit(
        {"path": path, "streams": streams},
        lambda: click.echo(
            f"wrote {shown(path)} with {len(streams)} example stream{'s' if len(streams) != 1 else ''}"
            f"{': ' + ', '.join(streams) if streams else ''}; edit it, then run `streams start`"
        ),
    )


@cli.command("start")
@click.argument("names", nargs=-1)
@json_option
def start_cmd(names: tuple[str, ...]) -> None:
    """Start streams: a branch from the base and a worktree each (all streams when none named).

    Each stream gets branch <branch_prefix>NAME (an existing one is reused) and a worktree at
    <worktree_root>/NAME with its progress file committed. Re-running is safe.
    """
    ws, config = open_workspace(names=names)
    results = start(ws, config, list(names), on_wait=info)

    def text() -> None:
        if not results:
            click.echo("no streams configured; add some to streams.yaml")
            return
        rows = [[r.name, r.branch, shown(r.path), r.outcome] for r in results]
        click.echo(table(rows, ["STREAM", "BRANCH", "PATH", ""]))

    emit({"streams": results}, text)


@cli.command("stop")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--force", is_flag=True, help="Stop even with uncommitted changes (saved to a ref first) or unmerged commits."
)
@click.option("--delete-branch", is_flag=True, help="Also delete the stream's branch (its tip is printed).")
@json_option
def stop_cmd(names: tuple[str, ...], force: bool, delete_branch: bool) -> None:
    """Remove streams' worktrees, keeping their branches unless --delete-branch.

    Refuses when a worktree has uncommitted changes or the branch has commits that are not on the
    base, unless --force. The tip left behind is always printed, so no commit is silently lost.
    """
    ws, config = open_workspace(check_tracked=False, names=names)
    results = stop(ws, config, list(names), force=force, delete_branch=delete_branch, on_wait=info)

    def text() -> None:
        for r in results:
            if r.outcome == "not started":
                head = f"{r.name}: not started"
            else:
                head = f"{r.name}: worktree {shown(r.path) if r.path else ''} removed"
            if r.saved_ref:
                click.echo(
                    f"{r.name}: uncommitted work saved as {r.saved_ref} ({short(r.saved_commit)}); "
                    f"restore with `git checkout {short(r.saved_commit)} -- .` in a worktree of {r.branch}"
                )
            if r.tip is None:
                click.echo(f"{head}; no branch {r.branch}")
            elif r.branch_deleted:
                click.echo(
                    f"{head}; deleted branch {r.branch} (was {short(r.tip)}; "
                    f"`git branch {r.branch} {r.tip}` restores it)"
                )
            else:
                extra = (
                    f", {r.unmerged} commit{'s' if r.unmerged != 1 else ''} not on {config.base}" if r.unmerged else ""
                )
                click.echo(f"{head}; branch {r.branch} kept at {short(r.tip)}{extra}")

    emit({"streams": results}, text)


@cli.command("list")
@json_option
def list_cmd() -> None:
    """List configured streams, started or not, with branch and worktree path."""
    ws, config = open_workspace(check_tracked=False)
    states = survey(ws, config)

    def text() -> None:
        if not states:
            click.echo("no streams configured; add some to streams.yaml")
            return
        rows = [[s.name, s.branch, s.state, short(s.head), shown(s.path)] for s in states]
        click.echo(table(rows, ["STREAM", "BRANCH", "STATE", "HEAD", "PATH"]))

    emit({"base": config.base, "streams": states}, text)
