"""owner, hooks install|uninstall|status, verify, watch: the scope commands."""

from __future__ import annotations

import queue
from pathlib import Path

import click

from streams import hooks_install, scope
from streams.cli.base import cli, current_run, emit, envelope, info, json_option, table, wants_json, warn
from streams.cli.context import cwd, open_workspace, short, shown, workspace
from streams.kernel.errors import EXIT_SCOPE, ScopeViolationError
from streams.kernel.rules import show

# --- streams owner ---------------------------------------------------------------------------------


@cli.command("owner")
@click.argument("paths", nargs=-1, required=True)
@json_option
def owner_cmd(paths: tuple[str, ...]) -> None:
    """Show who owns each PATH: a stream, the shared list, or nobody.

    PATH is relative to the current directory (or absolute) and need not exist. Inside a stream's
    worktree, also says whether that stream may change it, and why not. Patterns follow
    gitignore/CODEOWNERS rules; PATTERN is the line of streams.yaml that decides.
    """
    ws, config = open_workspace(check_tracked=False)
    found = scope.owners(ws, config, paths, cwd())

    def text() -> None:
        rows = []
        for o in found:
            who = {
                "stream": o.stream or "",
                "progress": f"{o.stream} (progress file)",
                "shared": "shared (needs `streams lock`)",
                "reserved": "no stream (streams' own file)",
                "unowned": "unowned",
            }[o.kind]
            row = [show(o.path), who, o.pattern or "-"]
            if o.current is not None:
                row.append("yes" if o.allowed else f"no: {o.reason}")
            rows.append(row)
        header = ["PATH", "OWNER", "PATTERN"]
        if found and found[0].current is not None:
            header.append(f"{found[0].current.upper()} MAY CHANGE")
        click.echo(table(rows, header))

    emit({"paths": found}, text)


# --- streams hooks ----------------------------------------------------------------------------------


@cli.group("hooks")
def hooks_group() -> None:
    """Install, remove or inspect the scope hooks (pre-commit, reference-transaction, post-commit).

    The hooks live in <git-common-dir>/hooks, so one install serves every worktree; `streams
    start` installs them. A hook that was already there is kept as <hook>.legacy and still runs
    first; `uninstall` puts it back. core.hooksPath is refused (git would ignore the hooks).
    """


def _hook_rows(report: hooks_install.HooksReport) -> None:
    rows = [[h.name, h.state, f"{h.name}.legacy" if h.legacy else "-"] for h in report.hooks]
    click.echo(table(rows, ["HOOK", "STATE", "KEPT"]))


@hooks_group.command("install")
@json_option
def hooks_install_cmd() -> None:
    """Install or update the hooks (idempotent), baking in this interpreter's absolute path."""
    ws = workspace()
    report = hooks_install.install(ws)

    def text() -> None:
        _hook_rows(report)
        click.echo(f"hooks in {shown(report.hooks_dir)} run {report.python}")

    emit(report, text)


@hooks_group.command("uninstall")
@json_option
def hooks_uninstall_cmd() -> None:
    """Remove the hooks and put back any hook they kept as <hook>.legacy."""
    ws = workspace()
    report = hooks_install.uninstall(ws)
    emit(report, lambda: _hook_rows(report))


@hooks_group.command("status")
@json_option
def hooks_status_cmd() -> None:
    """Show whether the hooks are installed and current, and which interpreter they run."""
    ws = workspace()
    report = hooks_install.status(ws)

    def text() -> None:
        rows = [[h.name, h.state, f"{h.name}.legacy" if h.legacy else "-", h.python or "-"] for h in report.hooks]
        click.echo(table(rows, ["HOOK", "STATE", "KEPT", "PYTHON"]))
        if report.hooks_path:
            warn(
                f"core.hooksPath is set to {report.hooks_path!r}: git ignores {report.hooks_dir}; "
                "see `streams hooks install`"
            )
        elif not report.installed:
            info("run `streams hooks install` to install or update them")

    emit(report, text)


# --- streams verify ---------------------------------------------------------------------------------


@cli.command("verify")
@click.argument("rev_range", metavar="[RANGE]", required=False)
@click.option("--stream", "stream", metavar="NAME", help="The stream whose scope applies (default: inferred).")
@click.option(
    "--config-rev",
    metavar="REV",
    help="Read streams.yaml from this revision, not the worktree (default in a bare repository: HEAD).",
)
@json_option
def verify_cmd(rev_range: str | None, stream: str | None, config_rev: str | None) -> None:
    """Check commits against the streams' scopes; exit 5 on any violation, with a full report.

    Without RANGE, checks every stream branch (or only --stream's) against the base: each commit
    not on the base, against its parent. With RANGE (`A..B`, or one revision meaning "not on the
    base"), checks those commits for --stream NAME (inferred from `main..streams/NAME` or from the
    worktree you are in). Commits already on the base are never a stream's.

    Shared paths pass here: leases are checked when a commit is made (by the hooks), and history
    does not record who held which lease; they are listed as shared changes.

    \b
    In CI (after checking out the stream branch):
        streams verify origin/main..HEAD --stream api
    On a server, in the pre-receive hook of the bare repository (a ready one: hooks/pre-receive):
        streams verify OLD..NEW --stream NAME --config-rev HEAD
    """
    if config_rev is not None or rev_range is not None:
        ws, config = scope.open_for_verify(cwd(), config_rev)
    else:
        ws, config = open_workspace()
    report = scope.verify(ws, config, rev_range, stream)
    bad = report.violations
    error = None
    if bad:
        streams_bad = sorted({v.stream for v in bad})
        error = ScopeViolationError(
            f"{len(bad)} change{'s' if len(bad) != 1 else ''} outside scope in "
            f"{len(streams_bad)} stream{'s' if len(streams_bad) != 1 else ''} ({', '.join(streams_bad)}); "
            "rewrite those commits without them"
        )
    if wants_json():
        click.echo(envelope(current_run().command, error is None, report, error))
        if error is not None:
            raise click.exceptions.Exit(EXIT_SCOPE)
        return
    for r in report.results:
        state = "ok" if r.ok else f"{len(r.violations)} violation{'s' if len(r.violations) != 1 else ''}"
        click.echo(
            f"{r.stream}: {r.commits} commit{'s' if r.commits != 1 else ''} ({r.range}, tip {short(r.tip)}): {state}"
        )
        for v in r.violations:
            click.echo(f"  {short(v.commit)} {v.status or '?'} {show(v.path)}  {v.reason} ({v.fix})")
        if r.shared_changes:
            click.echo(
                f"  shared paths changed (leases are checked at commit time): {', '.join(map(show, r.shared_changes))}"
            )
    if not report.results:
        click.echo("no stream branches to check")
    if error is not None:
        raise error


# --- streams watch ----------------------------------------------------------------------------------


@cli.command("watch")
@click.option(
    "--polling", is_flag=True, help="Poll the file system instead of using inotify (e.g. network file systems)."
)
@json_option
def watch_cmd(polling: bool) -> None:
    """Report out-of-scope edits in every stream worktree as they are written, before any commit.

    Watches all started stream worktrees (and follows them as streams start and stop). Each line
    names the stream, the path, and why the stream may not commit it. Files git ignores are never
    reported. With --json, each report is one JSON envelope per line. Stop with Ctrl-C (exit 130).
    """
    from coordinator.watcher import ScopeEvent, Watcher, WatchEventT, WatchWarning, WorktreeEvent

    ws, config = open_workspace(check_tracked=False)
    events: queue.Queue[WatchEventT] = queue.Queue()
    watcher = Watcher(ws, config, events.put, polling=polling)
    json_mode = wants_json()
    command = current_run().command

    def render(ev: WatchEventT) -> None:
        if json_mode:
            click.echo(envelope(command, True, ev))
            return
        if isinstance(ev, ScopeEvent):
            click.echo(f"{ev.stream}: {show(ev.path)} {ev.change}: {ev.reason} ({ev.fix})")
        elif isinstance(ev, WorktreeEvent):
            extra = f" ({ev.note})" if ev.note else ""
            verb = "watching" if ev.action == "watching" else "no longer watching"
            info(f"{verb} {ev.stream} in {shown(Path(ev.worktree))}{extra}")
        elif isinstance(ev, WatchWarning):
            warn(ev.message)

    watcher.start()
    names = sorted(set(watcher.watched.values()))
    info(
        f"watching {len(names)} stream worktree{'s' if len(names) != 1 else ''}{': ' + ', '.join(names) if names else ''}; Ctrl-C stops"
    )
    try:
        while True:
            try:
                ev = events.get(timeout=0.2)
            except queue.Empty:
                continue
            render(ev)
            if not json_mode and isinstance(ev, WorktreeEvent) and not watcher.watched:
                info("no stream worktrees left; still watching for new ones (Ctrl-C stops)")
    finally:
        watcher.stop()
        while not events.empty():
            render(events.get_nowait())
