"""owner, hooks install|uninstall|status, verify, watch: the scope commands.

``owner``'s ``--json`` data is ``Owners``, ``hooks``' is ``streams.hooks_install.HooksReport``,
``verify``'s is ``streams.scope.VerifyReport``. ``streams watch --json`` writes one envelope per line
whose ``data`` is one of three shapes (``coordinator.watcher``'s events), told apart by ``kind``:

``ScopeEvent`` (kind ``violation``): a change in a stream worktree that the stream may not commit

========  ======  =================================================================================
field     type    meaning
========  ======  =================================================================================
kind      str     violation
time      float   when it was seen (epoch seconds)
stream    str     the stream whose worktree it is
worktree  str     that worktree
path      str     relative to the worktree root
change    str     created | modified | deleted | added | type changed
reason    str     as the hooks say it: "owned by ui", "unowned", …
fix       str     what to do about it
========  ======  =================================================================================

``WorktreeEvent`` (kind ``worktree``): a worktree the watcher started or stopped watching

========  ======  =================================================================================
field     type    meaning
========  ======  =================================================================================
kind      str     worktree
time      float   when (epoch seconds)
stream    str     the stream
worktree  str     its worktree
action    str     watching | gone
observer  str     inotify | polling
note      str     e.g. why it is polled
========  ======  =================================================================================

``WatchWarning`` (kind ``warning``): something the watcher cannot do, and what it does instead

========  ======  =================================================================================
field     type    meaning
========  ======  =================================================================================
kind      str     warning
time      float   when (epoch seconds)
message   str     what happened
========  ======  =================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams import hooks_install, scope
from streams.cli import base
from streams.cli.base import Reply, cli, info, json_option, table, wants_json, warn
from streams.cli.context import cwd, open_workspace, short, shown, workspace
from streams.kernel.errors import ScopeViolationError
from streams.kernel.rules import show
from streams.ownership import OwnerKind

if TYPE_CHECKING:
    from coordinator.watcher import WatchEventT

# --- streams owner ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owners:
    """``streams owner --json``.

    =====  ===========  ===========================================================================
    field  type         meaning
    =====  ===========  ===========================================================================
    paths  [PathOwner]  one per PATH, in order
    =====  ===========  ===========================================================================
    """

    paths: list[scope.PathOwner]


@cli.command("owner")
@click.argument("paths", nargs=-1, required=True)
@json_option
def owner_cmd(paths: tuple[str, ...]) -> Reply[Owners]:
    """Show who owns each PATH: a stream, the shared list, or nobody.

    PATH is relative to the current directory (or absolute) and need not exist. Inside a stream's
    worktree, also says whether that stream may change it, and why not. Patterns follow
    gitignore/CODEOWNERS rules; PATTERN is the line of streams.yaml that decides.
    """
    ws, config = open_workspace()
    return Reply(Owners(scope.owners(ws, config, paths, cwd())), _owner_text)


_WHO = {
    OwnerKind.STREAM: "{stream}",
    OwnerKind.PROGRESS: "{stream} (progress file)",
    OwnerKind.SHARED: "shared (needs `streams lock`)",
    OwnerKind.RESERVED: "no stream (streams' own file)",
    OwnerKind.UNOWNED: "unowned",
}


def _owner_text(owners: Owners) -> str:
    rows = []
    for o in owners.paths:
        row = [show(o.path), _WHO[o.kind].format(stream=o.stream or ""), o.pattern or "-"]
        if o.current is not None:
            row.append("yes" if o.allowed else f"no: {o.reason}")
        rows.append(row)
    header = ["PATH", "OWNER", "PATTERN"]
    if owners.paths and owners.paths[0].current is not None:
        header.append(f"{owners.paths[0].current.upper()} MAY CHANGE")
    return table(rows, header)


# --- streams hooks ----------------------------------------------------------------------------------


@cli.group("hooks")
def hooks_group() -> None:
    """Install, remove or inspect the scope hooks (pre-commit, reference-transaction, post-commit).

    The hooks live in <git-common-dir>/hooks, so one install serves every worktree; `streams
    start` installs them. A hook that was already there is kept as <hook>.legacy and still runs
    first; `uninstall` puts it back. core.hooksPath is refused (git would ignore the hooks).
    """


def _hook_rows(report: hooks_install.HooksReport) -> str:
    rows = [[h.name, h.state, f"{h.name}.legacy" if h.legacy else "-"] for h in report.hooks]
    return table(rows, ["HOOK", "STATE", "KEPT"])


@hooks_group.command("install")
@json_option
def hooks_install_cmd() -> Reply[hooks_install.HooksReport]:
    """Install or update the hooks (idempotent), baking in this interpreter's absolute path.

    Refused in a stream's worktree: run it from the main worktree.
    """
    ws = workspace()
    hooks_install.refuse_in_stream_worktree(ws, "install")
    return Reply(hooks_install.install(ws), _installed_text)


def _installed_text(report: hooks_install.HooksReport) -> str:
    return f"{_hook_rows(report)}\nhooks in {shown(report.hooks_dir)} run {report.python}"


@hooks_group.command("uninstall")
@json_option
def hooks_uninstall_cmd() -> Reply[hooks_install.HooksReport]:
    """Remove the hooks and put back any hook they kept as <hook>.legacy.

    Refused in a stream's worktree (scope cannot be switched off where an agent works); logged as
    the event hooks.uninstall.
    """
    ws = workspace()
    hooks_install.refuse_in_stream_worktree(ws, "uninstall")
    return Reply(hooks_install.uninstall(ws), _hook_rows)


@hooks_group.command("status")
@json_option
def hooks_status_cmd() -> Reply[hooks_install.HooksReport]:
    """Show whether the hooks are installed and current, and which interpreter they run."""
    return Reply(hooks_install.status(workspace()), _hooks_status_text)


def _hooks_status_text(report: hooks_install.HooksReport) -> str:
    if report.hooks_path:
        warn(
            f"core.hooksPath is set to {report.hooks_path!r}: git ignores {report.hooks_dir}; "
            "see `streams hooks install`"
        )
    elif not report.installed:
        info("run `streams hooks install` to install or update them")
    rows = [[h.name, h.state, f"{h.name}.legacy" if h.legacy else "-", h.python or "-"] for h in report.hooks]
    return table(rows, ["HOOK", "STATE", "KEPT", "PYTHON"])


# --- streams verify ---------------------------------------------------------------------------------


@cli.command("verify")
@click.argument("rev_range", metavar="[RANGE]", required=False)
@click.option("--stream", "stream", metavar="NAME", help="The stream whose scope applies (default: inferred).")
@click.option(
    "--config-rev",
    metavar="REV",
    help="Read streams.yaml from this revision (default: as committed on the base; in a bare repository: HEAD).",
)
@json_option
def verify_cmd(rev_range: str | None, stream: str | None, config_rev: str | None) -> Reply[scope.VerifyReport]:
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
    return Reply(report, _verify_text, error)


def _verify_text(report: scope.VerifyReport) -> str:
    lines = []
    for r in report.results:
        state = "ok" if r.ok else f"{len(r.violations)} violation{'s' if len(r.violations) != 1 else ''}"
        lines.append(
            f"{r.stream}: {r.commits} commit{'s' if r.commits != 1 else ''} ({r.range}, tip {short(r.tip)}): {state}"
        )
        for v in r.violations:
            lines.append(f"  {short(v.commit)} {v.status or '?'} {show(v.path)}  {v.reason} ({v.fix})")
        if r.shared_changes:
            lines.append(
                f"  shared paths changed (leases are checked at commit time): {', '.join(map(show, r.shared_changes))}"
            )
    if not report.results:
        lines.append("no stream branches to check")
    return "\n".join(lines)


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
    from coordinator.watcher import Watcher, WorktreeEvent

    ws, config = open_workspace()
    json_mode = wants_json()

    def render(ev: WatchEventT) -> None:
        base.stream(Reply(ev, _event_text))

    def on_event(ev: WatchEventT) -> None:  # called in this thread: from follow() and run()
        render(ev)
        if not json_mode and isinstance(ev, WorktreeEvent) and not watcher.watched:
            info("no stream worktrees left; still watching for new ones (Ctrl-C stops)")

    watcher = Watcher(ws, config, on_event, polling=polling)
    try:
        watcher.follow()
        names = sorted(set(watcher.watched.values()))
        info(
            f"watching {len(names)} stream worktree{'s' if len(names) != 1 else ''}{': ' + ', '.join(names) if names else ''}; Ctrl-C stops"
        )
        watcher.run()  # the loop, in this thread: events are rendered as they come, until Ctrl-C
    finally:
        watcher.stop()


def _event_text(ev: WatchEventT) -> str:
    """A scope report on stdout; which worktrees are watched, and warnings, on stderr."""
    from coordinator.watcher import ScopeEvent, WatchWarning, WorktreeEvent

    if isinstance(ev, ScopeEvent):
        return f"{ev.stream}: {show(ev.path)} {ev.change}: {ev.reason} ({ev.fix})"
    if isinstance(ev, WorktreeEvent):
        extra = f" ({ev.note})" if ev.note else ""
        verb = "watching" if ev.action == "watching" else "no longer watching"
        info(f"{verb} {ev.stream} in {shown(Path(ev.worktree))}{extra}")
    elif isinstance(ev, WatchWarning):
        warn(ev.message)
    return ""
