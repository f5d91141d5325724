"""Leases on shared files: ``<common>/streams/locks/<dir>/.<name>.lock``.

A lease is a small JSON file (path, stream, holder, pid, acquired_at, expires_at, reason,
lease_id, until_commit) that outlives the command that took it. It is published complete and
atomically: temp file, fsync, ``os.link(tmp, lock)``, which fails when a lease already exists (so
two takers can never both win; ``os.rename`` would silently replace). Every change to an existing
lease (renew, steal, break of an expired one, release) happens under a short guard next to it,
``.<name>.lock.guard`` (``fcntl.flock``, as ``filelock`` does it); since a new lease can only be
created where none exists, the guard is all it takes to keep those changes from interleaving.

The guard is never unlinked, also not when its lease is released: another process may have it
open and be waiting for the ``flock``; unlinked, a third process would create a new guard file,
lock that one, and both would be inside the critical section. So a released lease leaves its
guard (and its folders) behind, and nothing on the hot path looks at them: the post-commit shim
starts Python only while some ``.<name>.lock`` file (a lease) exists (``post-commit.in``).

The lease as a value and a file, and reading one, are ``streams.kernel.lease``.

Standard library only, at import time and at run time on POSIX: the git hooks import this module
(``release_committed``) in an isolated interpreter without site-packages.
``filelock`` is imported, lazily, only where ``fcntl`` does not exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from streams.kernel import events, leasedata
from streams.kernel.durations import clock as clock  # locks.clock: the CLI and tests say it so
from streams.kernel.durations import format_duration
from streams.kernel.errors import BusyError, StreamsError, printable
from streams.kernel.gitparse import rebase_dir
from streams.kernel.lease import (
    LEASE_VERSION,
    Lease,
    LeaseView,
    lease_file,
    lease_lookup,
    live_lease,
    locks_root,
    new_lease_id,
    read_file,
    read_lease,
)
from streams.kernel.mutex import held, open_making_dirs
from streams.kernel.paths import REBASE_LEASES_FILE
from streams.kernel.procs import holder_name

GUARD_SUFFIX = ".guard"
TEMP_SUFFIX = leasedata.TEMP_SUFFIX
STALE_TEMP_SECONDS = 600.0  # `streams locks` (and status) sweep older temp files of killed writers
GUARD_TIMEOUT = 10.0  # the guard is held for microseconds; anything near this is a stuck process
BACKOFF_START = 0.002
BACKOFF_MAX = 0.25
MAX_RACES = 64  # lease changed under us this many times in one attempt: report busy, let the caller retry


class NotLockedError(StreamsError):
    code = "not_locked"


class LockBusyError(BusyError):
    """A path is held by another stream. ``lease`` is the holder's lease."""

    def __init__(self, message: str, lease: Lease) -> None:
        super().__init__(message)
        self.lease = lease


class LockAction(StrEnum):
    """What ``acquire`` did to get a path (``lock --json``'s ``leases[].action``)."""

    TAKE = "take"  # nobody held it
    RENEW = "renew"  # the stream held it already: same lease id, new expiry
    BREAK = "break"  # took over an expired lease (or a damaged lease file)
    STEAL = "steal"  # --force: took a live lease from another stream


@dataclass(frozen=True)
class Taken:
    """One path of a successful ``acquire``."""

    path: str
    action: LockAction
    lease: Lease
    previous: Lease | None  # renew: our lease before; break: the expired one; steal: the victim's


# --- where leases live ---------------------------------------------------------------------------


def _guard_file(file: Path) -> Path:
    return file.with_name(file.name + GUARD_SUFFIX)


def _write_temp(file: Path, lease: Lease) -> Path:
    data = (json.dumps(lease.to_json(), indent=1, sort_keys=True) + "\n").encode()
    tmp = file.with_name(f"{file.name}.{new_lease_id()}{TEMP_SUFFIX}")
    fd = open_making_dirs(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _sweep_temp(tmp: Path) -> None:
    """Remove a temp file a writer killed between writing and publishing left behind. A live
    writer keeps its temp file for microseconds; one this old belongs to nobody."""
    try:
        if time.time() - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
            tmp.unlink()
    except OSError:
        pass


def _publish(file: Path, lease: Lease) -> bool:
    """Create the lease file complete and atomically; False when a lease is already there."""
    tmp = _write_temp(file, lease)
    try:
        os.link(tmp, file)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _overwrite(file: Path, lease: Lease) -> None:
    """Replace an existing lease's content. Only ever called under the file's guard."""
    tmp = _write_temp(file, lease)
    try:
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _guard(file: Path) -> AbstractContextManager[None]:
    """The short critical section around changes to an existing lease: a kernel lock on
    ``.<name>.lock.guard`` (never unlinked), ``streams.kernel.mutex.held``."""
    guard = _guard_file(file)
    return held(guard, timeout=GUARD_TIMEOUT, busy=lambda: _guard_timeout(guard))


def _guard_timeout(guard: Path) -> StreamsError:
    return StreamsError(
        f"{guard} has been held for {GUARD_TIMEOUT:.0f} s by another process; if none is running "
        "`streams`, something is stuck: find it with `fuser` and stop it",
        code="lock_guard_timeout",
    )


def _break(file: Path, path: str, expired: Lease) -> bool:
    """Remove ``expired`` if it is still the lease at ``file`` and still expired. Call under the guard.

    Rename to a private name first, then re-read what was renamed: if it is not the lease judged
    expired (a writer that does not take the guard), put it back.
    """
    cur = read_file(file, path)
    if cur is None or cur.lease_id != expired.lease_id or cur.live():
        return False
    private = file.with_name(f"{file.name}.{new_lease_id()}.broken")
    try:
        os.rename(file, private)
    except FileNotFoundError:
        return False
    got = read_file(private, path)
    if got is None or got.lease_id != expired.lease_id or got.live():
        with suppress(FileExistsError):
            os.link(private, file)
        private.unlink(missing_ok=True)
        return False
    private.unlink(missing_ok=True)
    return True


# --- reading ---------------------------------------------------------------------------------------


def list_leases(common_dir: Path) -> list[Lease]:
    """Every lease, expired ones included, sorted by path (a lease being published, a temp file a
    killed taker left, is swept)."""
    found, temps = leasedata.read_all(str(locks_root(common_dir)))
    for tmp in temps:
        _sweep_temp(Path(tmp))
    return [Lease(**lease) for lease in found]  # type: ignore[arg-type]


# --- taking ----------------------------------------------------------------------------------------


def _try_take(common_dir: Path, stream: str, path: str, fresh: Lease, force: bool) -> Taken | Lease:
    """Take, renew, break-and-take or steal one path; the blocking lease when another stream holds it."""
    file = lease_file(common_dir, path)
    last: Lease | None = None
    for _ in range(MAX_RACES):
        if _publish(file, fresh):
            return Taken(path, LockAction.TAKE, fresh, None)
        cur = read_file(file, path)
        if cur is None:
            continue  # released between our link and our read
        last = cur
        if cur.stream == stream:
            with _guard(file):
                again = read_file(file, path)
                if again is None or again.lease_id != cur.lease_id:
                    continue
                renewed = replace(
                    fresh,
                    lease_id=cur.lease_id,
                    acquired_at=cur.acquired_at,
                    reason=fresh.reason or cur.reason,
                )
                _overwrite(file, renewed)
            return Taken(path, LockAction.RENEW, renewed, cur)
        if not cur.live():
            with _guard(file):
                if not _break(file, path, cur):
                    continue
                events.append(
                    common_dir,
                    "lock.expire",
                    path=path,
                    stream=cur.stream,
                    lease_id=cur.lease_id,
                    expired_at=cur.expires_at,
                    holder=cur.holder,
                )
                events.append(
                    common_dir,
                    "lock.break",
                    path=path,
                    stream=stream,
                    lease_id=cur.lease_id,
                    previous_stream=cur.stream,
                    expired_at=cur.expires_at,
                )
                if _publish(file, fresh):
                    return Taken(path, LockAction.BREAK, fresh, cur)
            continue
        if force:
            with _guard(file):
                again = read_file(file, path)
                if again is None or again.lease_id != cur.lease_id:
                    continue
                _overwrite(file, fresh)
            return Taken(path, LockAction.STEAL, fresh, cur)
        return cur
    if last is None:
        raise BusyError(f"{printable(path)}: its lease changed {MAX_RACES} times while taking it; retry", code="busy")
    return last


def _undo(common_dir: Path, taken: Taken) -> None:
    """Put one path back as it was before ``taken`` (all-or-none rollback)."""
    file = lease_file(common_dir, taken.path)
    with _guard(file):
        cur = read_file(file, taken.path)
        if cur is None or cur.lease_id != taken.lease.lease_id:
            return
        if taken.action in (LockAction.RENEW, LockAction.STEAL) and taken.previous is not None:
            _overwrite(file, taken.previous)
        else:
            file.unlink(missing_ok=True)


def _take_all(
    common_dir: Path, stream: str, paths: Sequence[str], make: Callable[[str], Lease], force: bool
) -> list[Taken] | tuple[str, Lease]:
    done: list[Taken] = []
    try:
        for path in paths:
            got = _try_take(common_dir, stream, path, make(path), force)
            if isinstance(got, Lease):
                _undo_all(common_dir, done)
                return path, got
            done.append(got)
    except BaseException:  # Ctrl-C or an I/O error half-way: none, not some
        _undo_all(common_dir, done)
        raise
    return done


def _undo_all(common_dir: Path, done: list[Taken]) -> None:
    for t in reversed(done):
        _undo(common_dir, t)
    done.clear()


def busy_message(path: str, lease: Lease, now: float | None = None) -> str:
    why = f": {printable(lease.reason)}" if lease.reason else ""
    landing = f" until its change {lease.landing[:12]} lands on the base (at most" if lease.landing else " until"
    return (
        f"{printable(path)} is locked by stream {lease.stream} ({printable(lease.holder)}{why})"
        f"{landing} {clock(lease.expires_at, now)} "
        f"({format_duration(lease.left(now))} left){')' if lease.landing else ''}"
    )


def acquire(
    common_dir: Path,
    stream: str,
    paths: Iterable[str],
    *,
    ttl: float,
    reason: str = "",
    until_commit: bool = False,
    force: bool = False,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> list[Taken]:
    """Take leases on every path for ``stream``, all or none.

    A path the stream already holds is renewed (same lease id and acquired_at, new expiry, pid,
    until_commit, and reason when one is given). An expired lease of another stream is broken and
    taken; a live one makes the whole call fail with ``LockBusyError`` (exit 3) unless ``force``
    (steal, recorded) or ``wait`` > 0 (retry with backoff and jitter until it frees or the wait
    ends, telling ``on_wait`` once). Paths are taken in sorted order and nothing is held while
    waiting, so two waiters can never deadlock.
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    todo = sorted(dict.fromkeys(paths))
    if not todo:
        return []
    pid = os.getpid()
    who = holder_name()
    deadline = time.monotonic() + max(wait, 0.0)
    delay = BACKOFF_START
    waited = False

    while True:
        now = time.time()

        def make(path: str, now: float = now) -> Lease:
            return Lease(path, stream, who, pid, now, now + ttl, reason, new_lease_id(), until_commit)

        got = _take_all(common_dir, stream, todo, make, force)
        if isinstance(got, list):
            for t in got:
                _log_taken(common_dir, t)
            return got
        path, blocking = got
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            message = busy_message(path, blocking)
            if waited:
                message += f"; gave up after waiting {format_duration(wait)}"
            else:
                message += f"; wait for it with `--wait 5m`, or ask {blocking.stream} to run `streams unlock {printable(path)}`"
            raise LockBusyError(message, blocking)
        if not waited:
            waited = True
            events.append(
                common_dir,
                "lock.wait",
                path=path,
                stream=stream,
                holder_stream=blocking.stream,
                lease_id=blocking.lease_id,
                expires_at=blocking.expires_at,
                wait=wait,
            )
            if on_wait is not None:
                on_wait(f"{busy_message(path, blocking)}; waiting up to {format_duration(wait)} for it…")
        import random

        pause = random.uniform(delay / 2, delay)
        until_expiry = blocking.left() + 0.001
        time.sleep(max(0.0, min(pause, remaining, max(until_expiry, BACKOFF_START))))
        delay = min(delay * 2, BACKOFF_MAX)


def _log_taken(common_dir: Path, t: Taken) -> None:
    lease = t.lease
    fields: dict[str, Any] = {
        "path": t.path,
        "stream": lease.stream,
        "lease_id": lease.lease_id,
        "holder": lease.holder,
        "expires_at": lease.expires_at,
        "reason": lease.reason,
        "until_commit": lease.until_commit,
    }
    if t.action == LockAction.STEAL and t.previous is not None:
        fields.update(previous_stream=t.previous.stream, previous_lease_id=t.previous.lease_id)
        events.append(common_dir, "lock.steal", **fields)
    elif t.action == LockAction.RENEW:
        events.append(common_dir, "lock.renew", **fields)
    else:
        if t.previous is not None:
            fields.update(previous_stream=t.previous.stream, previous_lease_id=t.previous.lease_id)
        events.append(common_dir, "lock.take", **fields)


# --- releasing -------------------------------------------------------------------------------------


def release_lease(common_dir: Path, lease: Lease, *, cause: str = "unlock", by: str | None = None) -> bool:
    """Remove exactly ``lease`` if it is still the one in place; False when it is not (anymore)."""
    file = lease_file(common_dir, lease.path)
    with _guard(file):
        cur = read_file(file, lease.path)
        if cur is None or cur.lease_id != lease.lease_id:
            return False
        file.unlink()
    events.append(
        common_dir,
        "lock.release",
        path=lease.path,
        stream=lease.stream,
        lease_id=lease.lease_id,
        cause=cause,
        by=by if by is not None else lease.stream,
        expired=not cur.live(),
    )
    return True


def release(common_dir: Path, paths: Iterable[str], *, stream: str | None, force: bool = False) -> list[Lease]:
    """Unlock ``paths`` held by ``stream`` (any holder with ``force``), all checked before any is released.

    A path with no lease fails with ``NotLockedError`` (exit 1); a path held by another stream fails
    with ``LockBusyError`` (exit 3) unless ``force``. Returns the leases removed.
    """
    todo = sorted(dict.fromkeys(paths))
    found: list[Lease] = []
    for path in todo:
        lease = read_lease(common_dir, path)
        if lease is None:
            raise NotLockedError(f"{printable(path)} is not locked; `streams locks` lists the leases")
        if lease.stream != stream and not force:
            if lease.live():
                raise LockBusyError(
                    f"{busy_message(path, lease)}; only {lease.stream} can unlock it, or pass --force", lease
                )
            raise LockBusyError(
                f"{printable(path)}: the lease of stream {lease.stream} expired at {clock(lease.expires_at)}, so the path "
                f"is free already; `streams lock {printable(path)}` takes it over, or pass --force to remove it",
                lease,
            )
        found.append(lease)
    by = stream if stream is not None else holder_name()
    cause = "force" if force and any(lease.stream != stream for lease in found) else "unlock"
    return [lease for lease in found if release_lease(common_dir, lease, cause=cause, by=by)]


def release_committed(
    common_dir: Path,
    stream: str,
    paths: Iterable[str],
    *,
    commit: str = "",
    conflict_free: Callable[[str], bool] = lambda _path: True,
) -> tuple[list[Lease], list[Lease]]:
    """After ``commit`` by ``stream``: its ``until_commit`` leases on the committed ``paths``.

    A path whose merge driver cannot conflict (``conflict_free``: ``union``) is released at once.
    Any other is held until that commit lands on the base (``streams merge`` releases it): two
    un-landed edits of one shared file are a conflict waiting to happen. Returns (released, held).
    Called by the post-commit hook; cheap when no such lease exists (no filelock import).
    """
    mine = [p for p in dict.fromkeys(paths)]
    now_free = [p for p in mine if conflict_free(p)]

    def committed(lease: Lease) -> bool:
        return lease.stream == stream and lease.until_commit and not lease.landing

    released = _release_if(common_dir, now_free, committed, "commit")
    held = [h for p in mine if p not in now_free and (h := _hold_until_landed(common_dir, p, committed, commit))]
    return released, held


def _hold_until_landed(common_dir: Path, path: str, wanted: Callable[[Lease], bool], commit: str) -> Lease | None:
    file = lease_file(common_dir, path)
    if not file.exists():
        return None
    with _guard(file):
        try:
            cur = read_file(file, path)
        except ValueError:
            return None
        if cur is None or not wanted(cur):
            return None
        held = dataclasses.replace(cur, landing=commit or "HEAD")
        _overwrite(file, held)
    return held


def release_ids(common_dir: Path, stream: str, taken: Iterable[tuple[str, str]], *, cause: str) -> list[Lease]:
    """Release ``stream``'s leases named by ``(lease id, path)``, each only while it is still that
    very lease (a renewal keeps the id; a lease taken again later has another)."""
    ids = {path: lease_id for lease_id, path in taken}
    return _release_if(
        common_dir, ids, lambda lease: lease.stream == stream and lease.lease_id == ids.get(lease.path), cause
    )


def _release_if(common_dir: Path, paths: Iterable[str], wanted: Callable[[Lease], bool], cause: str) -> list[Lease]:
    """Release the leases on ``paths`` that are ``wanted`` (a damaged lease file is left alone)."""
    released = []
    for path in dict.fromkeys(paths):
        try:
            lease = read_lease(common_dir, path)
        except ValueError:
            continue
        if lease is not None and wanted(lease) and release_lease(common_dir, lease, cause=cause):
            released.append(lease)
    return released


def remember_for_rebase(git_dir: Path, taken: Iterable[Taken]) -> bool:
    """When a rebase is in progress in the worktree of ``git_dir``: list the leases just taken in
    ``REBASE_LEASES_FILE`` there (``ID PATH`` records, NUL-terminated), for the post-rewrite hook to
    release when the rebase finishes; True then."""
    if rebase_dir(git_dir) is None:
        return False
    records = "".join(f"{t.lease.lease_id} {t.path}\0" for t in taken)
    with open(git_dir / REBASE_LEASES_FILE, "a", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(records)
    return True


def release_stream(common_dir: Path, stream: str) -> list[Lease]:
    """Release every lease ``stream`` holds (``streams stop``/``merge`` of the stream)."""
    return [
        lease
        for lease in list_leases(common_dir)
        if lease.stream == stream and release_lease(common_dir, lease, cause="stop")
    ]


__all__ = [
    "LEASE_VERSION",
    "Lease",
    "LeaseView",
    "LockAction",
    "LockBusyError",
    "NotLockedError",
    "Taken",
    "acquire",
    "busy_message",
    "clock",
    "lease_file",
    "lease_lookup",
    "list_leases",
    "live_lease",
    "locks_root",
    "read_lease",
    "release",
    "release_committed",
    "release_ids",
    "release_lease",
    "release_stream",
    "remember_for_rebase",
]
