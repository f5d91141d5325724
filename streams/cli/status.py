"""``streams status``: the dashboard — a table once, a live view (``--watch``), or JSON.

The data comes from ``streams.status`` (one frozen ``StreamStatus`` per stream) and, with
``--watch``, over time from ``coordinator.dashboard`` (file events, timer, config reload); this
module only renders it: plain aligned text off a terminal, rich on a terminal, the JSON envelope
with ``--json``. The live view repaints in the terminal's alternate screen so nothing scrolls or
flickers, and after a resize.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streams.cli.base import Reply, cli, current_run, envelope, json_option, table, wants_json
from streams.cli.context import open_workspace
from streams.dashboard import RunView
from streams.kernel.errors import UsageError
from streams.status import (
    BRANCH_ONLY,
    MISSING,
    NOT_STARTED,
    STARTED,
    UNCONFIGURED,
    Collector,
    Snapshot,
    StreamStatus,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from coordinator.dashboard import Dashboard
    from coordinator.loop import Tick

BAR_WIDTH = 10
MIN_INTERVAL_SECONDS = 0.1


# --- the command ----------------------------------------------------------------------------------------


def parse_interval(text: str) -> float:
    """``2s``, ``500ms``, ``1m`` — or a bare number of seconds (``--interval 1``, like watch -n)."""
    from streams.kernel.durations import DurationError
    from streams.kernel.durations import parse_interval as parse

    try:
        return parse(text, minimum=MIN_INTERVAL_SECONDS)
    except DurationError as exc:
        raise UsageError(f"{exc.message} (see `streams status --help`)") from None


@cli.command("status")
@click.argument("names", nargs=-1)
@click.option("--watch", is_flag=True, help="Keep the dashboard live: repaint on file changes and every --interval.")
@click.option(
    "--interval",
    default="2s",
    show_default=True,
    metavar="DURATION",
    help="With --watch: the longest time between two refreshes (e.g. 2s, 500ms, 1m; a bare number is seconds).",
)
@json_option
def status_cmd(names: tuple[str, ...], watch: bool, interval: str) -> Reply[Snapshot] | None:
    """Show every stream at a glance (or only the NAMEd ones).

    A summary line (total, active, completed, blocked, halted, locks held) over one row per
    stream: progress status and completion, current task, commits ahead/behind the base, dirty
    files, uncommitted out-of-scope edits, leases held with time left, halted or conflicted state,
    conflicts a rebase onto the base would hit, other streams that changed the same files, age of
    the last commit, and its agent in the latest `streams run` (running with its pid, or how
    its last attempt ended), from the runner's records.

    Read-only: git is polled with GIT_OPTIONAL_LOCKS=0, so it never takes index.lock from an
    agent. On a terminal --watch is a live view (Ctrl-C quits); off a terminal it prints a plain
    snapshot each time something changed (with --json: one envelope per line, NDJSON). Every mode
    refreshes on file events and every --interval, and re-reads only the worktrees whose files
    changed. SIGINT or SIGTERM ends it with exit 130; a closed stdout with exit 0. NO_COLOR is
    honoured.

    Exits 0 whenever it can show the dashboard, also when some rows show errors. The JSON fields
    are listed in the docstring of streams/dashboard.py.
    """
    seconds = parse_interval(interval)
    ws, config = open_workspace()
    with Collector(ws, config, names, predict=True) as collector:
        if not watch:
            return Reply(collector.collect(), _snapshot_text)
        from coordinator.dashboard import Dashboard  # here: the file watcher is for --watch alone

        live = sys.stdout.isatty() and not wants_json()
        command = current_run().command
        with Dashboard(ws, config, collector) as dashboard:
            if wants_json():  # one envelope per changed snapshot, each from base.envelope
                _loop_plain(dashboard, seconds, lambda s: envelope(command, Reply(s)))
            elif live:
                _loop_live(dashboard, seconds)
            else:
                _loop_plain(dashboard, seconds, lambda s: render_text(s) + "\n")
        if dashboard.interrupted:
            raise KeyboardInterrupt  # the CLI's one way out for an interruption: "interrupted", 130
    return None


def _snapshot_text(snap: Snapshot) -> str:
    """Rich on a terminal, plain aligned text elsewhere."""
    if not sys.stdout.isatty():
        return render_text(snap)
    console = _rich_console()
    with console.capture() as captured:
        console.print(render_rich(snap, width=console.width))
    text: str = captured.get()
    return text.rstrip("\n")


def _loop_plain(dashboard: Dashboard, seconds: float, render: Callable[[Snapshot], str]) -> None:
    """A snapshot each time one says something new (``Dashboard.changed``), until a stop signal or
    until nobody reads stdout any more (checked every refresh, so a `| head -1` ends it)."""

    def show(_tick: Tick) -> None:
        if _stdout_closed():
            dashboard.stop()
        elif dashboard.problem or dashboard.snapshot is None:
            click.echo(f"streams: warning: {dashboard.problem} (retrying)", err=True)
        elif dashboard.changed(dashboard.snapshot):
            try:
                click.echo(render(dashboard.snapshot))
                sys.stdout.flush()
            except BrokenPipeError:
                _silence_stdout()
                dashboard.stop()

    dashboard.run(seconds, show)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone (poll reports an error or hang-up)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, 0)  # errors and hang-ups are always reported
        return any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and the interpreter's last flush must not
    complain about it."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# --- text cells shared by both renderings ----------------------------------------------------------


def short_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d"


def short_list(items: Sequence[str], limit: int = 2) -> str:
    if not items:
        return "-"
    head = ", ".join(items[:limit])
    return head + (f" +{len(items) - limit}" if len(items) > limit else "")


def state_cell(r: StreamStatus) -> str:
    if r.landed:
        return f"landed {r.landed[:8]}"
    if r.state != STARTED:
        return r.state
    return r.status or "?"


def divergence_cell(r: StreamStatus) -> str:
    if r.ahead is None or r.behind is None:
        return "-"
    return f"+{r.ahead} -{r.behind}"


def locks_cell(r: StreamStatus) -> str:
    if not r.locks:
        return "-"
    parts = [f"{lk.path} {short_age(lk.seconds_left)}" for lk in r.locks[:2]]
    return ", ".join(parts) + (f" +{len(r.locks) - 2}" if len(r.locks) > 2 else "")


def halt_cell(r: StreamStatus) -> str:
    if r.halted and r.halt is not None:
        return f"HALTED: {short_list(r.halt.files)}" if r.halt.files else "HALTED"
    if r.operation or r.conflicted:
        what = r.operation or "conflict"
        return f"{what}: {short_list(r.conflicted)}" if r.conflicted else f"{what} in progress"
    return "-"


def overlap_cell(r: StreamStatus) -> str:
    if not r.overlaps:
        return "-"
    parts = [f"{other}: {short_list(paths, 1)}" for other, paths in sorted(r.overlaps.items())]
    return "; ".join(parts[:2]) + (f" +{len(parts) - 2}" if len(parts) > 2 else "")


def agent_cell(r: StreamStatus) -> str:
    """The stream's agent in the latest run: ``running 4242 (a2)``, ``retry_wait: timeout``,
    ``verified``; ``-`` outside a run."""
    attempt = f" (a{r.run.attempt})" if r.run is not None and r.run.attempt > 1 else ""
    if r.agent_running:
        return f"running {r.agent_pid}{attempt}"
    if r.run is not None:
        if r.run.failure and r.run.status in ("failed", "blocked", "retry_wait", "interrupted"):
            return f"{r.run.status}: {r.run.failure}{attempt}"
        return r.run.status
    if r.agent_pid is not None:
        return f"exited {r.agent_pid}"
    return "-"


def dirty_cell(r: StreamStatus) -> str:
    return str(len(r.dirty)) if r.state in (STARTED, UNCONFIGURED) else "-"


def task_cell(r: StreamStatus) -> str:
    if r.errors:
        return f"ERROR: {r.errors[0]}"
    if r.status == "blocked" and r.blocked_items:
        return f"BLOCKED: {r.blocked_items[0]}"
    return r.current_task or "-"


def summary_text(snap: Snapshot) -> str:
    s = snap.summary
    parts = [
        f"{s.total} stream{'s' if s.total != 1 else ''}",
        f"{s.active} active",
        f"{s.completed} completed",
        f"{s.blocked} blocked",
        f"{s.halted} halted",
        f"{s.locks_held} lock{'s' if s.locks_held != 1 else ''} held",
    ]
    if s.not_started:
        parts.append(f"{s.not_started} not started")
    if s.out_of_scope:
        parts.append(f"{s.out_of_scope} out of scope")
    if s.predicted_conflicts:
        parts.append(f"{s.predicted_conflicts} predicted conflict{'s' if s.predicted_conflicts != 1 else ''}")
    if s.errors:
        parts.append(f"{s.errors} unreadable")
    if s.started and s.hooks_path:
        parts.append(f"hooks bypassed (core.hooksPath={s.hooks_path})")
    elif s.started and not s.hooks_ok:
        bad = [f"{name} {state}" for name, state in s.hooks.items() if state != "installed"]
        parts.append(f"hooks: {', '.join(bad)} (`streams hooks install` from the main worktree)")
    if snap.run is not None:
        r = snap.run
        parts.append(
            f"run {r.run_id} {r.status}"
            + (f" wave {r.wave}/{r.waves}" if r.status == "running" else "")
            + (f" by {r.paused_by} (`streams resume` goes on)" if r.paused_by and r.status == "paused" else "")
            + _live(r)
        )
    shown = snap.base_ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")
    base = f"base {shown} {snap.base_tip[:10]}" if snap.base_tip else f"base {shown} (missing)"
    return f"{' · '.join(parts)}   [{base}]"


def _live(r: RunView) -> str:
    """A run's live figures: ``: 2 running, 3 queued, 4 verified, 1 failed, 5m elapsed, ~3m left``."""
    if r.status != "running":
        return f": {r.verified} verified, {r.failed} failed in {short_age(r.elapsed)}" if r.elapsed else ""
    left = f", ~{short_age(r.remaining)} left" if r.remaining is not None else ""
    return (
        f": {r.running} running, {r.queued} queued, {r.verified} verified, {r.failed} failed, "
        f"{short_age(r.elapsed)} elapsed{left}"
    )


HEADER = (
    "STREAM",
    "STATUS",
    "DONE",
    "TASK",
    "AHEAD/BEHIND",
    "DIRTY",
    "OUT OF SCOPE",
    "LOCKS",
    "HALT/CONFLICT",
    "PREDICTED",
    "OVERLAPS",
    "LAST COMMIT",
    "AGENT",
)


def details(snap: Snapshot) -> list[str]:
    """Everything the cells shorten, spelled out: one line per problem, most urgent first (the
    halts, which wait for a human, then errors, scope, predictions, overlaps and warnings), so a
    view cut to the terminal's height keeps them."""
    halts: list[str] = []
    errors: list[str] = []
    scope: list[str] = []
    later: list[str] = []
    for r in snap.streams:
        errors.extend(f"{r.name}: error: {err}" for err in r.errors)
        if r.halted and r.halt is not None:
            halts.append(
                f"{r.name}: halted by sync on {', '.join(r.halt.files) or 'a conflict'} "
                f"(finish the rebase in {r.worktree}, then `streams sync --continue {r.name}`){_locks_note(r)}"
            )
        scope.extend(f"{r.name}: out of scope (uncommitted): {v.path}: {v.reason}" for v in r.out_of_scope)
        scope.extend(f"{r.name}: out of scope (committed): {v.path}: {v.reason}" for v in r.committed_out_of_scope)
        if r.predicted_conflicts:
            later.append(f"{r.name}: a rebase onto {snap.base} would conflict on {', '.join(r.predicted_conflicts)}")
    for r in snap.streams:
        for other, paths in sorted(r.overlaps.items()):
            if r.name < other:
                later.append(f"{r.name} and {other} both changed {', '.join(paths)}")
    return [*halts, *errors, *scope, *later, *(f"warning: {w}" for w in snap.warnings)]


def _locks_note(r: StreamStatus) -> str:
    """Lock files git left or holds around a halted stream's worktree, and what to do about them
    (stale only when no git process works there: ``coordinator.gitlocks.stale_locks_fix``)."""
    if r.halt is None or not r.halt.ref or not r.worktree:
        return ""
    from coordinator.gitlocks import stale_locks_fix
    from streams import git

    worktree = Path(r.worktree)
    locks = git.stale_lock_files(worktree, r.halt.ref) if worktree.is_dir() else []
    return f"; {stale_locks_fix(locks, 'that worktree', worktree)}" if locks else ""


def _row_cells(r: StreamStatus, bar: Callable[[int | None], str]) -> list[str]:
    return [
        r.name,
        state_cell(r),
        bar(r.completion) if r.completion is not None else "-",
        task_cell(r),
        divergence_cell(r),
        dirty_cell(r),
        short_list([v.path for v in r.out_of_scope]),
        locks_cell(r),
        halt_cell(r),
        short_list(r.predicted_conflicts),
        overlap_cell(r),
        f"{short_age(r.last_commit_age)} ago" if r.last_commit_age is not None else "-",
        agent_cell(r),
    ]


def _ascii_bar(completion: int | None) -> str:
    if completion is None:
        return "-"
    filled = round(completion * BAR_WIDTH / 100)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {completion:>3}%"


def render_text(snap: Snapshot) -> str:
    """The plain dashboard: summary, aligned table, then the details lines."""
    out = [summary_text(snap)]
    if snap.streams:
        out.append(table([_row_cells(r, _ascii_bar) for r in snap.streams], HEADER))
    else:
        out.append("no streams configured; add some to streams.yaml")
    out.extend(details(snap))
    return "\n".join(out)


# --- rich -------------------------------------------------------------------------------------------------


def _rich_console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


_STATUS_STYLE = {
    "in_progress": "cyan",
    "completed": "green",
    "blocked": "yellow",
    "failed": "red",
    "paused": "magenta",
    "pending": "dim",
    NOT_STARTED: "dim",
    BRANCH_ONLY: "dim",
    MISSING: "red",
    UNCONFIGURED: "yellow",
}


# Which columns stay when the terminal is too narrow for all of them, most important first.
COLUMN_PRIORITY = (0, 1, 8, 6, 4, 5, 2, 3, 9, 7, 10, 12, 11)
COLUMN_MAX = {3: 40}  # TASK may be wider than the other cells
CELL_MAX = 32
COLUMN_GAP = 3  # rich's padding and divider around a cell with box.SIMPLE_HEAD


def fit_columns(rows: Sequence[Sequence[str]], width: int | None) -> list[int]:
    """The indexes of the columns to show in ``width`` cells (all when ``width`` is None)."""
    if width is None:
        return list(range(len(HEADER)))
    natural = [
        min(max([len(HEADER[i]), *(len(r[i]) for r in rows)]), COLUMN_MAX.get(i, CELL_MAX)) for i in range(len(HEADER))
    ]
    chosen: list[int] = []
    used = 0
    for i in COLUMN_PRIORITY:
        need = natural[i] + COLUMN_GAP
        if chosen and used + need > width:
            continue
        chosen.append(i)
        used += need
    return sorted(chosen)


def render_rich(
    snap: Snapshot, *, width: int | None = None, height: int | None = None, footer: str = ""
) -> RenderableType:
    """The dashboard for a terminal ``width`` x ``height`` cells: columns that do not fit are left
    out (least important first) and named, instead of squeezing every cell to nothing; detail lines
    that do not fit are counted, so the footer stays on screen."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def bar(completion: int | None) -> str:
        if completion is None:
            return "-"
        filled = round(completion * BAR_WIDTH / 100)
        return f"{'█' * filled}{'░' * (BAR_WIDTH - filled)} {completion:>3}%"

    s = snap.summary
    summary = Text(summary_text(snap), style="bold", overflow="ellipsis", no_wrap=True)
    if s.halted or s.errors:
        summary.stylize("red")
    elif s.out_of_scope or s.predicted_conflicts:
        summary.stylize("yellow")
    texts = [_row_cells(r, bar) for r in snap.streams]
    shown = fit_columns(texts, width)
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False, header_style="bold")
    for i in shown:
        grid.add_column(
            HEADER[i],
            overflow="ellipsis",
            no_wrap=True,
            max_width=COLUMN_MAX.get(i, CELL_MAX),
            min_width=max(len(r[0]) for r in texts) if i == 0 and texts else None,
        )
    for r, row_text in zip(snap.streams, texts, strict=True):
        cells = [Text(c) for c in row_text]
        cells[0].stylize("bold")
        cells[1].stylize(_STATUS_STYLE.get(state_cell(r), ""))
        if r.errors:
            cells[3].stylize("red")
        if r.behind:
            cells[4].stylize("yellow")
        if r.out_of_scope:
            cells[6].stylize("bold red")
        if r.halted or r.conflicted:
            cells[8].stylize("bold red")
        if r.predicted_conflicts:
            cells[9].stylize("yellow")
        if r.overlaps:
            cells[10].stylize("yellow")
        if r.agent_running:
            cells[12].stylize("green")
        grid.add_row(*(cells[i] for i in shown))
    parts: list[RenderableType] = [summary]
    if snap.streams:
        parts.append(grid)
        hidden = [HEADER[i] for i in range(len(HEADER)) if i not in shown]
        if hidden:
            parts.append(Text(f"hidden for width: {', '.join(hidden)} (widen the terminal, or --json)", style="dim"))
    else:
        parts.append(Text("no streams configured; add some to streams.yaml"))
    lines = details(snap)
    if height is not None:
        room = max(0, height - len(snap.streams) - 6)
        if len(lines) > room:
            more = len(lines) - max(0, room - 1)
            lines = [
                *lines[: max(0, room - 1)],
                f"… {more} more line{'s' if more != 1 else ''} (`streams status` prints all)",
            ]
    if lines:
        parts.append(Text("\n".join(lines), style="yellow", overflow="ellipsis", no_wrap=True))
    if footer:
        parts.append(Text(footer, style="dim", overflow="ellipsis", no_wrap=True))
    return Group(*parts)


# --- the live view ----------------------------------------------------------------------------------------


def _loop_live(dashboard: Dashboard, seconds: float) -> None:
    from rich.live import Live

    console = _rich_console()
    with Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False) as live:

        def paint(_tick: Tick) -> None:
            footer = (
                f"updated {time.strftime('%H:%M:%S')} · repaints on changes and every "
                f"{_seconds_text(seconds)} · Ctrl-C quits"
            )
            if dashboard.notes:
                footer += " · " + "; ".join(dashboard.notes[:2])
            if dashboard.problem:
                footer = f"{dashboard.problem} (retrying) · {footer}"
            # The real size, each paint: COLUMNS/LINES from the environment do not follow a resize.
            with contextlib.suppress(OSError):
                console.size = os.get_terminal_size(sys.stdout.fileno())
            if dashboard.snapshot is None:
                from rich.text import Text

                live.update(Text(footer), refresh=True)
            else:
                snap = dashboard.snapshot
                live.update(render_rich(snap, width=console.width, height=console.height, footer=footer), refresh=True)

        from coordinator.loop import RESIZE

        resize: dict[int, str] = {signal.SIGWINCH: RESIZE} if hasattr(signal, "SIGWINCH") else {}
        dashboard.run(seconds, paint, signals=resize)


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}s"


__all__ = ["parse_interval", "render_rich", "render_text", "status_cmd"]
