"""Typed errors. Every expected failure is a ``StreamsError`` with a stable ``code``. Standard library only.

Every code is listed in ``CODES`` with the one exit code it always has and what it means; the exit
code of an error is looked up there, so one code can never exit two ways. ``tests/test_layers.py``
checks that every ``code=`` in the tree is listed. The CLI turns an error into one line on stderr (or
the JSON envelope) and its ``exit_code``.
"""

from __future__ import annotations

# Exit codes, the same for every command (DESIGN, "Layout and layers").
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_HALTED = 4
EXIT_SCOPE = 5
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


# code -> (exit code, what it means). Stable: agents and scripts match on these.
CODES: dict[str, tuple[int, str]] = {
    # generic
    "error": (EXIT_FAILURE, "an expected failure; the message names the cause and the fix"),
    "usage": (EXIT_USAGE, "bad command line: unknown option, missing argument, bad value"),
    "bad_option": (EXIT_USAGE, "an option's value is not valid (e.g. --completion 120)"),
    "bad_duration": (EXIT_FAILURE, "a duration or interval that does not parse (e.g. 30 without a unit)"),
    "no_stream": (EXIT_USAGE, "not inside a stream's worktree, and no --stream NAME given"),
    "os_error": (EXIT_FAILURE, "the file system refused: disk full, read-only, no permission (what it said is named)"),
    "internal": (EXIT_INTERNAL, "a bug in streams; a crash log holds the traceback"),
    # the repository and the configuration
    "not_a_repository": (EXIT_FAILURE, "not inside a git repository"),
    "config": (EXIT_FAILURE, "streams.yaml is missing or not valid (file:line:key named)"),
    "unknown_stream": (EXIT_FAILURE, "a stream name that streams.yaml does not configure"),
    "exists": (EXIT_FAILURE, "`streams init` would overwrite a file"),
    "git": (EXIT_FAILURE, "a git command failed; git's own message follows"),
    "no_base": (EXIT_FAILURE, "the base branch does not exist yet"),
    # worktrees
    "path_exists": (EXIT_FAILURE, "a stream's worktree path is taken by something else"),
    "bad_worktree": (EXIT_FAILURE, "a worktree's .git file is not what git writes"),
    "branch_checked_out": (EXIT_FAILURE, "the stream's branch is checked out in another worktree"),
    "worktree_lock_timeout": (EXIT_FAILURE, "another command held the worktree lock for too long"),
    "operation_in_progress": (EXIT_FAILURE, "a rebase, merge or cherry-pick is in progress in the worktree"),
    "dirty": (EXIT_FAILURE, "the worktree has uncommitted changes"),
    "unmerged": (EXIT_FAILURE, "the worktree has unmerged paths"),
    "no_worktree": (EXIT_FAILURE, "the stream has no worktree (run `streams start`)"),
    "wrong_branch": (EXIT_FAILURE, "the worktree is not on its stream's branch"),
    # progress
    "progress": (EXIT_FAILURE, "a progress update failed; the file was restored"),
    "not_your_stream": (EXIT_FAILURE, "a stream's worktree acting for another stream (refused)"),
    # leases
    "busy": (EXIT_BUSY, "held by someone else: a lease, a lock, the run"),
    "bad_path": (EXIT_FAILURE, "a path that cannot be locked (outside the repository, a directory, …)"),
    "not_locked": (EXIT_FAILURE, "unlock of a path this stream holds no lease on"),
    "lock_guard_timeout": (EXIT_FAILURE, "a lease's guard was held too long (a stuck process)"),
    # scope
    "scope_violation": (EXIT_SCOPE, "changes outside the stream's scope"),
    "no_branch": (EXIT_FAILURE, "verify: a stream branch that does not exist"),
    # hooks
    "hooks": (EXIT_FAILURE, "the scope hooks cannot be installed or removed"),
    "hooks_path": (EXIT_FAILURE, "core.hooksPath is set; streams' hooks would not run"),
    "hook_template_missing": (EXIT_FAILURE, "a hook template is missing from the installation"),
    "legacy_exists": (EXIT_FAILURE, "a foreign hook and its .legacy copy both exist"),
    "hooks_in_stream": (EXIT_FAILURE, "`streams hooks install/uninstall` run in a stream's worktree (refused)"),
    # sync and state
    "state": (EXIT_FAILURE, "state.json cannot be read or written"),
    "sync": (EXIT_FAILURE, "a sync failed; the message says where"),
    "halted": (EXIT_HALTED, "stopped for a human: a rebase conflict"),
    "fetch_failed": (EXIT_FAILURE, "the fetch from the remote failed"),
    "no_upstream": (EXIT_FAILURE, "the base (or <remote>/<base>) does not exist"),
    "not_halted": (EXIT_FAILURE, "--continue/--abort of a stream that is not halted"),
    "continue_failed": (EXIT_FAILURE, "`git rebase --continue` failed"),
    "incomplete": (EXIT_FAILURE, "--continue: the finished rebase lost commits of the original tip (kept under a ref)"),
    "abort_failed": (EXIT_FAILURE, "`--abort` could not restore the original tip"),
    "conflict_markers": (EXIT_HALTED, "--continue refused: files that were in conflict still hold conflict markers"),
    # streams run
    "run_failed": (EXIT_FAILURE, "a run finished with failures or skipped streams (each one's class and cause named)"),
    "run_blocked": (EXIT_HALTED, "a run finished with a stream blocked: it needs a human (its progress file says why)"),
    "run_interrupted": (EXIT_INTERRUPTED, "a run stopped by Ctrl-C (or TERM): its agents stopped, their work saved"),
    "run_stopped": (EXIT_HALTED, "a run paused, or waiting at a wave's gate: `streams resume` goes on"),
    "no_run": (EXIT_FAILURE, "no run of `streams run` is recorded (or not the one named)"),
    "wip_exists": (EXIT_FAILURE, "a WIP snapshot ref of that name exists already (snapshots are create-only)"),
    "wip_changed": (EXIT_FAILURE, "discard refused: the worktree changed since its WIP snapshot (nothing discarded)"),
    # approval gates
    "agent_refused": (
        EXIT_FAILURE,
        "approve, reject, request-changes run by an agent (STREAMS_AGENT=1): a human decides",
    ),
    "decided": (EXIT_FAILURE, "a wave's gate already holds a current decision (decisions are create-only)"),
    "not_awaiting": (EXIT_FAILURE, "approve without WAVE while no wave waits at a gate"),
    "no_report": (EXIT_FAILURE, "no wave report is written for that run or wave (yet): report, approve, reject"),
    "report_damaged": (EXIT_FAILURE, "a wave report whose digest does not match its content (changed after written)"),
    # streams merge
    "merge_stopped": (EXIT_HALTED, "merge: a stream was ejected or rolled back (each one's reason in the report)"),
    "nothing_to_undo": (EXIT_FAILURE, "merge --undo: no landing is recorded"),
    "nothing_to_continue": (EXIT_FAILURE, "merge --continue/--abort: no merge conflict is waiting for a human"),
    "moved": (EXIT_FAILURE, "merge --undo: the base moved since the landing (revert it instead)"),
    "diverged": (EXIT_FAILURE, "merge --push: the local base and the remote's differ"),
}


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def printable(text: str) -> str:
    """``text`` as it can stand in a one-line message or a table cell: unchanged when every character
    prints, else double-quoted with C escapes (as git quotes paths): a path holding a newline cannot
    break the line, a byte that is not UTF-8 shows as ``\\xff``."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def exit_code_of(code: str) -> int:
    entry = CODES.get(code)
    return entry[0] if entry is not None else EXIT_FAILURE


class StreamsError(Exception):
    """An expected failure: the message says what went wrong and how to fix it.

    Its exit code is the registry's for its ``code``.
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.code)


class UsageError(StreamsError):
    code = "usage"


class PathError(StreamsError):
    """A path a user typed that names no file streams can act on."""

    code = "bad_path"


class ConfigError(StreamsError):
    code = "config"


class NotARepositoryError(StreamsError):
    code = "not_a_repository"


class UnknownStreamError(StreamsError):
    code = "unknown_stream"


class BusyError(StreamsError):
    code = "busy"


class HaltedError(StreamsError):
    code = "halted"


class ScopeViolationError(StreamsError):
    code = "scope_violation"


class GitError(StreamsError):
    """A git command failed. Carries the command, its exit code and its stderr."""

    code = "git"

    def __init__(self, argv: tuple[str, ...], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        err = stderr.decode("utf-8", "replace").strip().splitlines()
        # git's most useful line is usually the first "fatal:"/"error:" one.
        detail = next((ln for ln in err if ln.startswith(("fatal:", "error:"))), err[0] if err else "")
        super().__init__(f"`{' '.join(argv)}` failed (exit {returncode}): {detail}".rstrip(": "))
