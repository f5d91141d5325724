"""Processes on this machine."""

from __future__ import annotations

import os
from pathlib import Path


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
        stat = Path(f"/proc/{pid}/stat").read_text()
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
