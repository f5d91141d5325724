"""Short kernel locks (``filelock``) around critical sections of streams' own processes.

They die with their process, so they suit a command's own critical section, never a lease that
must outlive it (that is ``streams.locks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.errors import StreamsError


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
    from filelock import FileLock, Timeout  # lazily: most commands never take one

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
