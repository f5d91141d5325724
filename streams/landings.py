"""The merge queue's record, ``<common>/streams/merge.json``: every landing from intent to done.

``coordinator.merge`` writes it (the intent before the base moves, then ``landed``, then ``done``);
``streams status`` reads it to show a landed stream as such. Entries: ``stream``, ``tip`` (the
stream's branch when it landed), ``base_before``, ``merged`` (the commit the base moved to),
``state`` (landing | landed | done), ``time``, ``commits``, ``landed_ref``; and ``resolving``, the
conflict a human resolves in the integration worktree (``stream``, ``tip``, ``base_before``,
``files``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.kernel import paths
from streams.kernel.atomic import write_json_atomic
from streams.kernel.errors import StreamsError
from streams.workspace import Workspace


def _read(ws: Workspace) -> dict[str, Any]:
    file = Path(paths.merge_file(ws.common_dir))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StreamsError(f"{file} is unreadable ({exc}); move it away", code="state") from None
    return data if isinstance(data, dict) else {}


def _write(ws: Workspace, **parts: Any) -> None:
    data = {"version": 1, **_read(ws), **parts}
    write_json_atomic(Path(paths.merge_file(ws.common_dir)), {k: v for k, v in data.items() if v is not None})


def read_landings(ws: Workspace) -> list[dict[str, Any]]:
    return [e for e in _read(ws).get("landings", []) if isinstance(e, dict)]


def write_landings(ws: Workspace, landings: list[dict[str, Any]]) -> None:
    _write(ws, landings=landings)


def read_resolving(ws: Workspace) -> dict[str, Any] | None:
    """The conflict waiting for a human in the integration worktree (``streams merge --continue``)."""
    found = _read(ws).get("resolving")
    return found if isinstance(found, dict) else None


def write_resolving(ws: Workspace, resolving: dict[str, Any] | None) -> None:
    _write(ws, resolving=resolving)


def landed(ws: Workspace) -> dict[str, str]:
    """Stream -> the commit its last completed landing made."""
    return {
        str(e["stream"]): str(e["merged"]) for e in read_landings(ws) if e.get("state") == "done" and e.get("merged")
    }
