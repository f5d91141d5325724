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
