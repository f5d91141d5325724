"""Processes on this machine."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie counts as exited)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22, clock ticks since boot), or None
    when there is no such process or no ``/proc``. With the pid it names one process: pids are reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def same_process(pid: int, started: str | None) -> bool:
    """Whether ``pid`` is alive and, when ``started`` is known, is still the process that started then."""
    if not pid_alive(pid):
        return False
    if not started:
        return True
    now = start_time(pid)
    return now is None or now == started


_HOLDER: str | None = None


def holder_name() -> str:
    """``user@host`` of this process."""
    global _HOLDER
    if _HOLDER is None:
        import socket

        user = os.environ.get("USER") or os.environ.get("LOGNAME") or os.environ.get("USERNAME")
        if not user:
            try:
                import pwd

                user = pwd.getpwuid(os.getuid()).pw_name
            except (ImportError, KeyError, OSError):
                user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        _HOLDER = f"{user}@{socket.gethostname()}"
    return _HOLDER


_GIT_PATH_VARS = (b"GIT_DIR=", b"GIT_WORK_TREE=", b"GIT_INDEX_FILE=", b"GIT_COMMON_DIR=")


def git_processes_in(roots: list[str]) -> list[int] | None:
    """Running git processes that may work in one of the directories ``roots`` (a worktree, a git
    dir): their current directory is inside one, or a path in their command line or in their
    ``GIT_DIR``/``GIT_WORK_TREE``/``GIT_INDEX_FILE``/``GIT_COMMON_DIR`` is. A git process whose
    directory cannot be read (another user's) counts: it may. None when this system has no
    ``/proc`` to ask: the caller cannot tell, and must not call a lock file stale."""
    if not os.path.isdir("/proc/self"):
        return None
    real = [os.path.realpath(r) for r in roots]

    def inside(path: str) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in real)

    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/comm", "rb") as fh:
                if not fh.read().startswith(b"git"):
                    continue
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except FileNotFoundError:
            continue  # gone meanwhile, or a zombie
        except OSError:
            found.append(int(entry))  # cannot tell: it may
            continue
        if inside(cwd) or any(inside(p) for p in _paths_named(entry, cwd)):
            found.append(int(entry))
    return sorted(found)


def _paths_named(pid: str, cwd: str) -> list[str]:
    """The paths a process's command line and git variables name, made absolute from ``cwd``."""
    named: list[bytes] = []
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            named += [a.split(b"=", 1)[-1] for a in fh.read().split(b"\0")[1:] if a]
        with open(f"/proc/{pid}/environ", "rb") as fh:
            named += [v.split(b"=", 1)[1] for v in fh.read().split(b"\0") if v.startswith(_GIT_PATH_VARS)]
    except OSError:
        pass
    return [os.path.realpath(os.path.join(cwd, os.fsdecode(p))) for p in named if p and not p.startswith(b"-")]


def _live_stats() -> list[tuple[int, list[str]]]:
    """Each live (non-zombie) process with the fields of its ``/proc/<pid>/stat`` after the
    command name (state, ppid, pgrp, session, …); empty with no ``/proc``."""
    found: list[tuple[int, list[str]]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] != "Z":
            found.append((int(entry), fields))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` (empty with no ``/proc``)."""
    return [pid for pid, fields in _live_stats() if int(fields[2]) == pgid]


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when no process of it is left (or none we may
    signal)."""
    import signal as _signal

    try:
        os.killpg(pgid, _signal.Signals(sig))
    except (ProcessLookupError, PermissionError):
        return False
    return True


def session_leaders_with_env(wanted: dict[str, str]) -> list[tuple[int, dict[str, str]]]:
    """Live processes that lead their own session (an agent as ``streams run`` starts one) and
    whose environment has every ``wanted`` variable at its value: (pid, its ``STREAMS_*``
    variables), by pid. Empty with no ``/proc``, and for processes whose environment cannot be read."""
    want = {f"{k}={v}".encode() for k, v in wanted.items()}
    found: list[tuple[int, dict[str, str]]] = []
    for pid, fields in _live_stats():
        try:
            if int(fields[3]) != pid:  # field 6: the session id
                continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if want.issubset(env):
            ours = [v.decode(errors="replace").split("=", 1) for v in env if v.startswith(b"STREAMS_") and b"=" in v]
            found.append((pid, {k: v for k, v in ours}))
    return sorted(found)
