"""`streams progress` in a stream's own worktree, the quick way: no click, no streams.yaml.

An agent reports progress often, so `streams progress --status … --completion …` in its own worktree
should cost little more than git's own write-add-commit. ``main`` hands such a command line to
``progress`` before the CLI is loaded (click alone costs about as much as that whole git commit).
It takes only plainly valid input, and only when the hooks' compiled configuration answers for the
configuration in force (``configured``); it returns None for anything else (help, ``--json``, ``-C``,
another stream, text the full path must judge, a stale cache, any error), and then the full CLI runs
the command as if this module did not exist. An error found here changes nothing on disk (a failed
commit is rolled back by ``streams.progress``), so the full path meets it again and reports it the
one way every command does.

Options are the ones ``streams.cli.progress`` declares; this module reads them, it does not judge
them: a value the full path might refuse or rewrite is not taken here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streams.cli.quickread import configured
from streams.kernel import paths
from streams.kernel.errors import EXIT_INTERRUPTED, EXIT_OK, StreamsError
from streams.progress import STATUSES, Progress, ProgressCommit, ProgressStatus, Update, update_progress

_TEXT = ("--stream", "--current", "--agent", "--message", "-m")  # one value each
_MANY = ("--done", "--blocked", "--next")  # repeatable
_FLAGS = ("--clear-blocked", "--clear-next")
_MAX_TEXT = 500  # longer text goes the full way


def stream_worktree(cwd: Path) -> tuple[Path, Path, Path] | None:
    """(top, git dir, common dir) of the linked worktree ``cwd`` is in, read from its ``.git`` file
    and the git dir's ``commondir`` (no git process); None when ``cwd`` is not in a linked worktree
    (the main one, a submodule's own, none) or the files say anything unusual."""
    here = cwd
    while True:
        dot = here / ".git"
        if dot.is_file():
            break
        if dot.exists() or here.parent == here:
            return None
        here = here.parent
    try:
        text = dot.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir: "):
            return None
        git_dir = Path(os.path.normpath(here / text.removeprefix("gitdir: ")))
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not common or not (git_dir / "HEAD").is_file():
        return None
    return here, git_dir, Path(os.path.normpath(git_dir / common))


def update_here(cwd: Path, stream_name: str | None, update: Update, message: str | None) -> ProgressCommit | None:
    """``update`` applied to the progress file of the stream whose worktree ``cwd`` is in, without
    loading streams.yaml; None when that cannot be decided so (the full path decides, and says)."""
    found = stream_worktree(cwd)
    if found is None:
        return None
    top, git_dir, common = found
    name = paths.read_marker(git_dir)
    if name is None or stream_name not in (None, name):
        return None
    cc = configured(common)
    if cc is None or name not in cc.names:
        return None
    state_dir = Path(paths.state_dir(common))
    return update_progress(state_dir, top, name, cc.branch(name), update, message=message, dirs=(git_dir, common))


def progress_text(p: Progress, commit: str | None, where: str) -> str:
    """How a person reads a stream's progress (``streams progress`` without ``--json``)."""
    agent = f", agent {p.agent}" if p.agent else ""
    lines = [f"{p.stream}: {p.status}, {p.completion}%{agent} (updated {p.updated or '-'}){where}"]
    if commit:
        lines.append(f"committed {commit[:12]}")
    lines += [
        f"  done:    {'; '.join(p.completed) or '-'}",
        f"  current: {p.current or '-'}",
        f"  blocked: {'; '.join(p.blocked) or '-'}",
        f"  next:    {'; '.join(p.next) or '-'}",
    ]
    return "\n".join(lines)


def updated_text(result: ProgressCommit) -> str:
    return progress_text(result.progress, result.commit, "" if result.commit else " (unchanged)")


def _plain_text(value: str) -> bool:
    """Text the full path would take as it is: one printable line, not starting like an option or a
    markdown heading or item (``## Next Steps``, ``- x``), not long."""
    return len(value) <= _MAX_TEXT and value.isprintable() and not value.lstrip().startswith(("-", "#", "*"))


def parse_args(args: list[str]) -> tuple[str | None, Update, str | None] | None:
    """(--stream, the update, --message) of a command line made only of options given plainly
    valid values, with something to update; None for anything else."""
    single: dict[str, str] = {}
    many: dict[str, list[str]] = {k: [] for k in _MANY}
    flags: set[str] = set()
    i = 0
    while i < len(args):
        opt, eq, value = args[i].partition("=")
        if opt in _FLAGS and not eq:
            if opt in flags:
                return None
            flags.add(opt)
            i += 1
            continue
        if opt not in (*_TEXT, *_MANY, "--status", "--completion") or (opt == "-m" and eq):
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        if not _plain_text(value):
            return None
        if opt in _MANY:
            many[opt].append(value)
            continue
        key = "--message" if opt == "-m" else opt
        if key in single:
            return None
        single[key] = value
    status = single.get("--status")
    completion = single.get("--completion")
    if status is not None and status not in STATUSES:
        return None
    if completion is not None and not (completion.isascii() and completion.isdigit() and int(completion) <= 100):
        return None
    update = Update(
        status=ProgressStatus(status) if status is not None else None,
        completion=int(completion) if completion is not None else None,
        done=tuple(many["--done"]),
        current=single.get("--current"),
        blocked=tuple(many["--blocked"]),
        next=tuple(many["--next"]),
        agent=single.get("--agent"),
        clear_blocked="--clear-blocked" in flags,
        clear_next="--clear-next" in flags,
    )
    message = single.get("--message")
    if update.is_empty() and message is None:
        return None
    return single.get("--stream"), update, message


def progress(args: list[str]) -> int | None:
    """Run ``streams progress ARGS`` the quick way and return its exit code, or None: run the full CLI."""
    parsed = parse_args(args)
    if parsed is None:
        return None
    try:
        cwd = Path.cwd()
        result = update_here(cwd, *parsed)
    except KeyboardInterrupt:
        print("streams: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (StreamsError, OSError):
        return None  # nothing changed: the full path meets it again and reports it
    if result is None:
        return None
    text = updated_text(result) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except UnicodeEncodeError:
        sys.stdout.buffer.write(text.encode("utf-8", "replace"))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return EXIT_OK
