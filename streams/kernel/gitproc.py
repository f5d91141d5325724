"""The environment streams gives git, and git processes run side by side without ``subprocess``.

``no_git_env`` and ``english`` are the one definition of what every git call streams makes runs
with (``streams.git.door`` uses them for ``run`` and ``run_unpiped``). ``run_many`` starts several
read-only git processes at once with ``os.posix_spawn`` and collects their output through pipes
(``subprocess`` alone costs about 13 ms of imports on the reference machine, more than a bare
interpreter's start): what the commands answered before click loads use
(``streams.cli.quickread``, ``streams.cli.quickstatus``).

Standard library only: the kernel floor.
"""

from __future__ import annotations

import os

from streams.kernel.paths import NO_GRAFT_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# `git rev-parse --local-env-vars`: the variables that tie a git process to one repository.
LOCAL_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
        "GIT_QUARANTINE_PATH",
    }
)


# Git's object-rewriting knobs, off for every call streams makes: `git replace` and grafts could
# otherwise show the judge (hooks, verify, a server's pre-receive) other commits than the ones a
# branch really holds, and sync would rebase the replacements.
JUDGE_ENV = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": NO_GRAFT_FILE}


def no_git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: ``os.environ``) without git's repository-locating variables, with
    replace objects and grafts off (``JUDGE_ENV``)."""
    source = os.environ if env is None else env
    out = {
        k: v
        for k, v in source.items()
        if k not in LOCAL_ENV_VARS and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    out["GIT_TERMINAL_PROMPT"] = "0"
    out.update(JUDGE_ENV)
    return out


def english(env: dict[str, str]) -> dict[str, str]:
    """``env`` with git's messages in English, which is what streams parses (a rebase's blocking
    files, a push's rejection): ``LC_MESSAGES=C`` and no ``LANGUAGE``. ``LC_ALL`` would override
    them, so its value moves to ``LC_CTYPE``, where it keeps deciding the character set."""
    env.pop("LANGUAGE", None)
    lc_all = env.pop("LC_ALL", "")
    if lc_all:
        env["LC_CTYPE"] = lc_all
    env["LC_MESSAGES"] = "C"
    return env


def find_program(name: str, env: Mapping[str, str]) -> str | None:
    """Where ``name`` is on ``env``'s PATH (as ``execvpe`` would find it), or None."""
    for folder in os.get_exec_path(env):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return path
    return None


def _default_signals() -> tuple[int, ...]:
    """SIGPIPE and SIGXFSZ, which Python ignores and a child would inherit ignored (``subprocess``
    resets them too), without importing ``signal`` (it imports ``enum``)."""
    try:
        from _signal import SIGPIPE, SIGXFSZ  # type: ignore[import-not-found]
    except ImportError:
        import signal

        return (signal.SIGPIPE, signal.SIGXFSZ)
    return (SIGPIPE, SIGXFSZ)


Call = tuple["Sequence[str]", str, "Mapping[str, str] | None", "bytes | None"]  # args, cwd, extra env, stdin


NO_OPTIONAL_LOCKS = {"GIT_OPTIONAL_LOCKS": "0"}  # read-only polling: never an agent's index.lock


def run_many(calls: Sequence[Call], *, parallel: int = 8) -> list[tuple[int, bytes]]:
    """Run every ``git ARGS`` of ``calls`` (``(args, cwd, extra env, stdin bytes)``), at most
    ``parallel`` at a time, as ``git -C CWD ARGS`` in the environment ``streams.git.door.run``
    gives git, plus each call's extra variables (``NO_OPTIONAL_LOCKS`` for a read that must not
    take an agent's ``index.lock``); their ``(exit code, stdout)`` in the same order (stderr is
    discarded: a caller that needs git's words asks the full way). ``OSError`` when git cannot be
    started."""
    import select

    base = english(no_git_env())
    program = find_program("git", base)
    if program is None:
        raise FileNotFoundError("git is not on PATH")
    signals = _default_signals()
    results: list[tuple[int, bytes] | None] = [None] * len(calls)
    running: dict[int, tuple[int, int, list[bytes]]] = {}  # stdout's read end -> (call, pid, chunks)
    pending: dict[int, memoryview] = {}  # stdin's write end -> what is left to write
    poller = select.poll()

    def start(i: int) -> None:
        args, cwd, extra, stdin = calls[i]
        env = {**base, **extra} if extra else base
        read_out, write_out = os.pipe()
        actions: list[tuple[object, ...]] = [(os.POSIX_SPAWN_DUP2, write_out, 1)]
        actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
        read_in = write_in = -1
        try:
            if stdin is None:
                actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
            else:
                read_in, write_in = os.pipe()
                actions.append((os.POSIX_SPAWN_DUP2, read_in, 0))
            pid = os.posix_spawn(program, ["git", "-C", cwd, *args], env, file_actions=actions, setsigdef=signals)
        except BaseException:
            for fd in (read_out, write_in):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            os.close(write_out)
            if read_in >= 0:
                os.close(read_in)
        running[read_out] = (i, pid, [])
        poller.register(read_out, select.POLLIN)
        if stdin is not None:
            os.set_blocking(write_in, False)
            pending[write_in] = memoryview(stdin)
            poller.register(write_in, select.POLLOUT)

    def finish(fd: int) -> None:
        i, pid, chunks = running.pop(fd)
        poller.unregister(fd)
        os.close(fd)
        results[i] = (os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), b"".join(chunks))

    queue = iter(range(len(calls)))
    try:
        for i in queue:
            start(i)
            if len(running) >= parallel:
                break
        while running:
            for fd, _event in poller.poll():
                if fd in pending:
                    left = pending[fd]
                    try:
                        left = left[os.write(fd, left[:65536]) :]
                    except BrokenPipeError:
                        left = left[:0]
                    if left:
                        pending[fd] = left
                    else:
                        poller.unregister(fd)
                        os.close(fd)
                        del pending[fd]
                elif fd in running:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        running[fd][2].append(chunk)
                        continue
                    finish(fd)
                    i = next(queue, -1)
                    if i >= 0:
                        start(i)
    finally:
        for fd in pending:
            os.close(fd)
        for fd, (_i, pid, _chunks) in running.items():
            os.close(fd)  # a git still writing gets SIGPIPE
            os.waitpid(pid, 0)
    return [r for r in results if r is not None]
