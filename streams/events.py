"""The coordination log: ``<common-dir>/streams/events.jsonl``, one JSON object a line, append-only.

Standard library only (the hooks append to it). Each line is written with a single ``write`` on a
file opened with ``O_APPEND``, so lines from concurrent processes never interleave.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.durations import iso_utc

EVENTS_FILE = "events.jsonl"


def events_path(common_dir: Path) -> Path:
    return common_dir / "streams" / EVENTS_FILE


def append(common_dir: Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Append one event ``{"time": …, "event": kind, "pid": …, **fields}`` and return it."""
    now = time.time()
    record: dict[str, Any] = {
        "time": iso_utc(now),
        "ts": round(now, 6),
        "event": kind,
        "pid": os.getpid(),
        **fields,
    }
    path = events_path(common_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return record


def read(common_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event in order; a torn last line (a writer killed mid-write) is skipped."""
    try:
        with open(events_path(common_dir), encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
    except FileNotFoundError:
        return
