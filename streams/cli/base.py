"""The CLI's common ground: the root group, the one writer of results, errors, exit codes.

This package is the only code that prints or exits. A command parses its options, opens the
workspace through ``streams.cli.context``, calls one core or coordinator function with plain values
and returns a ``Reply``: the result, how a person reads it, and the error it ends with, if any.
``run_main`` hands the reply to ``respond``, the one writer of either the text or the JSON envelope
``{"version": 1, "command", "ok", "data", "error": {"code", "message"}}``; a command that reports as
it goes (``watch``, ``sync --watch``) writes each item with ``stream``. An error raised anywhere is
written by ``respond`` too, as a reply without data.

Each result type documents its ``data`` fields in a table in its docstring (``streams/dashboard.py``
has the model); ``tests/test_json_docs.py`` runs every command with ``--json`` and keeps the tables
true.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import click

from streams import __version__
from streams.cli.output import ENVELOPE_VERSION as ENVELOPE_VERSION
from streams.cli.output import add_json_properties as add_json_properties
from streams.cli.output import envelope_text
from streams.cli.output import json_properties as json_properties
from streams.cli.output import jsonable as jsonable
from streams.cli.output import table as table
from streams.cli.output import writable as _writable
from streams.kernel.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    StreamsError,
    UsageError,
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class Run:
    """One invocation of the CLI: what the writer and the error handler need to know.

    ``run_main`` makes a fresh one per call and hands it to click as the context object
    (``ctx.obj``), which every subcommand's context inherits; nothing about a run is global.
    """

    cwd: Path  # where the command acts: -C, else where it was started
    command: str = ""  # the envelope's "command": "lock", "hooks install", …
    json: bool = False  # --json was given
    warned: set[str] = field(default_factory=set)  # config warnings already printed


def current_run() -> Run:
    """The run of the command being executed (from click's current context)."""
    ctx = click.get_current_context(silent=True)
    run = ctx.find_object(Run) if ctx is not None else None
    if run is None:
        raise RuntimeError("no streams command is running (commands run through streams.cli.base.run_main)")
    return run


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    run = ctx.find_object(Run)
    if run is not None and value:
        run.json = True
    return value


def json_option(f: F) -> F:
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print one JSON envelope on stdout instead of text.",
    )(f)


def wants_json() -> bool:
    return current_run().json


# --- replies: the one writer of results ---------------------------------------------------------


@dataclass(frozen=True)
class Reply(Generic[T]):
    """What a command answers: its result and how a person reads it.

    ``data`` is the result (a core frozen dataclass, or a small typed result of the command's
    module) and becomes the envelope's ``data``; ``text`` renders it for a person (the lines for
    stdout; "" for none); ``error`` ends the command with that error's exit code, the result still
    written (a halted sync, a verify that found violations).
    """

    data: T
    text: Callable[[T], str] | None = None
    error: StreamsError | None = None


def envelope(command: str, reply: Reply[Any]) -> str:
    """The JSON envelope of ``reply``, on one line."""
    error = reply.error
    return envelope_text(command, reply.data, None if error is None else (error.code, error.message))


def respond(reply: Reply[Any], run: Run | None = None) -> int:
    """Write a command's reply and return its exit code. The one writer of results: with --json the
    envelope, else the text; an error adds its one line on stderr."""
    run = run or current_run()
    if run.json:
        click.echo(envelope(run.command, reply))
    elif reply.text is not None:
        text = reply.text(reply.data)
        if text:
            click.echo(_writable(text))
    if reply.error is None:
        return EXIT_OK
    click.echo(f"streams: error: {reply.error.message}", err=True)
    return reply.error.exit_code


def stream(item: Reply[Any]) -> None:
    """Write one item of a command that reports as it goes (``watch``, ``sync --watch``): with
    --json one envelope per line (ok false when the item carries an error), else its text, and the
    item's error as a warning (the command goes on)."""
    run = current_run()
    if run.json:
        click.echo(envelope(run.command, item))
        return
    text = item.text(item.data) if item.text is not None else ""
    if text:
        click.echo(_writable(text))
    if item.error is not None:
        warn(item.error.message)


def warn(message: str) -> None:
    click.echo(f"streams: warning: {message}", err=True)


def info(message: str) -> None:
    """A progress line for humans (stderr, so stdout stays data)."""
    click.echo(f"streams: {message}", err=True)


# Which module defines each top-level command. Modules are imported only when their command runs
# (or for --help), so `streams lock` does not pay for rich, watchdog and the sync loop.
COMMAND_MODULES = {
    "init": "workspace",
    "start": "workspace",
    "stop": "workspace",
    "list": "workspace",
    "owner": "scope",
    "hooks": "scope",
    "verify": "scope",
    "watch": "scope",
    "lock": "locks",
    "unlock": "locks",
    "locks": "locks",
    "progress": "progress",
    "sync": "sync",
    "status": "status",
    "check": "check",
    "merge": "merge",
    "plan": "plan",
    "run": "run",
    "metrics": "metrics",
    "resume": "run",
    "pause": "run",
    "abort": "run",
    "brief": "brief",
    "approve": "gates",
    "reject": "gates",
    "request-changes": "gates",
    "report": "report",
}


# Each command's summary (the first paragraph of its help), for `streams --help`, which then imports
# no command module; tests/test_cli_lazy.py keeps the two the same.
COMMAND_SUMMARIES = {
    "abort": "Stop the latest run for good: every agent stopped (its work saved), the run marked aborted.",
    "approve": "Approve a wave at its gate: `streams resume` then lands it and goes on.",
    "brief": "Print a stream's brief: its task, what it owns, the shared files, the rules and exit codes.",
    "check": "Check streams.yaml: list every problem and every warning, changing nothing.",
    "hooks": "Install, remove or inspect the scope hooks (pre-commit, reference-transaction, post-commit).",
    "init": "Write a commented starter streams.yaml at the repository root.",
    "list": "List configured streams, started or not, with branch and worktree path.",
    "lock": "Take the lock (a lease) on shared files, so this stream may commit changes to them.",
    "locks": "List every lease on shared files: holder, reason and time left (expired ones say so).",
    "merge": "Land finished streams on the base branch, verified, in dependency order.",
    "metrics": "Measure a run of `streams run`: throughput, success, parallel efficiency, waits.",
    "owner": "Show who owns each PATH: a stream, the shared list, or nobody.",
    "pause": "Pause the latest run: no new agent starts; running ones finish (--now: are stopped).",
    "plan": "Show the waves `streams run` would follow: which streams run side by side, and why.",
    "progress": "Show or update a stream's progress file, committing only that file.",
    "reject": "Reject a wave at its gate: it does not land.",
    "report": "Show a wave's report: per stream, the verdict from git beside the agent's claim.",
    "request-changes": "Send a stream of the latest run back to its agent with a note.",
    "resume": "Go on with the latest run from where it stopped.",
    "run": "Run each stream's agent, wave after wave, and judge each from git.",
    "start": "Start streams: a branch from the base and a worktree each (all streams when none named).",
    "status": "Show every stream at a glance (or only the NAMEd ones).",
    "stop": "Remove streams' worktrees, keeping their branches unless --delete-branch.",
    "sync": "Rebase streams onto the base branch (fetching first when `remote` is set) and push them.",
    "unlock": "Release the locks on shared files.",
    "verify": "Check commits against the streams' scopes; exit 5 on any violation, with a full report.",
    "watch": "Report out-of-scope edits in every stream worktree as they are written, before any commit.",
}


def _dispatched(ctx: click.Context, name: str) -> str:
    """The full name of the command a group dispatches to, without the program: ``hooks install``."""
    names = [name]
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


# Arguments that name files: a file name need not be UTF-8 (git keeps its bytes), so these are
# left as Python reads them; every other value is text that ends up in a file, a commit or a message.
_FILE_NAME_PARAMS = frozenset({"paths", "path"})


def _not_utf8(value: str) -> str | None:
    """Why ``value`` (a command-line string, undecodable bytes kept as surrogates) is not text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"character U+{ord(bad):04X}"
        return f"is not valid UTF-8 text ({byte} at position {exc.start})"
    return None


class StreamsCommand(click.Command):
    """A command whose text options must be UTF-8: a value that is not (``--reason $'\\xff'``) is a
    usage error naming the option, not a crash when it is written to a lease, a file or a commit."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        for param in self.params:
            if param.name is None or param.name in _FILE_NAME_PARAMS:
                continue
            value = ctx.params.get(param.name)
            for item in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(item, str) and (why := _not_utf8(item)) is not None:
                    where = param.opts[0] if isinstance(param, click.Option) else (param.human_readable_name or "")
                    raise click.BadParameter(f"{why}; pass it as UTF-8", ctx=ctx, param_hint=f"'{where}'")
        return rest


class CommandGroup(click.Group):
    """A group that records on the run which command it dispatches to (the envelope's "command")."""

    command_class = StreamsCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        run = ctx.find_object(Run)
        if cmd is not None and run is not None:
            run.command = _dispatched(ctx, cmd.name or name or "")
        return name, cmd, rest


class StreamsGroup(CommandGroup):
    """The root group: command modules are imported only when their command runs."""

    group_class = CommandGroup  # `@cli.group(...)` subgroups record their commands' names too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, with each command not loaded yet shortened from its summary
        (``COMMAND_SUMMARIES``) by click's own rule: `streams --help` imports no command module."""
        commands = [
            (name, self.commands.get(name) or click.Command(name, help=COMMAND_SUMMARIES.get(name)))
            for name in self.list_commands(ctx)
        ]
        commands = [(name, cmd) for name, cmd in commands if not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"streams.cli.{module}")
        return self.commands.get(cmd_name)


@click.group(cls=StreamsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streams")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if streams was started in this directory (like git -C).",
)
@click.pass_obj
def cli(run: Run, directory: Path | None) -> None:
    """Run several coding agents on one git repository without stepping on each other.

    Each stream gets its own worktree and branch and owns file patterns exclusively; shared files
    are guarded by locks; hooks keep every stream inside its scope.

    Exit codes: 0 done, 1 failed (the message says why and what to do), 2 usage error, 3 busy (a
    lock is held by another stream), 4 halted on a conflict, 5 scope violation, 70 internal error,
    130 interrupted.
    """
    if directory is not None:
        if not directory.is_dir():
            raise UsageError(f"-C {directory}: no such directory (see `streams --help`)")
        run.cwd = directory.resolve()


def _crash_log(exc: BaseException, run: Run) -> Path | None:
    import datetime as dt  # here and below: only a crash needs them (6 ms of every command)
    import platform
    import traceback

    from streams import git

    git_version = git.version()
    text = (
        f"streams {__version__}\npython {sys.version}\n{git_version}\nplatform {platform.platform()}\n"
        f"argv {sys.argv!r}\ncwd {run.cwd}\ntime {dt.datetime.now(dt.UTC).isoformat()}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    import tempfile

    name = f"crash-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    log_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "streams"
    for directory in (log_dir, Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text, encoding="utf-8")
            return directory / name
        except OSError:
            continue
    return None


def _crash_where(exc: BaseException, run: Run) -> str:
    """Where the crash report went, for the one error line."""
    import traceback

    path = _crash_log(exc, run)
    if path is not None:
        return f"details in {path} (please attach it to a bug report)"
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {frame.filename}:{frame.lineno}" if frame else ""
    return f"no crash log could be written{at} (please report it)"


# What the machine, not streams, can get wrong: a full disk or quota, a read-only file system, a
# file the user may not write, a file past the size limit, a failing device.
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO, errno.EMFILE}
)


def environment_error(exc: BaseException) -> StreamsError | None:
    """The one line for an ``OSError`` the environment caused (what the disk said, and where), or None."""
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    said = exc.strerror or os.strerror(exc.errno or 0)
    return StreamsError(
        f"{where}{said} (the file system refused; free space, or make it writable, and run the command again)",
        code="os_error",
    )


def _fail(exc: StreamsError, run: Run) -> int:
    return respond(Reply(None, error=exc), run)


def run_main(args: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; never lets a traceback reach the user."""
    try:
        run = Run(Path.cwd())
    except FileNotFoundError:  # the directory we were started in is gone
        click.echo("streams: error: the current directory no longer exists; cd somewhere that does", err=True)
        return 1
    argv = list(args) if args is not None else sys.argv[1:]
    try:
        # Not cli.main(): in non-standalone mode it returns (not raises) ctx.exit(N) codes, and it
        # prints a blank line on Ctrl-C even off a terminal.
        with cli.make_context("streams", argv, obj=run) as ctx:
            result = cli.invoke(ctx)
            if isinstance(result, Reply):
                return respond(result, run)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `streams` (click >= 8.2): the help, on stderr
            click.echo(exc.format_message(), err=True)
            return EXIT_USAGE
        run.json = run.json or "--json" in argv  # parsing failed before --json was seen: honour it anyway
        where = exc.ctx.command_path if exc.ctx is not None else "streams"
        message = exc.format_message().splitlines()[0] if exc.format_message() else "usage error"
        return _fail(StreamsError(f"{message} (see `{where} --help`)", code="usage"), run)
    except click.ClickException as exc:
        return _fail(StreamsError(exc.format_message(), code="error"), run)
    except StreamsError as exc:
        return _fail(exc, run)
    except (KeyboardInterrupt, click.Abort):
        if sys.stderr.isatty():
            click.echo(err=True)  # end the terminal's ^C echo
        click.echo("streams: interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug
        if (refused := environment_error(exc)) is not None:
            return _fail(refused, run)
        err = StreamsError(
            f"internal error (a bug in streams {__version__}): {type(exc).__name__}: {exc}; {_crash_where(exc, run)}",
            code="internal",
        )
        return _fail(err, run)
    return 0
