"""Atomic file writes: a reader sees the old file or the new one, never half of one. Standard library only."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path


def write_json_atomic(path: Path, data: object) -> None:
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
