"""Atomic file writes: a reader sees the old file or the new one, never half of one. Standard library only.

``replace_file`` is the hooks' (no ``pathlib``, no ``json``, no fsync: a cache or a marker that a
crash may lose but never tear); ``write_atomic`` the full code's for state (fsync'd).
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def replace_file(path: str, data: bytes) -> None:
    """Write ``path`` whole (a temp file beside it, then ``os.replace``), removing the temp file on
    any failure."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs the hooks an import
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_atomic(path: Path, data: object) -> None:
    import json  # here: the hooks import this module for replace_file

    write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def write_atomic(path: Path, data: bytes, *, scratch_dir: Path | None = None, tmp_name: str | None = None) -> None:
    """Write ``path`` completely or not at all: temp file, fsync, ``os.replace``.

    The temp file (``tmp_name``, default ``.<name>.<pid>.tmp``) lives beside ``path``, or in
    ``scratch_dir`` when given, so that a writer killed before the rename leaves nothing beside
    ``path``; across filesystems that falls back to beside ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    name = tmp_name or f".{path.name}.{os.getpid()}.tmp"
    for tmp_dir in (scratch_dir, path.parent) if scratch_dir is not None else (path.parent,):
        tmp = tmp_dir / name
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            return
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno != errno.EXDEV or tmp_dir == path.parent:
                raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def create_exclusive(path: str | os.PathLike[str], data: bytes, *, sync: bool = False) -> bool:
    """Create ``path`` holding ``data`` whole, or return False when it exists: written beside it,
    then ``os.link``ed into place (which, like ``O_EXCL``, refuses an existing name), so a process
    killed at any instant never leaves ``path`` empty or half written. ``sync``: fsync first."""
    path = os.fspath(path)
    side = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new"
    try:
        with open(side, "xb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.link(side, path)
        except FileExistsError:
            return False
        return True
    finally:
        try:  # noqa: SIM105 - contextlib costs the hooks an import
            os.unlink(side)
        except OSError:
            pass
