"""``streams status``: the dashboard — a table once, a live view (``--watch``), or JSON.

The data comes from ``streams.status`` (one frozen ``StreamStatus`` per stream); this module only
renders it: plain aligned text off a terminal, rich on a terminal, the JSON envelope with
``--json``. The live view repaints on file events in the worktrees and the common dir (watchdog,
debounced) and on a timer, in the terminal's alternate screen so nothing scrolls or flickers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from coordinator.sync import predict_conflicts
from streams.cli.base import Reply, cli, current_run, envelope, json_option, table, wants_json
from streams.cli.context import open_workspace
from streams.config import Config
from streams.kernel.errors import ConfigError, StreamsError, UsageError
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
from streams.workspace import Workspace, load_config

if TYPE_CHECKING:
    from rich.console import RenderableType

BAR_WIDTH = 10
DEBOUNCE_SECONDS = 0.15
DEBOUNCE_MAX_SECONDS = 1.0
FULL_REFRESH_SECONDS = 30.0  # --watch re-reads every worktree at least this often, events or not
MIN_EVENT_GAP_SECONDS = 0.3  # between two repaints caused by file events (at least one collection's time)
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
    the last commit, and whether its agent is running (a live pid in
    <git-common-dir>/streams/agents/NAME.pid).

    Read-only: git is polled with GIT_OPTIONAL_LOCKS=0, so it never takes index.lock from an
    agent. On a terminal --watch is a live view (Ctrl-C quits); off a terminal it prints one
    plain snapshot per interval (with --json: one envelope per line). NO_COLOR is honoured.

    Exits 0 whenever it can show the dashboard, also when some rows show errors. The JSON fields
    are listed in the docstring of streams/status.py.
    """
    seconds = parse_interval(interval)
    ws, config = open_workspace(check_tracked=False)
    with Collector(ws, config, names, predict=predict_conflicts) as collector:
        if not watch:
            return Reply(collector.collect(), _snapshot_text)
        reloader = _ConfigReloader(ws, config, collector)
        command = current_run().command
        if wants_json():  # one envelope per snapshot, each from base.envelope (the loop writes the line)
            _loop_plain(collector, reloader, seconds, lambda s: envelope(command, Reply(s)))
        elif sys.stdout.isatty():
            _loop_live(ws, collector, reloader, seconds)
        else:
            _loop_plain(collector, reloader, seconds, lambda s: render_text(s) + "\n")
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


class _ConfigReloader:
    """In --watch, pick up an edited streams.yaml (streams added or removed) without a restart."""

    def __init__(self, ws: Workspace, config: Config, collector: Collector) -> None:
        self.ws, self.config, self.collector = ws, config, collector
        self.stamp = self._stamp()
        self.problem: str | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.ws.config_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self) -> None:
        stamp = self._stamp()
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            config = load_config(self.ws, check_tracked=False)
            self.collector.set_config(config)
        except ConfigError as exc:
            self.problem = f"streams.yaml changed but cannot be used ({exc.message}); showing the previous one"
            return
        self.problem = None


def _with_problem(snap: Snapshot, reloader: _ConfigReloader) -> Snapshot:
    if reloader.problem is None:
        return snap
    from dataclasses import replace

    return replace(snap, warnings=(*snap.warnings, reloader.problem))


def _collect(
    collector: Collector, reloader: _ConfigReloader, unchanged: Callable[[Path], bool] | None = None
) -> tuple[Snapshot | None, str]:
    """One snapshot for a watch loop, or why there is none this time (the loop keeps going)."""
    reloader.check()
    try:
        return _with_problem(collector.collect(unchanged=unchanged), reloader), ""
    except (StreamsError, OSError) as exc:
        message = exc.message if isinstance(exc, StreamsError) else str(exc)
        return None, f"cannot read the repository: {message}"


def _loop_plain(
    collector: Collector, reloader: _ConfigReloader, seconds: float, render: Callable[[Snapshot], str]
) -> None:
    while True:
        started = time.monotonic()
        snap, problem = _collect(collector, reloader)
        if snap is not None:
            click.echo(render(snap))
        else:
            click.echo(f"streams: warning: {problem} (retrying)", err=True)
        sys.stdout.flush()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))


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
    if r.agent_running:
        return f"running {r.agent_pid}"
    if r.agent_pid is not None:
        return f"exited {r.agent_pid}"
    return "-"


def dirty_cell(r: StreamStatus) -> str:
    return str(len(r.dirty)) if r.state in (STARTED, UNCONFIGURED) else "-"


def task_cell(r: StreamStatus) -> str:
    if r.errors:
        return f"ERROR: {r.errors[0]}"
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
    shown = snap.base_ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")
    base = f"base {shown} {snap.base_tip[:10]}" if snap.base_tip else f"base {shown} (missing)"
    return f"{' · '.join(parts)}   [{base}]"


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
    """Everything the cells shorten, spelled out: one line per problem."""
    lines: list[str] = []
    for r in snap.streams:
        for err in r.errors:
            lines.append(f"{r.name}: error: {err}")
        if r.halted and r.halt is not None:
            lines.append(
                f"{r.name}: halted by sync on {', '.join(r.halt.files) or 'a conflict'} "
                f"(finish the rebase in {r.worktree}, then `streams sync --continue {r.name}`)"
            )
        for v in r.out_of_scope:
            lines.append(f"{r.name}: out of scope (uncommitted): {v.path}: {v.reason}")
        if r.predicted_conflicts:
            lines.append(f"{r.name}: a rebase onto {snap.base} would conflict on {', '.join(r.predicted_conflicts)}")
        for other, paths in sorted(r.overlaps.items()):
            if r.name < other:
                lines.append(f"{r.name} and {other} both changed {', '.join(paths)}")
    lines.extend(f"warning: {w}" for w in snap.warnings)
    return lines


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


class _Wakeup:
    """Why the live view should repaint: files changed, the terminal resized, or nothing (timer)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: set[str] = set()
        self.last_change = 0.0

    def poke(self, reason: str) -> None:
        with self._cond:
            self._reasons.add(reason)
            if reason == "change":
                self.last_change = time.monotonic()
            self._cond.notify_all()

    def wait(self, timeout: float, not_before: float = 0.0) -> set[str]:
        """Block until a reason arrives or ``timeout`` passes; return the reasons (empty: the timer).

        A change is debounced (a commit or a rebase writes many files), and never acted on before
        ``not_before`` (monotonic): agents writing without pause cannot keep the dashboard busy.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._reasons:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            reasons, self._reasons = self._reasons, set()
        if "change" in reasons:
            first = time.monotonic()
            while True:
                now = time.monotonic()
                quiet = now - self.last_change
                settled = quiet >= DEBOUNCE_SECONDS or now - first >= DEBOUNCE_MAX_SECONDS
                if settled and now >= not_before:
                    break
                pause = not_before - now if settled else DEBOUNCE_SECONDS - quiet
                time.sleep(max(0.01, pause))
            with self._cond:
                reasons |= self._reasons
                self._reasons = set()
        return reasons


# Files in a linked worktree's private git dir (<common>/worktrees/<id>/) whose change matters.
WORKTREE_STATE_FILES = ("HEAD", "index", "rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD")


class _Watcher:
    """watchdog observers on the common dir and each stream worktree; pokes ``wake`` on changes.

    Inside the common dir only what signals a change of state counts: refs, HEAD and index files
    (commits, checkouts, staging), rebase/merge state, leases, state.json and agent pid files.
    Objects, logs and git's own ``*.lock`` files are ignored, and so are reads (open/close events):
    the dashboard's own polling never wakes it up.

    It also remembers which worktrees changed since ``take_changed()`` was last called, so that a
    refresh re-runs ``git status`` only where something happened (``unchanged``).
    """

    def __init__(self, common_dir: Path, wake: _Wakeup) -> None:
        self.common = str(common_dir.resolve())
        self.wake = wake
        self.problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._dead: set[str] = set()
        self._roots: list[str] = []  # watched worktree roots, longest first
        self._by_id: dict[str, str] = {}  # <common>/worktrees/<id> -> worktree root
        self._by_branch: dict[str, str] = {}  # refs/heads/... -> root of the worktree it is checked out in
        self._watches: dict[str, Any] = {}
        self._observer: Any = None
        try:
            from watchdog.observers import Observer
        except ImportError as exc:  # pragma: no cover - watchdog is a dependency
            self.problems["*"] = f"file events unavailable ({exc})"
            return
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self._handler = self._make_handler()

    def _make_handler(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write", "attrib"):
                    return
                if event.event_type == "deleted" and event.is_directory:
                    watcher.vanished(os.fsdecode(event.src_path))
                for p in (event.src_path, getattr(event, "dest_path", "")):
                    if p and watcher.note(os.fsdecode(p)):
                        watcher.wake.poke("change")
                        return

        return Handler()

    def note(self, path: str) -> bool:
        """Whether a change at ``path`` matters; remember the worktree it changes."""
        relevant, root = self.classify(path)
        if root is not None:
            with self._lock:
                self._changed.add(root)
        return relevant

    def classify(self, path: str) -> tuple[bool, str | None]:
        """(does a change at ``path`` matter, the worktree root whose ``git status`` it may change)."""
        if not (path == self.common or path.startswith(self.common + os.sep)):
            if ".git" in path.split(os.sep):  # a worktree's .git is a file; a nested repo's internals are noise
                return False, None
            root = next((r for r in self._roots if path == r or path.startswith(r + os.sep)), None)
            return True, root
        rel = path[len(self.common) + 1 :].split(os.sep)
        top, name = rel[0], rel[-1]
        if top == "streams":
            return len(rel) > 1 and (rel[1] in ("locks", "agents") or rel[1:] == ["state.json"]), None
        if name.endswith(".lock") or top in ("objects", "logs", "hooks", "lfs", "info", "modules"):
            return False, None
        if top == "refs":  # a branch moved: the worktree that has it checked out sees new changes
            return True, self._by_branch.get("/".join(rel))
        if top in ("packed-refs", "HEAD", "index", "FETCH_HEAD", "ORIG_HEAD"):
            return True, None
        if top == "worktrees" and len(rel) >= 3 and rel[2] in WORKTREE_STATE_FILES:
            return True, self._by_id.get(rel[1])
        return False, None

    def vanished(self, path: str) -> None:
        """A watched worktree's directory was deleted: its watch died with it."""
        with self._lock:
            if path in self._watches:
                self._dead.add(path)

    def take_changed(self) -> set[str]:
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed

    def watching(self, root: str) -> bool:
        return root in self._watches and root not in self._dead and root not in self.problems

    def sync(self, streams: Iterable[StreamStatus]) -> None:
        """Watch the worktrees of ``streams`` (plus the common dir): worktrees come and go while we run."""
        if self._observer is None:
            return
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        kinds = [
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileClosedEvent,
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
        ]
        rows = [r for r in streams if r.worktree and r.state in (STARTED, UNCONFIGURED)]
        roots = {r.worktree for r in rows if r.worktree and Path(r.worktree).is_dir()}
        self._by_branch = {f"refs/heads/{r.branch}": r.worktree for r in rows if r.worktree}
        self._by_id = self._worktree_ids(roots)
        self._roots = sorted(roots, key=len, reverse=True)
        want = {self.common} | roots
        with self._lock:
            dead, self._dead = self._dead, set()
        for path in list(self._watches):
            if path not in want or path in dead or not Path(path).is_dir():
                watch = self._watches.pop(path)
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(watch)
                self.problems.pop(path, None)
        for path in sorted(want - set(self._watches)):
            try:
                self._watches[path] = self._observer.schedule(self._handler, path, recursive=True, event_filter=kinds)
                self.problems.pop(path, None)
            except OSError as exc:  # e.g. the inotify watch limit: the timer still refreshes
                self.problems[path] = f"file events unavailable for {path} ({exc.strerror or exc})"
            with self._lock:  # it may have changed before the watch began
                self._changed.add(path)

    def _worktree_ids(self, roots: set[str]) -> dict[str, str]:
        """``<common>/worktrees/<id>`` names each linked worktree's private git dir; its ``gitdir``
        file points back at ``<root>/.git``."""
        ids: dict[str, str] = {}
        base = Path(self.common) / "worktrees"
        with contextlib.suppress(OSError):
            for entry in base.iterdir():
                with contextlib.suppress(OSError):
                    root = os.path.dirname(os.path.normpath((entry / "gitdir").read_text(encoding="utf-8").strip()))
                    if root in roots:
                        ids[entry.name] = root
        return ids

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None


def _loop_live(ws: Workspace, collector: Collector, reloader: _ConfigReloader, seconds: float) -> None:
    from rich.live import Live

    console = _rich_console()
    wake = _Wakeup()
    watcher = _Watcher(ws.common_dir, wake)
    previous = signal.getsignal(signal.SIGWINCH) if hasattr(signal, "SIGWINCH") else None
    if previous is not None:
        signal.signal(signal.SIGWINCH, lambda *_: wake.poke("resize"))
    try:
        with Live(
            console=console, screen=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        ) as live:
            snap: Snapshot | None = None
            problem = ""
            reasons = {"change"}
            not_before = 0.0
            next_full = 0.0
            while True:
                if snap is None or reasons != {"resize"}:
                    began = time.monotonic()
                    # Between full refreshes, `git status` runs only in worktrees with file events.
                    changed = watcher.take_changed()
                    full = began >= next_full
                    fresh, problem = _collect(collector, reloader, None if full else _unchanged(watcher, changed))
                    if full:
                        next_full = began + FULL_REFRESH_SECONDS
                    if fresh is not None:
                        snap = fresh
                        watcher.sync(snap.streams)
                    took = time.monotonic() - began
                    not_before = time.monotonic() + max(MIN_EVENT_GAP_SECONDS, took)
                footer = (
                    f"updated {time.strftime('%H:%M:%S')} · repaints on changes and every "
                    f"{_seconds_text(seconds)} · Ctrl-C quits"
                )
                if watcher.problems:
                    footer += " · " + "; ".join(sorted(set(watcher.problems.values()))[:2])
                if problem:
                    footer = f"{problem} (retrying) · {footer}"
                # The real size, each paint: COLUMNS/LINES from the environment do not follow a resize.
                with contextlib.suppress(OSError):
                    console.size = os.get_terminal_size(sys.stdout.fileno())
                if snap is None:
                    from rich.text import Text

                    live.update(Text(footer), refresh=True)
                else:
                    live.update(
                        render_rich(snap, width=console.width, height=console.height, footer=footer), refresh=True
                    )
                reasons = wake.wait(seconds, not_before)
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
        watcher.stop()


def _unchanged(watcher: _Watcher, changed: set[str]) -> Callable[[Path], bool]:
    return lambda p: watcher.watching(str(p)) and str(p) not in changed


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}s"


__all__ = ["parse_interval", "render_rich", "render_text", "status_cmd"]
