"""Short kernel locks around critical sections of streams' own processes.

They die with their process, so they suit a command's own critical section, never a lease that
must outlive it (that is ``streams.kernel.locks``).

On POSIX this is ``fcntl.flock`` on the lock file (never unlinked), which is exactly what
``filelock.FileLock`` does there, so the two interoperate. It is done directly for two reasons: the
git hooks run Python isolated (``-I -S``, no site-packages) and take the lease guard, and importing
``filelock`` costs a command 15-20 ms (logging, inspect, asyncio support), a tenth of a `streams
sync` with nothing to do. Stdlib only. Elsewhere ``filelock`` is used.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.kernel.errors import StreamsError

FIRST_PAUSE = 0.0002
LONGEST_PAUSE = 0.01  # retry at least every 10 ms: a freed lock is taken within that


@contextmanager
def held(
    path: Path,
    *,
    timeout: float,
    busy: Callable[[], StreamsError],
    waiting: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lock file ``path``: at once, or, after telling ``on_wait`` it is ``waiting``,
    within ``timeout`` seconds; otherwise raise ``busy()``."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        with _filelock_held(path, timeout=timeout, busy=busy, waiting=waiting, on_wait=on_wait):
            yield
        return
    fd = open_making_dirs(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        pause = FIRST_PAUSE
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise
            if not told and on_wait is not None and waiting:
                on_wait(waiting)
            told = True
            if time.monotonic() > deadline:
                raise busy()
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
        yield
    finally:
        os.close(fd)  # releases the flock


def open_making_dirs(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open``, creating the missing parent directories when the first try says they are missing."""
    try:
        return os.open(path, flags, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, mode)


@contextmanager
def _filelock_held(
    path: Path,
    *,
    timeout: float,
    busy: Callable[[], StreamsError],
    waiting: str | None,
    on_wait: Callable[[str], None] | None,
) -> Iterator[None]:
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None and waiting:
            on_wait(waiting)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise busy() from None
    try:
        yield
    finally:
        lock.release()
