"""A lease file read into its fields, and a lease's view at a moment, as plain dicts.

The one reading of a lease file: ``streams.kernel.lease`` builds its ``Lease`` and ``LeaseView``
from these, and the quick ``status --json`` (``streams.cli.quickstatus``), which answers before
``dataclasses``, ``pathlib`` and ``json`` load, writes these dicts as they are (same keys, same
order as the dataclasses' fields). Standard library only: the kernel floor.
"""

from __future__ import annotations

import os

from streams.kernel import leanjson

LOCK_SUFFIX = ".lock"
TEMP_SUFFIX = ".tmp"  # a lease being published (``streams.kernel.locks``)
FIELDS = (
    "path", "stream", "holder", "pid", "acquired_at", "expires_at", "reason", "lease_id", "until_commit", "landing",
)  # fmt: skip
MAX_MOMENT = 1e11  # epoch seconds (year 5138): later is no moment a lease was written at, and time_t math overflows


def fields(data: object) -> dict[str, object]:
    """The lease in a lease file's JSON. ``ValueError`` when it is not one: a missing or empty
    path or stream, a time that is not a finite moment (NaN, Infinity, 1e400), a pid that is not
    a whole number."""
    if not isinstance(data, dict):
        raise ValueError("lease is not a JSON object")
    path, stream, lease_id = (_text(data, key) for key in ("path", "stream", "lease_id"))
    holder = data.get("holder")
    return {
        "path": path,
        "stream": stream,
        "holder": holder if isinstance(holder, str) and holder.strip() else "unknown holder",
        "pid": _pid(data.get("pid", 0)),
        "acquired_at": _moment(data, "acquired_at"),
        "expires_at": _moment(data, "expires_at"),
        "reason": str(data.get("reason") or ""),
        "lease_id": lease_id,
        "until_commit": data.get("until_commit", False) is True,
        "landing": str(data.get("landing") or ""),
    }


def _text(data: dict[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"lease {key} is missing or empty")
    return value


def _moment(data: dict[str, object], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"lease {key} is not a number")
    moment = float(value)
    if not 0.0 <= moment < MAX_MOMENT:  # also NaN, Infinity, 1e400 (read as Infinity)
        raise ValueError(f"lease {key} {value!r} is not a moment")
    return moment


def _pid(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ValueError(f"lease pid {value!r} is not a process id")
    return value


def _json(data: bytes) -> object:
    """``json.loads(data)``: UTF-8 by the lean reader; any other encoding json detects, by json."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or text.startswith("\ufeff") or "\x00" in text[:4]:
        import json

        return json.loads(data)
    return leanjson.loads(text)


def read(file: str, path: str) -> dict[str, object] | None:
    """The lease in ``file`` (for the repository path ``path``), or None when there is none. A
    damaged file reads as a lease that has already expired.

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
        return fields(_json(data))
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return {
            "path": path,
            "stream": "",
            "holder": "?",
            "pid": 0,
            "acquired_at": st.st_mtime,
            "expires_at": st.st_mtime,
            "reason": "damaged lease file",
            "lease_id": f"damaged-{st.st_ino}-{st.st_mtime_ns}",
            "until_commit": False,
            "landing": "",
        }


def view(lease: dict[str, object], now: float) -> dict[str, object]:
    """``lease`` as commands report it at ``now`` (``LeaseView``'s fields): ``live``, ``seconds_left``."""
    expires_at = lease["expires_at"]
    assert isinstance(expires_at, float)
    return {**{key: lease[key] for key in FIELDS}, "live": now < expires_at, "seconds_left": round(expires_at - now, 3)}


def read_all(root: str) -> tuple[list[dict[str, object]], list[str]]:
    """``(every lease under the locks folder root, sorted by path; the temp files of leases being
    published)``: ``kernel.locks.list_leases`` sweeps those, the quick paths step aside for them."""
    found, temps = files(root)
    leases = [lease for file, path in found if (lease := read(file, path)) is not None]
    return sorted(leases, key=lambda lease: str(lease["path"])), temps


def files(root: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(lease file, repository path)], [temp files])`` under the locks folder ``root``, in
    ``os.walk``'s order (``<dir>/.<name>.lock`` holds the lease on ``<dir>/<name>``)."""
    found: list[tuple[str, str]] = []
    temps: list[str] = []
    for dirpath, _dirs, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in names:
            if name.endswith(TEMP_SUFFIX):
                temps.append(os.path.join(dirpath, name))
                continue
            if not (name.startswith(".") and name.endswith(LOCK_SUFFIX)) or len(name) <= len(LOCK_SUFFIX) + 1:
                continue
            base = name[1 : -len(LOCK_SUFFIX)]
            path = base if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{base}"
            found.append((os.path.join(dirpath, name), path))
    return found, temps
