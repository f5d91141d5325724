"""The git hooks' plumbing: finding the worktree and the common dir from git's environment, running
git without ``subprocess`` (``posix_spawn``: importing ``subprocess`` costs a hook about 10 ms), and
the configuration in force, compiled (``config``). Standard library and ``streams.kernel`` only at
module level; ``streams.hook`` (the refusing hooks) and ``streams.hook_after`` (the advisory ones)
both stand on it.
"""

from __future__ import annotations

import os
import sys

from streams.kernel import hookcache
from streams.kernel.paths import CONFIG_FILE, NO_GRAFT_FILE, read_marker
from streams.kernel.reffiles import read_ref
from streams.kernel.rules import CompiledConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class HookError(Exception):
    """Something stops the hook from checking: the change is refused with this message."""


def say(message: str) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    sys.stderr.flush()


# --- processes, without importing subprocess (≈10 ms) ---------------------------------------------


_GIT: list[str] = []


def _git_exe() -> str:
    """git's absolute path: from GIT_EXEC_PATH (git sets it for hooks), else the first on PATH."""
    if not _GIT:
        found = "git"
        for folder in [os.environ.get("GIT_EXEC_PATH", ""), *os.environ.get("PATH", "").split(os.pathsep)]:
            candidate = os.path.join(folder, "git") if folder else ""
            if candidate and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
                found = candidate
                break
        _GIT.append(found)
    return _GIT[0]


_ENV: list[dict[str, str]] = []


def _env() -> dict[str, str]:
    """The hook's environment (GIT_DIR, GIT_INDEX_FILE… as git set them) with replace objects and
    grafts off, as for every git call streams makes (``streams.git.door.JUDGE_ENV``)."""
    if not _ENV:
        _ENV.append({**os.environ, "GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": NO_GRAFT_FILE})
    return _ENV[0]


def _spawn(args: Sequence[str]) -> tuple[int, int, int]:
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, w_out, 1),
        (os.POSIX_SPAWN_DUP2, w_err, 2),
    ]
    try:
        pid = os.posix_spawnp(_git_exe(), ["git", *args], _env(), file_actions=actions)
    finally:
        os.close(w_out)
        os.close(w_err)
    return pid, r_out, r_err


def _read(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _collect(proc: tuple[int, int, int]) -> tuple[int, bytes, bytes]:
    pid, r_out, r_err = proc
    out = _read(r_out)
    err = _read(r_err)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out, err


def git(*args: str) -> tuple[int, bytes, bytes]:
    """Run git with the hook's environment (GIT_DIR, GIT_INDEX_FILE… as git set them)."""
    return _collect(_spawn(args))


# --- where we are ----------------------------------------------------------------------------------


def git_dir() -> str:
    """This worktree's private git dir, as git told the hook (GIT_DIR) or as ``.git`` says."""
    env = os.environ.get("GIT_DIR")
    if env:
        return os.path.abspath(env)
    try:
        with open(".git", encoding="utf-8", errors="surrogateescape") as fh:
            line = fh.readline().strip()
    except IsADirectoryError:
        return os.path.abspath(".git")
    except OSError:
        return os.path.abspath(".")  # a bare repository: hooks run in the git dir
    if line.startswith("gitdir: "):
        return os.path.abspath(line[len("gitdir: ") :])
    return os.path.abspath(".git")


def common_dir(gd: str) -> str:
    env = os.environ.get("GIT_COMMON_DIR")
    if env:
        return os.path.abspath(env)
    try:
        with open(os.path.join(gd, "commondir"), encoding="utf-8", errors="surrogateescape") as fh:
            rel = fh.readline().strip()
    except OSError:
        return gd
    return os.path.normpath(os.path.join(gd, rel))


def marker(gd: str) -> str | None:
    return read_marker(gd)


def config(common: str) -> CompiledConfig | None:
    """The configuration in force (``streams.yaml`` as committed on the base), compiled.

    The cache holds while the base ref's file names the commit it was compiled for; when the base
    moved, one ``git rev-parse`` says whether ``streams.yaml`` did (if not, the cache learns the new
    commit); when it changed, the full loader compiles it and checks it against the base's files.
    """
    cc = hookcache.load(common)
    if cc is not None:
        if cc.in_force(common):
            return cc
        tip = read_ref(common, cc.base_ref)
        code, out, _ = git("rev-parse", "-q", "--verify", f"{tip or cc.base_ref}:{CONFIG_FILE}")
        if code == 0 and out.decode().strip() == cc.blob:
            if tip is not None:
                try:  # noqa: SIM105 - contextlib costs an import
                    hookcache.move_base(common, cc, tip)
                except OSError:
                    pass
            return cc
    return _full_load(common)


def _full_load(common: str) -> CompiledConfig | None:
    import site

    site.main()  # the shim starts Python with -S: add site-packages for PyYAML and pathspec
    from streams.kernel.errors import StreamsError
    from streams.ownership import refresh
    from streams.workspace import discover, load_config

    try:
        ws = discover(os.getcwd())
        configured = (
            ws.config_path.exists() or os.path.exists(hookcache.prefix_file(common)) or marker(git_dir()) is not None
        )
        if not configured and hookcache.load(common) is None:
            return None  # streams never configured here: nothing to enforce
        cfg = load_config(ws)
        return refresh(common, cfg)
    except StreamsError as exc:
        raise HookError(
            f"cannot check scope: {exc.message}\n"
            "Ask your human to fix the configuration (`streams check` lists every problem); "
            "do not edit streams.yaml yourself."
        ) from None
