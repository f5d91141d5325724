"""A lease on a shared file, as a value and as a file: ``<common>/streams/locks/<dir>/.<name>.lock``.
Standard library only (the git hooks read leases).

``Lease`` is the file's JSON; ``LeaseView`` the one shape every command shows a lease in; reading
a lease (``read_lease``, ``live_lease``, ``lease_lookup``) is all the hooks need. Taking, renewing,
breaking and releasing one is ``streams.kernel.locks``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kernel.durations import iso_utc
from streams.kernel.paths import locks_dir

LEASE_VERSION = 1
LOCK_SUFFIX = ".lock"


# --- the lease ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A lease as its file holds it (a docstring: without one, dataclass loads inspect for a signature)."""

    path: str
    stream: str
    holder: str  # user@host
    pid: int
    acquired_at: float  # epoch seconds
    expires_at: float
    reason: str = ""
    lease_id: str = ""
    until_commit: bool = False
    landing: str = ""  # taken --until-commit and committed: the commit whose landing on the base releases it

    def live(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at

    def left(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return self.expires_at - (time.time() if now is None else now)

    def view(self, now: float | None = None) -> LeaseView:
        """The lease as commands report it at ``now``."""
        now = time.time() if now is None else now
        return LeaseView(
            path=self.path,
            stream=self.stream,
            holder=self.holder,
            pid=self.pid,
            acquired_at=self.acquired_at,
            expires_at=self.expires_at,
            reason=self.reason,
            lease_id=self.lease_id,
            until_commit=self.until_commit,
            landing=self.landing,
            live=self.live(now),
            seconds_left=round(self.left(now), 3),
        )

    def to_json(self) -> dict[str, Any]:
        """The lease file's contents (its own format, with its own ``version``)."""
        return {
            "version": LEASE_VERSION,
            "path": self.path,
            "stream": self.stream,
            "holder": self.holder,
            "pid": self.pid,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
            "acquired": iso_utc(self.acquired_at),
            "expires": iso_utc(self.expires_at),
            "reason": self.reason,
            "lease_id": self.lease_id,
            "until_commit": self.until_commit,
            "landing": self.landing,
        }

    @classmethod
    def from_json(cls, data: Any) -> Lease:
        """The lease in a lease file's JSON. ``ValueError`` when it is not one: a missing or empty
        path or stream, a time that is not a finite moment (NaN, Infinity, 1e400), a pid that is not
        a whole number."""
        if not isinstance(data, dict):
            raise ValueError("lease is not a JSON object")
        path, stream, lease_id = (_text(data, key) for key in ("path", "stream", "lease_id"))
        holder = data.get("holder")
        return cls(
            path=path,
            stream=stream,
            holder=holder if isinstance(holder, str) and holder.strip() else "unknown holder",
            pid=_pid(data.get("pid", 0)),
            acquired_at=_moment(data, "acquired_at"),
            expires_at=_moment(data, "expires_at"),
            reason=str(data.get("reason") or ""),
            lease_id=lease_id,
            until_commit=data.get("until_commit", False) is True,
            landing=str(data.get("landing") or ""),
        )


MAX_MOMENT = 1e11  # epoch seconds (year 5138): later is no moment a lease was written at, and time_t math overflows


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"lease {key} is missing or empty")
    return value


def _moment(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"lease {key} is not a number")
    moment = float(value)
    if not 0.0 <= moment < MAX_MOMENT:  # also NaN, Infinity, 1e400 (read as Infinity)
        raise ValueError(f"lease {key} {value!r} is not a moment")
    return moment


def _pid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ValueError(f"lease pid {value!r} is not a process id")
    return value


@dataclass(frozen=True)
class LeaseView:
    """A lease as every command reports it at one moment: ``lock``, ``unlock`` and ``locks --json``
    (``leases[]``, ``released[]``, ``previous``) and ``status --json`` (``streams[].locks[]``).

    ==============  ======  ==================================================================
    field           type    meaning
    ==============  ======  ==================================================================
    path            str     the shared file, relative to the repository root
    stream          str     the stream holding it ("" for a damaged lease file)
    holder          str     user@host of the process that took it
    pid             int     that process (it may have exited: the lease outlives it)
    acquired_at     float   when it was taken (epoch seconds)
    expires_at      float   when it expires unless renewed (epoch seconds)
    reason          str     why it was taken (``--reason``)
    lease_id        str     stays the same across renewals
    until_commit    bool    released by the stream's next commit of the path (or, when the
                            path has no conflict-free merge driver, by that commit's landing)
    landing         str     the committed change it waits to see land on the base ("" when none)
    live            bool    not expired at the time of the report
    seconds_left    float   until expiry (negative once expired)
    ==============  ======  ==================================================================
    """

    path: str
    stream: str
    holder: str
    pid: int
    acquired_at: float
    expires_at: float
    reason: str
    lease_id: str
    until_commit: bool
    landing: str
    live: bool
    seconds_left: float


def new_lease_id() -> str:
    return os.urandom(8).hex()


# --- where leases live ---------------------------------------------------------------------------


def locks_root(common_dir: Path) -> Path:
    return Path(locks_dir(common_dir))


def lease_file(common_dir: Path, path: str) -> Path:
    """``<common>/streams/locks/<dir>/.<name>.lock`` for the repository path ``path``."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a normalised repository path: {path!r}")
    return locks_root(common_dir).joinpath(*parts[:-1], f".{parts[-1]}{LOCK_SUFFIX}")


def read_file(file: Path, path: str) -> Lease | None:
    """The lease in ``file``, or None. A damaged file reads as a lease that has already expired.

    Leases are published whole, so damage means someone edited the file or the machine lost it
    mid-write; treating it as expired keeps the path from being stuck forever.
    """
    try:
        with open(file, "rb") as fh:
            data = fh.read()
            st = os.fstat(fh.fileno())
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return Lease.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return Lease(
            path=path,
            stream="",
            holder="?",
            pid=0,
            acquired_at=st.st_mtime,
            expires_at=st.st_mtime,
            reason="damaged lease file",
            lease_id=f"damaged-{st.st_ino}-{st.st_mtime_ns}",
        )


# --- reading ---------------------------------------------------------------------------------------


def read_lease(common_dir: Path, path: str) -> Lease | None:
    """The lease on ``path``, live or expired, or None."""
    return read_file(lease_file(common_dir, path), path)


def live_lease(common_dir: Path, path: str, now: float | None = None) -> Lease | None:
    """The live lease on ``path``, or None (free, or expired). The hooks call this."""
    try:
        lease = read_lease(common_dir, path)
    except ValueError:
        return None
    return lease if lease is not None and lease.live(now) else None


def lease_lookup(common_dir: str | os.PathLike[str]) -> Callable[[str], tuple[str, float] | None]:
    """``path -> (holding stream, expires_at)`` for live leases: the rules' view of the leases
    (``kernel.rules.CompiledConfig.judge``), for the hooks and the full code alike."""
    root = Path(common_dir)

    def lease_of(path: str) -> tuple[str, float] | None:
        lease = live_lease(root, path)
        return (lease.stream, lease.expires_at) if lease is not None else None

    return lease_of
