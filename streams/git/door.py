"""The door itself: ``run`` and ``run_unpiped``, and the environment they give git.

Plain subprocess (``run_unpiped``: ``os.posix_spawn``), ``-z`` output wherever git offers it, an explicit ``cwd`` on every call, no
prompts, messages in English, and git's repository-locating variables stripped so that a command
run from inside a hook (where git exports ``GIT_DIR``, ``GIT_INDEX_FILE``, …) acts on the
repository its ``cwd`` names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NewType

from streams.kernel.errors import GitError, NotARepositoryError, StreamsError
from streams.kernel.gitproc import JUDGE_ENV, LOCAL_ENV_VARS, english, find_program, no_git_env
from streams.kernel.paths import ZERO_OID

__all__ = [
    "JUDGE_ENV",
    "LOCAL_ENV_VARS",
    "ZERO_OID",
    "Oid",
    "RefName",
    "Result",
    "branch_ref",
    "no_git_env",
    "out",
    "run",
    "run_unpiped",
    "split_z",
    "version",
]

# Typed git values (as git-revise does): an object id as git prints it (40 hex digits), a full ref
# name ("refs/heads/streams/api"). NewType: free at run time, checked by mypy.
Oid = NewType("Oid", str)
RefName = NewType("RefName", str)

# --- the door: run, run_unpiped, and the environment they give git ------------------------------

# The environment every git call gets: one definition, on the kernel floor (the quick paths, which
# answer before this module loads, start git with it too).
_english = english


def branch_ref(branch: str) -> RefName:
    """A branch's full ref: ``streams/api`` -> ``refs/heads/streams/api`` (the branch, even when a
    tag has the same name)."""
    return RefName(f"refs/heads/{branch}")


@dataclass(frozen=True)
class Result:
    """What a git process gave back: its exit code and output."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")

    def first_error(self) -> str:
        """git's most telling line: the first ``fatal:``/``error:`` one, else the first (hints left out)."""
        lines = [ln.strip() for ln in (self.stderr + b"\n" + self.stdout).decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("hint:")]
        return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")

    def says(self, limit: int = 8) -> str:
        """What git (and its hooks) said, hints left out, on one line."""
        text = (self.stderr if self.stderr.strip() else self.stdout).decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines()]
        return " / ".join([ln for ln in lines if ln and not ln.startswith("hint:")][:limit])

    def blocking_files(self) -> list[str]:
        """The paths git lists (tab-indented) after a "would be overwritten" error, or names in
        ``read-tree -m``'s "Entry 'PATH' not uptodate" / "would be overwritten" lines."""
        lines = self.stderr.decode("utf-8", "replace").splitlines()
        entries = [
            ln.split("'", 1)[1].rsplit("'", 1)[0]
            for ln in lines
            if ln.startswith(("error: Entry '", "fatal: Entry '")) and ln.count("'") >= 2
        ]
        if entries:
            return list(dict.fromkeys(entries))
        start = next((i for i, ln in enumerate(lines) if "would be overwritten" in ln), None)
        if start is None:
            return []
        files = []
        for ln in lines[start + 1 :]:
            if not ln.startswith("\t"):
                break
            files.append(ln.strip())
        return files


def run(
    *args: str,
    cwd: Path | str,
    check: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    optional_locks: bool = True,
) -> Result:
    """Run ``git ARGS`` in ``cwd``. With ``check`` a non-zero exit raises ``GitError``.

    ``env`` entries are added to the stripped environment. ``optional_locks=False`` sets
    ``GIT_OPTIONAL_LOCKS=0`` so that read-only polling never takes an agent's ``index.lock``.
    """
    full_env = _english(no_git_env())
    if env:
        full_env.update(env)
    if not optional_locks:
        full_env["GIT_OPTIONAL_LOCKS"] = "0"
    argv = ("git", *args)
    import subprocess  # here: `streams progress` commits through run_unpiped alone, without it (~3 ms)

    try:
        proc = subprocess.run(argv, cwd=cwd, input=input, capture_output=True, env=full_env, check=False)
    except FileNotFoundError as exc:  # git missing, or cwd gone
        if not Path(cwd).is_dir():
            raise NotARepositoryError(f"directory {cwd} does not exist") from exc
        raise GitError(argv, 127, b"", b"fatal: git is not installed or not on PATH") from exc
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise GitError(argv, proc.returncode, proc.stdout, proc.stderr)
    return result


def out(*args: str, cwd: Path | str, **kwargs: object) -> str:
    """stdout of a successful ``git ARGS``, decoded, trailing newline removed."""
    return run(*args, cwd=cwd, **kwargs).text.rstrip("\n")  # type: ignore[arg-type]


def split_z(data: bytes) -> list[str]:
    """Split NUL-terminated ``-z`` output into paths (surrogateescape keeps odd bytes intact)."""
    return [p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p]


def run_unpiped(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None) -> Result:
    """``run(..., check=False)`` with git's output in temp files instead of pipes.

    For commands that change state (rebase, commit, push): if the caller is killed, git finishes
    its work instead of dying of SIGPIPE at its next write and leaving the job half done.
    """
    full_env = _english(no_git_env())
    if env:
        full_env.update(env)
    argv = ("git", *args)
    with _scratch_file() as out, _scratch_file() as err:
        code = _spawn_and_wait(argv, cwd, full_env, out.fileno(), err.fileno())
        out.seek(0)
        err.seek(0)
        return Result(code, out.read(), err.read())


def _spawn_and_wait(argv: Sequence[str], cwd: Path | str, env: dict[str, str], out: int, err: int) -> int:
    """Run ``argv`` in ``cwd`` (``git -C``) with stdin from /dev/null and stdout, stderr into the
    files ``out``, ``err``, and wait for it: its exit code (minus the signal that killed it), as
    ``subprocess.run`` would give, with ``os.posix_spawn`` (the ``subprocess`` module costs a
    `streams progress` 3 ms of imports). As there: SIGPIPE and SIGXFSZ are reset for git, and
    interrupted, git is given 0.25 s to end on the same Ctrl-C, then killed."""
    import signal

    if not os.path.isdir(cwd):
        raise NotARepositoryError(f"directory {cwd} does not exist")
    program = find_program(argv[0], env)
    if program is None:
        raise GitError(tuple(argv), 127, b"", b"fatal: git is not installed or not on PATH")
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, out, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, err, 2))
    pid = os.posix_spawn(
        program, [argv[0], "-C", str(cwd), *argv[1:]], env, file_actions=actions,
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
    )  # fmt: skip
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except BaseException as exc:
        try:
            if isinstance(exc, KeyboardInterrupt):
                import time

                for _ in range(25):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        raise
                    time.sleep(0.01)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped already
        raise


def _scratch_file() -> BinaryIO:
    """An unnamed file for a git process's output: in memory where Linux offers that (no
    ``tempfile`` import, 5-8 ms of a `streams progress`), else a temporary file."""
    if hasattr(os, "memfd_create"):
        try:
            return open(os.memfd_create("streams-git"), "w+b")
        except OSError:
            pass
    import tempfile

    return tempfile.TemporaryFile()


def version() -> str:
    """``git --version``'s line, or why there is none (for crash logs: never raises)."""
    try:
        return run("--version", cwd=os.getcwd(), check=False).text.strip() or "git --version said nothing"
    except (StreamsError, OSError) as exc:
        return f"git not found ({exc})"
