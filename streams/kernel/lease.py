"""A lease on a shared file, as a value and as a file: ``<common>/streams/locks/<dir>/.<name>.lock``.
Standard library only (the git hooks read leases).

``Lease`` is the file's JSON; ``LeaseView`` the one shape every command shows a lease in; reading
a lease (``read_lease``, ``live_lease``, ``lease_lookup``) is all the hooks need. Taking, renewing,
breaking and releasing one is ``streams.kernel.locks``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kernel import leasedata
from streams.kernel.durations import iso_utc
from streams.kernel.paths import locks_dir

LEASE_VERSION = 1
LOCK_SUFFIX = leasedata.LOCK_SUFFIX


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
        return LeaseView(**leasedata.view(vars(self), time.time() if now is None else now))  # type: ignore[arg-type]

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
        """The lease in a lease file's JSON (``leasedata.fields``). ``ValueError`` when it is not one."""
        return cls(**leasedata.fields(data))  # type: ignore[arg-type]


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
    """The lease in ``file``, or None. A damaged file reads as a lease that has already expired
    (``leasedata.read``)."""
    found = leasedata.read(str(file), path)
    return None if found is None else Lease(**found)  # type: ignore[arg-type]


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
