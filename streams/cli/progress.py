"""progress: show or update a stream's progress file.

``--json``: ``ProgressShown`` without options, the core's ``ProgressCommit`` with them.

An update of the stream whose worktree the command runs in goes through ``streams.cli.quick`` (no
streams.yaml loaded when the hooks' compiled copy answers for it; ``main`` sends plainly valid
command lines there even before click is loaded). Anything else (another stream's worktree, a stale
cache, showing the file) takes the full path through ``open_workspace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli.base import Reply, cli, current_run, json_option
from streams.cli.quick import progress_text, update_here, updated_text
from streams.progress import (
    Progress,
    ProgressCommit,
    ProgressError,
    Update,
    check_status,
    parse,
    parse_completion,
    read_progress,
    update_progress,
)

if TYPE_CHECKING:
    from streams.config import Config
    from streams.workspace import Workspace


@dataclass(frozen=True)
class ProgressShown:
    """``streams progress --json`` without options.

    ========  ========  ===========================================================================
    field     type      meaning
    ========  ========  ===========================================================================
    stream    str       the stream
    path      str       the file in its worktree, or BRANCH:PATH when it has no worktree
    progress  Progress  the file's contents
    commit    null      (an update's commit; always null here)
    changed   bool      (whether an update committed; always false here)
    ========  ========  ===========================================================================
    """

    stream: str
    path: str
    progress: Progress
    commit: str | None = None
    changed: bool = False


def _stream_worktree(ws: Workspace, config: Config, name: str) -> Path | None:
    if ws.current_stream() == name:
        return ws.toplevel
    from streams import places

    return places.locate(ws, config, [name])[name].worktree


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
) -> Reply[ProgressShown] | Reply[ProgressCommit]:
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
    if not (update.is_empty() and message is None):
        quick = update_here(current_run().cwd, stream_name, update, message)
        if quick is not None:
            return Reply(quick, updated_text)
    from streams.cli.context import open_workspace, which_stream

    ws, config = open_workspace()
    name = which_stream(ws, config, stream_name)
    config.stream(name)  # also the current worktree's: progress files belong to configured streams
    worktree = _stream_worktree(ws, config, name)

    if update.is_empty() and message is None:
        from streams.cli.context import shown

        p, where = _current_progress(ws, config, name, worktree)
        label = f" [{shown(Path(where)) if worktree else where}]"
        return Reply(ProgressShown(name, where, p), lambda shown_: progress_text(shown_.progress, None, label))
    from streams.kernel.errors import StreamsError

    here = ws.current_stream()
    if here is not None and here != name:
        raise StreamsError(
            f"this is stream {here}'s worktree: it writes only its own progress, not {name}'s "
            f"(run `streams progress` in {name}'s worktree, or from the main worktree)",
            code="not_your_stream",
        )
    if worktree is None:
        raise StreamsError(
            f"stream {name!r} has no worktree; `streams start {name}` makes one, then update its progress there",
            code="no_worktree",
        )
    result = update_progress(ws.state_dir, worktree, name, config.branch(name), update, message=message)
    return Reply(result, updated_text)


def _current_progress(ws: Workspace, config: Config, name: str, worktree: Path | None) -> tuple[Progress, str]:
    from streams import git
    from streams.config import progress_path
    from streams.kernel.errors import StreamsError

    if worktree is not None:
        p = read_progress(worktree, name)
        path = worktree / progress_path(name)
        if p is None:
            raise ProgressError(
                f"{path} does not exist; `streams progress --status in_progress` (or any option) writes it"
            )
        return p, str(path)
    blob = git.read_blob(ws.main_root, config.branch_ref(name), progress_path(name))
    if blob is None:
        raise StreamsError(f"stream {name!r} is not started and has no progress file (`streams start {name}`)")
    display = f"{config.branch(name)}:{progress_path(name)}"
    return parse(blob.decode("utf-8", "replace"), display=display), display
