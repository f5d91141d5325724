"""Typed errors. Every expected failure is a ``StreamsError`` with a stable ``code``.

The CLI turns them into one line on stderr (or the JSON envelope) and ``exit_code``.
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


class StreamsError(Exception):
    """An expected failure: the message says what went wrong and how to fix it."""

    code = "error"
    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UsageError(StreamsError):
    code = "usage"
    exit_code = EXIT_USAGE


class ConfigError(StreamsError):
    code = "config"


class NotARepositoryError(StreamsError):
    code = "not_a_repository"


class UnknownStreamError(StreamsError):
    code = "unknown_stream"


class BusyError(StreamsError):
    code = "busy"
    exit_code = EXIT_BUSY


class HaltedError(StreamsError):
    code = "halted"
    exit_code = EXIT_HALTED


class ScopeViolationError(StreamsError):
    code = "scope_violation"
    exit_code = EXIT_SCOPE


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
